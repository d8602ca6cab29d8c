"""Answers and key sets for the inquiries tests: realistic, deterministic in everything but
the keys themselves."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from gateway.inquiries.answers import (
    Answer,
    AnswerCheck,
    Outcome,
    OutstandingDue,
    Verdict,
    mask_national_code,
)
from gateway.inquiries.keys import KeySet, SigningConfig, generate_private_pem, load_key_set
from identifiers import parse_registry_plate, parse_renewal_code

ISSUED = dt.datetime(2026, 11, 3, 9, 30, tzinfo=dt.UTC)  # 1405/08/12 13:00 in Tehran
APPLICANT = "0071234561"  # valid national IDs: they must never appear in clear
COUNTERPARTY = "4987654326"
STATUS_URI = "https://e.shiraz.ir/s/1"

# A property transfer's seven checks: (name, authority, seconds before issue data was read).
TRANSFER_CHECKS = (
    ("dues", "rev", 2),
    ("cert", "pln", 2),
    ("viol", "pln", 2),
    ("a100", "pln", 2),
    ("deed", "lrg", 4),
    ("seiz", "lrg", 4),
    ("live", "crg", 3),
)


def key_set() -> KeySet:
    return load_key_set(SigningConfig(signing_keys=(generate_private_pem(),)))


def transfer_answer(
    *, failed: tuple[str, ...] = (), status_index: int = 123_456, **changes: object
) -> Answer:
    """A realistic PROPERTY_TRANSFER answer with seven checks; `failed` names failing ones
    (the dues check failing brings outstanding amounts with it)."""
    checks = tuple(
        AnswerCheck(
            name,
            authority,
            Outcome.FAIL if name in failed else Outcome.PASS,
            ISSUED - dt.timedelta(seconds=age),
        )
        for name, authority, age in TRANSFER_CHECKS
    )
    outstanding = (
        (OutstandingDue("ren", 1404, 12_500_000), OutstandingDue("wst", 1404, 850_000))
        if "dues" in failed
        else ()
    )
    answer = Answer(
        issuer="shiraz.ir",
        answer_id="4ZY0S1G4SA",
        tracking_code="9848759027760368",
        kind="PROPERTY_TRANSFER",
        partner="notary:1234",
        renewal_code=parse_renewal_code("3-12-456-78"),
        registry_plate=parse_registry_plate("11-4512/1234"),
        applicant=mask_national_code(APPLICANT),
        counterparty=mask_national_code(COUNTERPARTY),
        verdict=Verdict.NOT_CLEAR if failed else Verdict.CLEAR,
        checks=checks,
        outstanding=outstanding,
        issued_at=ISSUED,
        not_before=ISSUED,
        expires_at=ISSUED + dt.timedelta(days=30),
        supersedes=None,
        status_uri=STATUS_URI,
        status_index=status_index,
    )
    return replace(answer, **changes)  # type: ignore[arg-type]


def with_manual_check(answer: Answer) -> Answer:
    """The certificate check answered by planning's engineer three days before issue."""
    checks = tuple(
        replace(c, name="bldg", read_at=ISSUED - dt.timedelta(days=3), officer_role="eng")
        if c.name == "cert"
        else c
        for c in answer.checks
    )
    return replace(answer, checks=checks)
