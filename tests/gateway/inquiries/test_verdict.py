"""Where an inquiry stands: pending, waiting for a department (overdue past its deadline), or
decided CLEAR or NOT_CLEAR with the reasons of each failed check."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.inquiries import checks
from gateway.inquiries.checks import AutomaticCheck, Check, CheckOutcome
from gateway.inquiries.facts import Outcome
from gateway.inquiries.kinds import KINDS, MORTGAGE, PROPERTY_STATUS, PROPERTY_TRANSFER
from gateway.inquiries.verdict import CheckState, InquiryStatus, Verdict, standing
from gateway.inquiries.wording import Text

TRANSFER = KINDS[PROPERTY_TRANSFER]
READ_AT = dt.datetime(2026, 11, 28, 6, 0, tzinfo=dt.UTC)
DUE = TRANSFER.manual_due_at(READ_AT)


class Clock:
    """A wall clock a test sets; counts how often it is read."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now
        self.reads = 0

    def __call__(self) -> dt.datetime:
        self.reads += 1
        return self.now


def outcome(check: Check, result: Outcome, *reasons: str) -> CheckOutcome:
    return CheckOutcome(
        check=check.name,
        authority=check.authority.name,
        outcome=result,
        reasons=tuple(Text(f"{reason} (fa)", reason) for reason in reasons),
        details={},
        read_at=READ_AT,
    )


def passed(check: Check) -> CheckState:
    return CheckState(check, outcome(check, Outcome.PASS, f"{check.name} passed"))


def all_passed(*but: CheckState) -> list[CheckState]:
    replaced = {state.check.name: state for state in but}
    return [replaced.get(check.name) or passed(check) for check in TRANSFER.checks]


def test_every_check_passed_is_clear_without_reasons() -> None:
    result = standing(TRANSFER, all_passed(), Clock(READ_AT))
    assert result.status is InquiryStatus.DECIDED
    assert result.decided
    assert result.verdict is Verdict.CLEAR
    assert result.reasons == ()
    assert result.waiting == ()
    assert not result.overdue


def test_failed_checks_give_not_clear_with_each_ones_reasons_in_the_kinds_order() -> None:
    seized = CheckState(
        checks.NO_SEIZURE, outcome(checks.NO_SEIZURE, Outcome.FAIL, "seized by court 4")
    )
    unpaid = CheckState(
        checks.DUES_SETTLED,
        outcome(checks.DUES_SETTLED, Outcome.FAIL, "renewal duty 1403", "waste fee 1403"),
    )
    # Given in another order than the kind's: the reasons still follow the kind.
    states = list(reversed(all_passed(seized, unpaid)))
    result = standing(TRANSFER, states, Clock(READ_AT))
    assert result.verdict is Verdict.NOT_CLEAR
    assert [reason.en for reason in result.reasons] == [
        "renewal duty 1403",
        "waste fee 1403",
        "seized by court 4",
    ]
    assert result.reasons[0].fa == "renewal duty ۱۴۰۳ (fa)"


def test_an_automatic_check_still_open_keeps_the_inquiry_pending() -> None:
    result = standing(
        TRANSFER,
        all_passed(CheckState(checks.APPLICANT_ALIVE)),
        Clock(READ_AT + dt.timedelta(days=60)),
    )
    assert result.status is InquiryStatus.PENDING
    assert result.verdict is None
    assert not result.overdue  # an agency being retried has no department's deadline
    assert [(w.check, w.authority, w.due_at, w.overdue) for w in result.waiting] == [
        ("applicant_alive", "civil_registry", None, False)
    ]
    assert result.waiting[0].authority_title.en == "Civil registry"


def test_a_manual_check_in_planning_queue_waits_for_the_department_until_overdue() -> None:
    queued = CheckState(checks.BUILDING_MATCHES_PERMIT, due_at=DUE)
    before = standing(TRANSFER, all_passed(queued), Clock(DUE - dt.timedelta(hours=1)))
    assert before.status is InquiryStatus.WAITING_FOR_DEPARTMENT
    assert not before.overdue
    at = standing(TRANSFER, all_passed(queued), Clock(DUE))
    assert not at.overdue
    after = standing(TRANSFER, all_passed(queued), Clock(DUE + dt.timedelta(seconds=1)))
    assert after.status is InquiryStatus.WAITING_FOR_DEPARTMENT
    assert after.overdue
    assert [(w.check, w.authority, w.due_at, w.overdue) for w in after.waiting] == [
        ("building_matches_permit", "planning", DUE, True)
    ]


