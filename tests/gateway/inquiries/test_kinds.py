"""The inquiry kinds as data: their checks, who may ask them, their timing, and the promise a
kind without personal data keeps."""

from __future__ import annotations

import datetime as dt

import pytest

from gateway.access.principals import PrincipalKind
from gateway.inquiries import checks
from gateway.inquiries.checks import ManualCheck, facts_needed
from gateway.inquiries.facts import PERSONAL_FACTS, Fact
from gateway.inquiries.kinds import (
    KINDS,
    MORTGAGE,
    PROPERTY_STATUS,
    PROPERTY_TRANSFER,
    InquiriesConfig,
    InquiryKind,
    KindTiming,
    inquiry_kinds,
    kind_named,
)
from gateway.inquiries.wording import Text
from gateway.inquiries.workdays import TEHRAN, Deadline, Workweek


def names(kind: InquiryKind) -> list[str]:
    return [check.name for check in kind.checks]


def test_a_property_transfer_checks_dues_certificates_violations_deed_seizure_and_applicant() -> (
    None
):
    assert names(KINDS[PROPERTY_TRANSFER]) == [
        "dues_settled",
        "certificate_issued",
        "no_open_violation",
        "deed_matches_owners",
        "no_seizure",
        "applicant_alive",
        "building_matches_permit",
    ]
    assert KINDS[PROPERTY_TRANSFER].manual_checks == (checks.BUILDING_MATCHES_PERMIT,)


def test_a_mortgage_checks_collateral_completion_certificate_and_seizure() -> None:
    assert names(KINDS[MORTGAGE]) == ["collateral_allowed", "completion_certificate", "no_seizure"]
    assert KINDS[MORTGAGE].manual_checks == ()


def test_a_property_status_is_a_statement_without_personal_data() -> None:
    status = KINDS[PROPERTY_STATUS]
    assert names(status) == ["dues_statement", "certificates_statement", "violations_statement"]
    assert status.statement_only
    assert not status.personal_data
    assert not facts_needed(status.checks) & PERSONAL_FACTS
    assert not KINDS[PROPERTY_TRANSFER].statement_only
    assert not KINDS[MORTGAGE].statement_only


def test_the_workflow_reads_what_a_kinds_checks_need() -> None:
    assert facts_needed(KINDS[PROPERTY_TRANSFER].checks) == set(Fact)
    assert facts_needed(KINDS[MORTGAGE].checks) == {Fact.PARCEL, Fact.CERTIFICATES, Fact.DEED}


@pytest.mark.parametrize(
    ("kind", "askers"),
    [
        (PROPERTY_TRANSFER, {PrincipalKind.NOTARY}),
        (MORTGAGE, {PrincipalKind.BANK}),
        (PROPERTY_STATUS, {PrincipalKind.COUNTER}),
    ],
)
def test_each_kind_is_asked_by_one_kind_of_partner(kind: str, askers: set[PrincipalKind]) -> None:
    for principal_kind in PrincipalKind:
        assert KINDS[kind].may_ask(principal_kind) == (principal_kind in askers)


def test_answers_are_valid_about_a_month_and_manual_checks_due_in_five_working_days() -> None:
    transfer = KINDS[PROPERTY_TRANSFER]
    decided = dt.datetime(2026, 11, 28, 6, 0, tzinfo=dt.UTC)
    assert transfer.valid_until(decided) == decided + dt.timedelta(days=30)
    # Saturday 9:30 in Tehran: Sun, Mon, Tue, Wed, then (Thursday and Friday skipped) Saturday.
    assert transfer.manual_due_at(decided) == dt.datetime(2026, 12, 5, 14, 0, tzinfo=TEHRAN)


def test_timing_is_configured_per_kind() -> None:
    urgent = KindTiming(validity=dt.timedelta(days=14), manual_deadline=Deadline.hours(48))
    kinds = inquiry_kinds(
        InquiriesConfig(
            timing={MORTGAGE: urgent}, workweek=Workweek(holidays=frozenset({dt.date(2026, 12, 1)}))
        )
    )
    assert kinds[MORTGAGE].validity == dt.timedelta(days=14)
    assert kinds[MORTGAGE].manual_deadline == Deadline.hours(48)
    assert kinds[PROPERTY_TRANSFER].validity == dt.timedelta(days=30)
    decided = dt.datetime(2026, 11, 28, 6, 0, tzinfo=dt.UTC)
    # The holiday on Tuesday 1 December pushes the fifth working day to Sunday.
    assert kinds[PROPERTY_TRANSFER].manual_due_at(decided) == dt.datetime(
        2026, 12, 6, 14, 0, tzinfo=TEHRAN
    )


def test_timing_for_a_kind_that_does_not_exist_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="unknown kinds: SALE"):
        inquiry_kinds(InquiriesConfig(timing={"SALE": InquiriesConfig().default_timing}))


def test_a_kind_without_personal_data_cannot_hold_a_check_that_reads_it() -> None:
    with pytest.raises(ValueError, match="reads personal data"):
        InquiryKind(
            name="PARCEL_FACTS",
            title=Text("x", "x"),
            checks=(checks.DUES_STATEMENT, checks.NO_SEIZURE),
            askers=frozenset({PrincipalKind.COUNTER}),
            personal_data=False,
            validity=dt.timedelta(days=30),
            manual_deadline=Deadline.working_days(5),
            workweek=Workweek(),
        )


def test_a_kind_is_data_a_new_one_needs_no_new_code() -> None:
    clearance = InquiryKind(
        name="DUES_CLEARANCE",
        title=Text("مفاصاحساب عوارض", "Dues clearance"),
        checks=(checks.DUES_SETTLED,),
        askers=frozenset({PrincipalKind.COUNTER, PrincipalKind.NOTARY}),
        personal_data=False,
        validity=dt.timedelta(days=10),
        manual_deadline=Deadline.working_days(1),
        workweek=Workweek(),
    )
    assert clearance.check("dues_settled") is checks.DUES_SETTLED
    assert not clearance.manual_checks
    with pytest.raises(ValueError, match="a check is listed twice"):
        InquiryKind(
            name="TWICE",
            title=Text("x", "x"),
            checks=(checks.DUES_SETTLED, checks.DUES_SETTLED),
            askers=frozenset(),
            personal_data=False,
            validity=dt.timedelta(days=1),
            manual_deadline=Deadline.working_days(1),
            workweek=Workweek(),
        )


def test_kinds_are_found_by_name() -> None:
    assert kind_named(MORTGAGE) is KINDS[MORTGAGE]
    with pytest.raises(ValueError, match="no inquiry kind is named 'SALE'"):
        kind_named("SALE")
    with pytest.raises(ValueError, match="no check named 'no_seizure'"):
        KINDS[PROPERTY_STATUS].check("no_seizure")


def test_only_departments_answer_manual_checks() -> None:
    with pytest.raises(ValueError, match="answered by a department"):
        ManualCheck(
            "asked_of_an_agency",
            Text("x", "x"),
            checks.LAND_REGISTRY,
            frozenset(),
            lambda facts, config: None,
            passed=Text("x", "x"),
            failed=Text("x", "x"),
        )
    with pytest.raises(ValueError, match="not a department"):
        checks.Authority("parks", agency=False, title=Text("x", "x"))
