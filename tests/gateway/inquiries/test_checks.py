"""Every check's rule, PASS and FAIL, on hand-built domain records, with its exact reasons in
Persian and English; the outcome's data and read time; manual checks screened and answered."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.soap.land_registry import Plate, Seizure
from gateway.inquiries import checks
from gateway.inquiries.checks import CHECKS, CheckOutcome, ChecksConfig, check_named
from gateway.inquiries.facts import Fact, Facts, MissingFacts, Outcome
from gateway.inquiries.rules import CollateralPolicy
from gateway.inquiries.wording import Text
from tests.gateway.inquiries.records import (
    CO_OWNER,
    PARCEL,
    READ_AT,
    SELLER,
    STRANGER,
    building,
    certificate,
    civil_record,
    deed,
    due,
    dues,
    facts,
    ownership,
    violation,
)

CONFIG = ChecksConfig()
ASCII_DIGIT = re.compile(r"[0-9]")


def run(check: checks.AutomaticCheck, given_facts: Facts) -> CheckOutcome:
    return check.evaluate(given_facts, CONFIG)


def texts(outcome: CheckOutcome) -> list[tuple[str, str]]:
    return [(reason.fa, reason.en) for reason in outcome.reasons]


# --- Dues ------------------------------------------------------------------------------------


def test_dues_all_paid_pass() -> None:
    outcome = run(
        checks.DUES_SETTLED,
        facts(dues=dues(due("renewal_duty", 1403, 900_000, 900_000), due("waste_fee", 1403, 5, 5))),
    )
    assert outcome.outcome is Outcome.PASS
    assert texts(outcome) == [
        ("همه عوارض شهرداری ملک پرداخت شده است", "Every municipal due of the parcel is paid")
    ]
    assert outcome.details["outstanding"] == 0
    assert outcome.details["unpaid"] == []
    assert outcome.authority == "revenue"
    assert outcome.read_at == READ_AT


def test_dues_fail_names_each_unpaid_due_with_its_kind_period_and_outstanding_amount() -> None:
    outcome = run(
        checks.DUES_SETTLED,
        facts(
            dues=dues(
                due("renewal_duty", 1403, 2_000_000, 750_000, due_id=1),
                due("waste_fee", 1403, 400_000, 400_000, due_id=2),
                due("other", 1403, 12_000_000, 0, due_id=3),
                due("waste_fee", 1402, 300_000, 0, due_id=4),
            )
        ),
    )
    assert outcome.outcome is Outcome.FAIL
    assert texts(outcome) == [
        (
            "عوارض پسماند سال ۱۴۰۲ به مبلغ ۳۰۰٬۰۰۰ ریال پرداخت نشده است",
            "Waste fee for 1402 unpaid: 300,000 rials",
        ),
        (
            "عوارض نوسازی سال ۱۴۰۳ به مبلغ ۱٬۲۵۰٬۰۰۰ ریال پرداخت نشده است",
            "Renewal duty for 1403 unpaid: 1,250,000 rials",
        ),
        (
            "سایر عوارض سال ۱۴۰۳ به مبلغ ۱۲٬۰۰۰٬۰۰۰ ریال پرداخت نشده است",
            "Other charges for 1403 unpaid: 12,000,000 rials",
        ),
    ]
    assert outcome.details["outstanding"] == 13_550_000
    assert outcome.details["unpaid"] == [
        {"kind": "waste_fee", "period": 1402, "amount": 300_000, "paid": 0, "outstanding": 300_000},
        {
            "kind": "renewal_duty",
            "period": 1403,
            "amount": 2_000_000,
            "paid": 750_000,
            "outstanding": 1_250_000,
        },
        {
            "kind": "other",
            "period": 1403,
            "amount": 12_000_000,
            "paid": 0,
            "outstanding": 12_000_000,
        },
    ]


def test_dues_none_assessed_pass_says_so() -> None:
    outcome = run(checks.DUES_SETTLED, facts(dues=dues()))
    assert outcome.outcome is Outcome.PASS
    assert texts(outcome) == [
        ("واحد درآمد عوارضی برای این ملک ثبت نکرده است", "Revenue holds no dues for the parcel")
    ]


_due_items = st.lists(
    st.tuples(
        st.sampled_from(["renewal_duty", "waste_fee", "other"]),
        st.integers(1395, 1405),
        st.integers(1_000, 10**11),
        st.floats(0, 1),
    ),
    max_size=8,
    unique_by=lambda t: (t[0], t[1]),
)


@settings(deadline=None)  # timing on a loaded machine is no failure
@given(_due_items)
def test_dues_fail_exactly_when_something_is_outstanding_with_a_reason_per_unpaid_due(
    drawn: list[tuple[str, int, int, float]],
) -> None:
    items = [
        due(kind, period, amount, int(amount * paid), due_id=index)
        for index, (kind, period, amount, paid) in enumerate(drawn)
    ]
    outcome = run(checks.DUES_SETTLED, facts(dues=dues(*items)))
    unpaid = [item for item in items if item.outstanding > 0]
    assert (outcome.outcome is Outcome.FAIL) == bool(unpaid)
    if unpaid:
        assert len(outcome.reasons) == len(unpaid)
        for item in unpaid:
            assert any(f"{item.outstanding:,} rials" in reason.en for reason in outcome.reasons)
    assert outcome.details["outstanding"] == sum(item.outstanding for item in items)
    assert not any(ASCII_DIGIT.search(reason.fa) for reason in outcome.reasons)


# --- Certificates ----------------------------------------------------------------------------


def test_certificate_pass_names_the_newest_certificate() -> None:
    outcome = run(
        checks.CERTIFICATE_ISSUED,
        facts(
            certificates=(
                certificate("no_violation", "AK-1398-0000003", dt.date(2019, 5, 5), cert_id=3),
                certificate("completion", "PK-1402-0000012", dt.date(2023, 7, 23), cert_id=12),
            )
        ),
    )
    assert outcome.outcome is Outcome.PASS
    assert texts(outcome) == [
        (
            "گواهی پایان کار شماره PK-۱۴۰۲-۰۰۰۰۰۱۲ مورخ ۱۴۰۲/۰۵/۰۱ صادر شده است",
            "Completion certificate PK-1402-0000012 issued on 1402/05/01 (2023-07-23)",
        )
    ]
    assert outcome.details["certificate"] == {
        "kind": "completion",
        "number": "PK-1402-0000012",
        "issued_on": "2023-07-23",
    }


def test_no_violation_certificate_passes_a_transfer() -> None:
    outcome = run(
        checks.CERTIFICATE_ISSUED,
        facts(certificates=(certificate("no_violation", "AK-1398-0000003", dt.date(2019, 5, 5)),)),
    )
    assert outcome.outcome is Outcome.PASS
    assert texts(outcome)[0][1] == (
        "No-violation certificate AK-1398-0000003 issued on 1398/02/15 (2019-05-05)"
    )


def test_certificate_fail_names_what_is_missing() -> None:
    outcome = run(checks.CERTIFICATE_ISSUED, facts(certificates=()))
    assert outcome.outcome is Outcome.FAIL
    assert texts(outcome) == [
        (
            "برای ملک گواهی پایان کار یا گواهی عدم خلاف صادر نشده است",
            "No completion certificate or no-violation certificate has been issued for the parcel",
        )
    ]
    assert outcome.details == {"missing": ["completion", "no_violation"]}


def test_mortgage_needs_a_completion_certificate_not_a_no_violation_one() -> None:
    only_no_violation = (certificate("no_violation", "AK-1398-0000003", dt.date(2019, 5, 5)),)
    outcome = run(checks.COMPLETION_CERTIFICATE, facts(certificates=only_no_violation))
    assert outcome.outcome is Outcome.FAIL
    assert texts(outcome) == [
        (
            "برای ملک گواهی پایان کار صادر نشده است",
            "No completion certificate has been issued for the parcel",
        )
    ]
    completion = (certificate("completion", "PK-1402-0000012", dt.date(2023, 7, 23)),)
    assert run(checks.COMPLETION_CERTIFICATE, facts(certificates=completion)).outcome is (
        Outcome.PASS
    )


# --- Violations ------------------------------------------------------------------------------


def test_resolved_violations_pass() -> None:
    resolved = violation(
        status="resolved", ruling="fine", ruled_on=dt.date(2024, 1, 10), fine=80_000_000
    )
    outcome = run(checks.NO_OPEN_VIOLATION, facts(violations=(resolved,)))
    assert outcome.outcome is Outcome.PASS
    assert texts(outcome) == [
        (
            "ملک تخلف باز یا رأی اجرانشده کمیسیون ماده ۱۰۰ ندارد",
            "No open violation and no unexecuted Article 100 ruling",
        )
    ]
    assert outcome.details == {"violations": []}


def test_open_violation_fails_naming_its_kind() -> None:
    outcome = run(checks.NO_OPEN_VIOLATION, facts(violations=(violation(),)))
    assert outcome.outcome is Outcome.FAIL
    assert texts(outcome) == [
        (
            "تخلف «بنای مازاد بر تراکم» که در ۱۴۰۲/۰۵/۰۱ کشف شده، هنوز در کمیسیون ماده ۱۰۰ "
            "رسیدگی نشده است",
            "Open violation (building beyond the permitted density), detected on 1402/05/01 "
            "(2023-07-23), not yet ruled on by the Article 100 commission",
        )
    ]


def test_unexecuted_article_100_ruling_fails_naming_the_ruling() -> None:
    ruled = violation(
        kind="parking_removed", ruling="fine", ruled_on=dt.date(2024, 3, 20), fine=120_000_000
    )
    demolition = violation(id=2, kind="no_permit", ruling="demolition", ruled_on=None)
    outcome = run(checks.NO_OPEN_VIOLATION, facts(violations=(ruled, demolition)))
    assert outcome.outcome is Outcome.FAIL
    assert texts(outcome) == [
        (
            "رأی کمیسیون ماده ۱۰۰ (جریمه به مبلغ ۱۲۰٬۰۰۰٬۰۰۰ ریال مورخ ۱۴۰۳/۰۱/۰۱) درباره "
            "تخلف «حذف پارکینگ» اجرا نشده است",
            "Article 100 commission ruling (fine of 120,000,000 rials of 1403/01/01 "
            "(2024-03-20)) on the violation (parking removed) not executed",
        ),
        (
            "رأی کمیسیون ماده ۱۰۰ (قلع بنا) درباره تخلف «بنای بدون پروانه» اجرا نشده است",
            "Article 100 commission ruling (demolition) on the violation (building without a "
            "permit) not executed",
        ),
    ]
    first = outcome.details["violations"]
    assert isinstance(first, list)
    assert first[0] == {
        "kind": "parking_removed",
        "status": "open",
        "detected_on": "2023-07-23",
        "ruling": "fine",
        "ruled_on": "2024-03-20",
        "fine": 120_000_000,
    }


# --- The deed --------------------------------------------------------------------------------


def test_deed_agreeing_with_the_owners_and_naming_the_applicant_passes() -> None:
    outcome = run(
        checks.DEED_MATCHES_OWNERS,
        facts(
            deed=deed((SELLER, "3"), (CO_OWNER, "3")),
            ownerships=(ownership(CO_OWNER, "3.00", 2), ownership(SELLER, "3.00")),
        ),
    )
    assert outcome.outcome is Outcome.PASS
    assert texts(outcome) == [
        (
            "مالکان و سهام سند ثبتی شماره H/۶۵۴۳۲۱ با پرونده شهرداری یکی است و متقاضی از مالکان "
            "است",
            "The owners and shares on deed H/654321 agree with the municipality's record, and the "
            "applicant is an owner",
        )
    ]
    assert outcome.authority == "land_registry"


def test_deed_disagreements_are_named_with_masked_national_ids() -> None:
    outcome = run(
        checks.DEED_MATCHES_OWNERS,
        facts(
            deed=deed((SELLER, "4.5"), (STRANGER, "1.5")),
            ownerships=(ownership(SELLER, "3"), ownership(CO_OWNER, "3", 2)),
        ),
    )
    assert outcome.outcome is Outcome.FAIL
    assert texts(outcome) == [
        (
            "سهم مالک ۰۰۸****۹۴۸ در سند ثبتی ۴٫۵ دانگ و در پرونده شهرداری ۳ دانگ است",
            "Owner 008****948 holds 4.5 dang on the deed but 3 dang in the municipality's record",
        ),
        (
            "مالک ۰۰۶****۸۲۸ با ۱٫۵ دانگ در سند ثبتی آمده اما در پرونده شهرداری نیست",
            "Owner 006****828 holds 1.5 dang on the deed but is not in the municipality's record",
        ),
        (
            "مالک ۰۰۱****۴۱۹ با ۳ دانگ در پرونده شهرداری آمده اما در سند ثبتی نیست",
            "Owner 001****419 holds 3 dang in the municipality's record but is not on the deed",
        ),
    ]
    assert outcome.details["disagreements"] == [
        {"owner": "008****948", "deed_share": "4.5", "municipal_share": "3"},
        {"owner": "006****828", "deed_share": "1.5", "municipal_share": None},
        {"owner": "001****419", "deed_share": None, "municipal_share": "3"},
    ]
    assert outcome.details["applicant_is_owner"] is True


def test_deed_not_naming_the_applicant_fails() -> None:
    outcome = run(
        checks.DEED_MATCHES_OWNERS,
        facts(
            applicant=STRANGER,
            deed=deed((SELLER, "6")),
            ownerships=(ownership(SELLER, "6"),),
        ),
    )
    assert outcome.outcome is Outcome.FAIL
    assert texts(outcome) == [
        (
            "متقاضی (۰۰۶****۸۲۸) در سند ثبتی مالک نیست",
            "The applicant (006****828) is not an owner on the deed",
        )
    ]
    assert outcome.details["disagreements"] == []


@pytest.mark.parametrize("check", [checks.DEED_MATCHES_OWNERS, checks.NO_SEIZURE])
def test_no_deed_at_the_land_registry_fails_naming_the_plate(
    check: checks.AutomaticCheck,
) -> None:
    outcome = run(check, facts(deed=None, ownerships=(ownership(SELLER, "6"),)))
    assert outcome.outcome is Outcome.FAIL
    assert texts(outcome) == [
        (
            "سازمان ثبت برای پلاک ثبتی ۱۱-۱۱۷/۲۳ سندی اعلام نکرد",
            "The land registry has no deed for registry plate 11-117/23",
        )
    ]


_codes = st.sampled_from([SELLER, CO_OWNER, STRANGER])
_shares = st.sampled_from(["1", "1.5", "2", "3", "4.5", "6"])


@settings(deadline=None)  # timing on a loaded machine is no failure
@given(
    st.dictionaries(_codes, _shares, max_size=3),
    st.dictionaries(_codes, _shares, max_size=3),
    _codes,
)
def test_deed_passes_exactly_when_it_agrees_and_no_national_id_appears_in_clear(
    on_deed: dict[str, str], municipal: dict[str, str], applicant: str
) -> None:
    outcome = run(
        checks.DEED_MATCHES_OWNERS,
        facts(
            applicant=applicant,
            deed=deed(*on_deed.items()),
            ownerships=tuple(
                ownership(code, share, index)
                for index, (code, share) in enumerate(municipal.items())
            ),
        ),
    )
    agree = {c: Decimal(s) for c, s in on_deed.items()} == {
        c: Decimal(s) for c, s in municipal.items()
    }
    assert (outcome.outcome is Outcome.PASS) == (agree and applicant in on_deed)
    everything = json.dumps([texts(outcome), outcome.details], ensure_ascii=False)
    for code in (SELLER, CO_OWNER, STRANGER):
        assert code not in everything


# --- Seizures --------------------------------------------------------------------------------


def test_deed_without_seizure_passes() -> None:
    outcome = run(checks.NO_SEIZURE, facts(deed=deed((SELLER, "6"))))
    assert outcome.outcome is Outcome.PASS
    assert texts(outcome) == [
        ("سند ثبتی شماره H/۶۵۴۳۲۱ بازداشتی ندارد", "Deed H/654321 carries no seizure")
    ]


def test_seizure_fails_naming_its_issuer_and_reference() -> None:
    seizure = Seizure("دادگاه عمومی حقوقی ارومیه، شعبه 4", "2019-0000011", dt.date(2019, 5, 5))
    outcome = run(checks.NO_SEIZURE, facts(deed=deed((SELLER, "6"), seizures=(seizure,))))
    assert outcome.outcome is Outcome.FAIL
    assert texts(outcome) == [
        (
            "ملک به دستور دادگاه عمومی حقوقی ارومیه، شعبه ۴ با شماره ۲۰۱۹-۰۰۰۰۰۱۱ مورخ "
            "۱۳۹۸/۰۲/۱۵ بازداشت است",
            "The property is under seizure by دادگاه عمومی حقوقی ارومیه، شعبه 4, reference "
            "2019-0000011, registered on 1398/02/15 (2019-05-05)",
        )
    ]
    assert outcome.details["seizures"] == [
        {
            "issuer": "دادگاه عمومی حقوقی ارومیه، شعبه 4",
            "reference": "2019-0000011",
            "registered_on": "2019-05-05",
        }
    ]


# --- The applicant ---------------------------------------------------------------------------


def test_living_applicant_passes() -> None:
    outcome = run(checks.APPLICANT_ALIVE, facts(applicant_record=civil_record()))
    assert outcome.outcome is Outcome.PASS
    assert texts(outcome) == [
        (
            "طبق اعلام ثبت احوال، متقاضی (۰۰۸****۹۴۸) در قید حیات است",
            "According to the civil registry the applicant (008****948) is alive",
        )
    ]
    assert outcome.authority == "civil_registry"


def test_deceased_applicant_fails_with_the_date() -> None:
    record = civil_record(alive=False, death_date=dt.date(2024, 3, 20))
    outcome = run(checks.APPLICANT_ALIVE, facts(applicant_record=record))
    assert outcome.outcome is Outcome.FAIL
    assert texts(outcome) == [
        (
            "طبق اعلام ثبت احوال، متقاضی (۰۰۸****۹۴۸) در تاریخ ۱۴۰۳/۰۱/۰۱ فوت کرده است",
            "According to the civil registry the applicant (008****948) died on 1403/01/01 "
            "(2024-03-20)",
        )
    ]
    assert outcome.details == {
        "applicant": "008****948",
        "known": True,
        "alive": False,
        "death_date": "2024-03-20",
    }


def test_deceased_applicant_without_a_date_still_fails() -> None:
    outcome = run(checks.APPLICANT_ALIVE, facts(applicant_record=civil_record(alive=False)))
    assert outcome.outcome is Outcome.FAIL
    assert texts(outcome)[0][1] == (
        "According to the civil registry the applicant (008****948) has died"
    )


def test_applicant_unknown_to_the_civil_registry_fails() -> None:
    outcome = run(checks.APPLICANT_ALIVE, facts(applicant_record=None))
    assert outcome.outcome is Outcome.FAIL
    assert texts(outcome) == [
        (
            "ثبت احوال شخصی با کد ملی ۰۰۸****۹۴۸ را نمی‌شناسد",
            "The civil registry has no record of national ID 008****948",
        )
    ]


# --- Collateral ------------------------------------------------------------------------------


def test_residential_parcel_within_the_density_ceiling_is_acceptable_collateral() -> None:
    outcome = run(checks.COLLATERAL_ALLOWED, facts())
    assert outcome.outcome is Outcome.PASS
    assert texts(outcome) == [
        (
            "کاربری ملک (مسکونی) و تراکم آن (۱۲۰ درصد) برای وثیقه بانکی پذیرفتنی است",
            "The parcel's land use (residential) and density (120%) are acceptable as bank "
            "collateral",
        )
    ]


def test_collateral_fails_naming_the_land_use_and_the_density() -> None:
    parcel = dataclasses.replace(PARCEL, land_use="green_space", density_percent=240)
    outcome = run(checks.COLLATERAL_ALLOWED, facts(parcel=parcel))
    assert outcome.outcome is Outcome.FAIL
    assert texts(outcome) == [
        (
            "کاربری ملک (فضای سبز) برای وثیقه بانکی پذیرفته نیست",
            "The parcel's land use (green space) is not accepted as bank collateral",
        ),
        (
            "تراکم ملک (۲۴۰ درصد) از سقف تراکم پذیرفتنی برای وثیقه (۲۰۰ درصد) بیشتر است",
            "The parcel's density (240%) exceeds the ceiling for collateral (200%)",
        ),
    ]
    assert outcome.details["max_density_percent"] == 200


def test_collateral_policy_is_configuration() -> None:
    strict = ChecksConfig(collateral=CollateralPolicy(frozenset({"commercial"}), 100))
    outcome = checks.COLLATERAL_ALLOWED.evaluate(facts(), strict)
    assert outcome.outcome is Outcome.FAIL
    assert [reason.en for reason in outcome.reasons] == [
        "The parcel's land use (residential) is not accepted as bank collateral",
        "The parcel's density (120%) exceeds the ceiling for collateral (100%)",
    ]


# --- Statements ------------------------------------------------------------------------------


def test_statements_report_without_judging() -> None:
    unpaid = dues(due("renewal_duty", 1403, 2_000_000, 750_000))
    dues_outcome = run(checks.DUES_STATEMENT, facts(dues=unpaid))
    assert dues_outcome.outcome is Outcome.INFO
    assert texts(dues_outcome) == texts(run(checks.DUES_SETTLED, facts(dues=unpaid)))
    violations_outcome = run(checks.VIOLATIONS_STATEMENT, facts(violations=(violation(),)))
    assert violations_outcome.outcome is Outcome.INFO
    certificates_outcome = run(
        checks.CERTIFICATES_STATEMENT,
        facts(
            certificates=(
                certificate("completion", "PK-1402-0000012", dt.date(2023, 7, 23), 12),
                certificate("no_violation", "AK-1398-0000003", dt.date(2019, 5, 5), 3),
            )
        ),
    )
    assert certificates_outcome.outcome is Outcome.INFO
    assert [reason.en for reason in certificates_outcome.reasons] == [
        "Completion certificate PK-1402-0000012 issued on 1402/05/01 (2023-07-23)",
        "No-violation certificate AK-1398-0000003 issued on 1398/02/15 (2019-05-05)",
    ]
    none = run(checks.CERTIFICATES_STATEMENT, facts(certificates=()))
    assert texts(none) == [
        ("برای ملک گواهی‌ای صادر نشده است", "No certificate has been issued for the parcel")
    ]


def test_a_rule_answering_against_its_check_kind_is_refused() -> None:
    judging_as_statement = dataclasses.replace(checks.DUES_SETTLED, statement=True)
    with pytest.raises(ValueError, match="dues_settled: its rule answered PASS"):
        judging_as_statement.evaluate(facts(dues=dues()), CONFIG)


# --- The manual check ------------------------------------------------------------------------

OLD = certificate("completion", "PK-1380-0000001", dt.date(2001, 5, 5))
RECENT = certificate("completion", "PK-1402-0000012", dt.date(2023, 7, 23))


def test_a_building_whose_last_certificate_is_old_goes_to_planning() -> None:
    screened = checks.BUILDING_MATCHES_PERMIT.screened(
        facts(buildings=(building(),), certificates=(OLD,)), CONFIG
    )
    assert screened is None


def test_a_recent_certificate_settles_the_review_without_a_person() -> None:
    screened = checks.BUILDING_MATCHES_PERMIT.screened(
        facts(buildings=(building(),), certificates=(OLD, RECENT)), CONFIG
    )
    assert screened is not None
    assert screened.outcome is Outcome.PASS
    assert texts(screened) == [
        (
            "آخرین گواهی ملک (گواهی پایان کار مورخ ۱۴۰۲/۰۵/۰۱) کمتر از ۱۰ سال پیش صادر شده و "
            "بازبینی لازم نیست",
            "The newest certificate (Completion certificate, 1402/05/01 (2023-07-23)) is less "
            "than 10 years old; no review is needed",
        )
    ]
    assert screened.authority == "planning"


def test_the_certificate_age_is_configuration_and_counted_from_when_the_facts_were_read() -> None:
    strict = ChecksConfig(certificate_max_age_years=1)
    read = facts(buildings=(building(),), certificates=(RECENT,))
    assert checks.BUILDING_MATCHES_PERMIT.screened(read, strict) is None
    earlier = facts(
        buildings=(building(),),
        certificates=(RECENT,),
        read_at=dt.datetime(2024, 7, 1, tzinfo=dt.UTC),
    )
    assert checks.BUILDING_MATCHES_PERMIT.screened(earlier, strict) is not None


def test_no_building_or_no_certificate_needs_no_review() -> None:
    vacant = checks.BUILDING_MATCHES_PERMIT.screened(facts(buildings=(), certificates=()), CONFIG)
    assert vacant is not None
    assert texts(vacant) == [
        (
            "ملک ساختمانی ندارد و بازبینی لازم نیست",
            "There is no building on the parcel; no review is needed",
        )
    ]
    uncertified = checks.BUILDING_MATCHES_PERMIT.screened(
        facts(buildings=(building(),), certificates=()), CONFIG
    )
    assert uncertified is not None
    assert uncertified.outcome is Outcome.PASS
    assert uncertified.details == {"review_needed": False, "certificate": None}


def test_an_officer_answer_carries_the_outcome_role_and_note_but_the_reason_is_the_checks() -> None:
    answered_at = dt.datetime(2025, 6, 3, 7, 0, tzinfo=dt.UTC)
    failed = checks.BUILDING_MATCHES_PERMIT.answer(
        Outcome.FAIL,
        note="  طبقه پنجم بدون پروانه ساخته شده  ",
        officer_role="planning officer",
        answered_at=answered_at,
    )
    assert failed.outcome is Outcome.FAIL
    assert texts(failed) == [
        (
            "به گزارش شهرسازی، ساختمان با پروانه ساختمانی آن مطابقت ندارد",
            "Urban planning reports the building does not match its building permit",
        )
    ]
    assert failed.note == "طبقه پنجم بدون پروانه ساخته شده"
    assert failed.officer_role == "planning officer"
    assert failed.read_at == answered_at
    passed = checks.BUILDING_MATCHES_PERMIT.answer(
        Outcome.PASS, note="بازدید شد", officer_role="planning officer", answered_at=answered_at
    )
    assert texts(passed)[0][1] == "Urban planning confirms the building matches its building permit"


@pytest.mark.parametrize(
    ("outcome", "note", "answered_at", "message"),
    [
        (Outcome.INFO, "x", READ_AT, "PASS or FAIL"),
        (Outcome.PASS, "   ", READ_AT, "needs a note"),
        (Outcome.PASS, "x", READ_AT.replace(tzinfo=None), "aware"),
    ],
)
def test_an_officer_answer_is_refused_when_malformed(
    outcome: Outcome, note: str, answered_at: dt.datetime, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        checks.BUILDING_MATCHES_PERMIT.answer(
            outcome, note=note, officer_role="officer", answered_at=answered_at
        )


# --- Facts and the catalogue -----------------------------------------------------------------


def test_a_check_over_facts_never_read_is_refused_before_its_rule_runs() -> None:
    with pytest.raises(MissingFacts, match="facts not read: deed"):
        run(checks.NO_SEIZURE, facts())


def test_an_outcome_is_as_of_the_oldest_fact_it_judged() -> None:
    given_facts = Facts(
        parcel=PARCEL,
        applicant_national_code=SELLER,
        read_at={
            Fact.PARCEL: READ_AT,
            Fact.DEED: READ_AT + dt.timedelta(seconds=5),
            Fact.OWNERSHIPS: READ_AT + dt.timedelta(seconds=2),
        },
        deed=deed((SELLER, "6")),
        ownerships=(ownership(SELLER, "6"),),
    )
    outcome = run(checks.DEED_MATCHES_OWNERS, given_facts)
    assert outcome.read_at == READ_AT + dt.timedelta(seconds=2)


@pytest.mark.parametrize(
    ("read", "message"),
    [
        ({"dues": dataclasses.replace(dues(), renewal_code="9-9-9-9")}, "another parcel's"),
        ({"certificates": (dataclasses.replace(OLD, parcel_id=99),)}, "another parcel's"),
        ({"deed": dataclasses.replace(deed(), plate=Plate(1, 2, 3))}, "plate"),
        (
            {"applicant_record": dataclasses.replace(civil_record(), national_code=STRANGER)},
            "another person's",
        ),
    ],
)
def test_facts_of_another_parcel_or_person_are_refused(read: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        facts(**read)


def test_every_check_is_named_once_and_found_by_its_name() -> None:
    assert set(CHECKS) == {
        "dues_settled",
        "certificate_issued",
        "completion_certificate",
        "no_open_violation",
        "deed_matches_owners",
        "no_seizure",
        "applicant_alive",
        "collateral_allowed",
        "building_matches_permit",
        "dues_statement",
        "certificates_statement",
        "violations_statement",
    }
    for name, check in CHECKS.items():
        assert check_named(name) is check
    with pytest.raises(ValueError, match="no check is named 'nope'"):
        check_named("nope")


def test_text_makes_every_digit_of_the_persian_sentence_persian() -> None:
    assert Text("سال 1403", "year 1403") == Text("سال ۱۴۰۳", "year 1403")


def test_every_value_of_the_planning_and_revenue_vocabularies_has_a_name_in_both_languages() -> (
    None
):
    import db.planning
    import db.revenue
    from gateway.inquiries import rules

    assert set(rules.DUE_KINDS) == set(db.revenue.DUE_KINDS)
    assert set(rules.CERTIFICATE_KINDS) == set(db.planning.CERTIFICATE_KINDS)
    assert set(rules.VIOLATION_KINDS) == set(db.planning.VIOLATION_KINDS)
    assert set(rules.RULINGS) == set(db.planning.RULINGS)
    assert set(rules.LAND_USES) == set(db.planning.LAND_USES)


@settings(deadline=None)  # timing on a loaded machine is no failure
@given(st.integers(0, 10**15))
def test_persian_amounts_read_back_as_the_same_number(amount: int) -> None:
    from gateway.inquiries.wording import THOUSANDS_SEPARATOR, rials_fa

    text = rials_fa(amount)
    assert not ASCII_DIGIT.search(text)
    groups = text.split(THOUSANDS_SEPARATOR)
    assert all(len(group) == 3 for group in groups[1:])
    assert 1 <= len(groups[0]) <= 3
    assert int("".join(groups).translate(str.maketrans("۰۱۲۳۴۵۶۷۸۹", "0123456789"))) == amount
