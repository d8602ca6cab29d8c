"""From a decided inquiry and its checks to the municipality's signed answer.

Inside the answer every name is a short code (gateway/inquiries/answers.py: each byte is
printed in the QR code): the codes below map the checks, departments, agencies and dues the
inquiry's rows name to the codes the answer and the letter use. A new check takes a code
here; a test refuses a check without one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from db.gateway import InquiryCheckRecord, InquiryRecord
from gateway.inquiries import answers
from gateway.inquiries.answers import Answer, AnswerCheck, OutstandingDue, Verdict
from gateway.inquiries.config import InquirySettings
from identifiers import parse_registry_plate, parse_renewal_code

CHECK_CODES: Mapping[str, str] = {
    "dues_settled": "dues",
    "dues_statement": "dues",
    "certificate_issued": "cert",
    "certificates_statement": "cert",
    "completion_certificate": "comp",
    "no_open_violation": "viol",
    "violations_statement": "viol",
    "deed_matches_owners": "deed",
    "no_seizure": "seiz",
    "applicant_alive": "live",
    "collateral_allowed": "use",
    "building_matches_permit": "bldg",
}
AUTHORITY_CODES: Mapping[str, str] = {
    "revenue": "rev",
    "planning": "pln",
    "land_registry": "lrg",
    "civil_registry": "crg",
}
DUE_CODES: Mapping[str, str] = {"renewal_duty": "ren", "waste_fee": "wst", "other": "oth"}
# The role an officer answers a manual check in: the municipality's own officer (کارشناس).
OFFICER_ROLE = "off"

_OUTCOMES = {
    "PASS": answers.Outcome.PASS,
    "FAIL": answers.Outcome.FAIL,
    "INFO": answers.Outcome.INFO,
}


def _outstanding(checks: Sequence[InquiryCheckRecord]) -> tuple[OutstandingDue, ...]:
    """What is owed, from the dues check's details: each unpaid due with its period."""
    dues: list[OutstandingDue] = []
    for check in checks:
        if check.name not in ("dues_settled", "dues_statement") or not check.details:
            continue
        unpaid: Any = check.details.get("unpaid") or []
        for item in unpaid:
            amount = int(item["outstanding"])
            if amount > 0:
                code = DUE_CODES.get(str(item["kind"]), "oth")
                dues.append(OutstandingDue(code, int(item["period"]), amount))
    return tuple(dues)


def build_answer(
    inquiry: InquiryRecord,
    checks: Sequence[InquiryCheckRecord],
    config: InquirySettings,
    *,
    issued_at: dt.datetime,
    answer_id: str,
    supersedes: str | None,
) -> Answer:
    """The answer an inquiry decided with `checks` (every one done) gives at `issued_at`."""
    kind = config.kinds[inquiry.kind]
    by_name = {check.name: check for check in checks}
    stated = []
    for definition in kind.checks:
        check = by_name[definition.name]
        if check.outcome is None or check.read_at is None:
            raise ValueError(f"check {check.name} of inquiry {inquiry.id} has no outcome")
        stated.append(
            AnswerCheck(
                CHECK_CODES[check.name],
                AUTHORITY_CODES[check.authority],
                _OUTCOMES[check.outcome],
                min(check.read_at.replace(tzinfo=dt.UTC), issued_at),
                OFFICER_ROLE if check.manual and check.officer_role else None,
            )
        )
    failed = any(check.outcome == "FAIL" for check in checks)
    return Answer(
        issuer=config.issuer,
        answer_id=answer_id,
        tracking_code=inquiry.tracking_code,
        kind=inquiry.kind,
        partner=inquiry.organisation,
        renewal_code=parse_renewal_code(inquiry.renewal_code),
        registry_plate=(
            None if inquiry.registry_plate is None else parse_registry_plate(inquiry.registry_plate)
        ),
        applicant=answers.mask_national_code(inquiry.applicant_national_code),
        counterparty=(
            None
            if inquiry.counterparty_national_code is None
            else answers.mask_national_code(inquiry.counterparty_national_code)
        ),
        verdict=Verdict.NOT_CLEAR if failed else Verdict.CLEAR,
        checks=tuple(stated),
        outstanding=_outstanding(checks),
        issued_at=issued_at,
        not_before=issued_at,
        expires_at=issued_at + kind.validity,
        supersedes=supersedes,
        status_uri=config.status_uri,
        status_index=inquiry.id,
    )


def sign_answer(answer: Answer, config: InquirySettings) -> str:
    return answers.sign(answer, config.keys)