def test_waiting_for_a_department_wins_over_pending_and_both_are_listed() -> None:
    states = all_passed(
        CheckState(checks.BUILDING_MATCHES_PERMIT, due_at=DUE), CheckState(checks.NO_SEIZURE)
    )
    result = standing(TRANSFER, states, Clock(READ_AT))
    assert result.status is InquiryStatus.WAITING_FOR_DEPARTMENT
    assert [w.check for w in result.waiting] == ["no_seizure", "building_matches_permit"]


def test_a_manual_check_not_yet_screened_is_pending_not_waiting() -> None:
    result = standing(
        TRANSFER, all_passed(CheckState(checks.BUILDING_MATCHES_PERMIT)), Clock(READ_AT)
    )
    assert result.status is InquiryStatus.PENDING


def test_the_officers_answer_decides_it() -> None:
    answered = checks.BUILDING_MATCHES_PERMIT.answer(
        Outcome.FAIL, note="extra floor", officer_role="planning officer", answered_at=DUE
    )
    states = all_passed(CheckState(checks.BUILDING_MATCHES_PERMIT, answered, due_at=DUE))
    result = standing(TRANSFER, states, Clock(DUE + dt.timedelta(days=3)))
    assert result.verdict is Verdict.NOT_CLEAR
    assert not result.overdue
    assert [reason.en for reason in result.reasons] == [
        "Urban planning reports the building does not match its building permit"
    ]


def test_a_statement_ends_clear_with_the_statements_as_reasons() -> None:
    status = KINDS[PROPERTY_STATUS]
    states = [
        CheckState(check, outcome(check, Outcome.INFO, f"{check.name} stated"))
        for check in status.checks
    ]
    result = standing(status, states, Clock(READ_AT))
    assert result.verdict is Verdict.CLEAR
    assert [reason.en for reason in result.reasons] == [
        "dues_statement stated",
        "certificates_statement stated",
        "violations_statement stated",
    ]


def test_the_clock_is_read_only_while_checks_are_open() -> None:
    clock = Clock(READ_AT)
    standing(TRANSFER, all_passed(), clock)
    assert clock.reads == 0
    standing(TRANSFER, all_passed(CheckState(checks.NO_SEIZURE)), clock)
    assert clock.reads == 1


def test_states_that_are_not_the_kinds_checks_are_refused() -> None:
    clock = Clock(READ_AT)
    with pytest.raises(ValueError, match="not PROPERTY_TRANSFER's"):
        standing(TRANSFER, all_passed()[:-1], clock)
    with pytest.raises(ValueError, match="given twice"):
        standing(TRANSFER, [*all_passed(), passed(checks.NO_SEIZURE)], clock)
    with pytest.raises(ValueError, match="not MORTGAGE's"):
        standing(KINDS[MORTGAGE], all_passed(), clock)
    impostor = AutomaticCheck(
        "no_seizure", Text("x", "x"), checks.PLANNING, frozenset(), checks.NO_SEIZURE.rule
    )
    with pytest.raises(ValueError, match="not PROPERTY_TRANSFER's definition"):
        standing(TRANSFER, all_passed(passed(impostor)), clock)


def test_malformed_check_states_are_refused() -> None:
    with pytest.raises(ValueError, match="not no_seizure's"):
        CheckState(checks.NO_SEIZURE, outcome(checks.DUES_SETTLED, Outcome.PASS))
    with pytest.raises(ValueError, match="only a manual check"):
        CheckState(checks.NO_SEIZURE, due_at=DUE)
    with pytest.raises(ValueError, match="aware"):
        CheckState(checks.BUILDING_MATCHES_PERMIT, due_at=DUE.replace(tzinfo=None))


_states = st.sampled_from(["pass", "fail", "open"])


@settings(deadline=None)  # timing on a loaded machine is no failure
@given(st.lists(_states, min_size=len(TRANSFER.checks), max_size=len(TRANSFER.checks)))
def test_clear_exactly_when_every_check_is_answered_and_none_failed(drawn: list[str]) -> None:
    states = []
    for check, state in zip(TRANSFER.checks, drawn, strict=True):
        if state == "open":
            states.append(CheckState(check))
        else:
            answer = Outcome.PASS if state == "pass" else Outcome.FAIL
            states.append(CheckState(check, outcome(check, answer, f"{check.name} {state}")))
    result = standing(TRANSFER, states, Clock(READ_AT))
    if "open" in drawn:
        assert result.status is not InquiryStatus.DECIDED
        assert result.verdict is None
        assert len(result.waiting) == drawn.count("open")
    elif "fail" in drawn:
        assert result.verdict is Verdict.NOT_CLEAR
        failed = [c.name for c, s in zip(TRANSFER.checks, drawn, strict=True) if s == "fail"]
        assert [reason.en for reason in result.reasons] == [f"{name} fail" for name in failed]
    else:
        assert result.verdict is Verdict.CLEAR
        assert result.reasons == ()
