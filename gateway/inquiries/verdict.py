"""Where an inquiry stands, from its checks' outcomes: pending while machines answer, waiting
for a department while a person must, overdue once a department's deadline has passed, and
decided when every check has an outcome.

The verdict is CLEAR when no check failed, NOT_CLEAR with the reasons of each failed check
otherwise. A statement-only kind (PROPERTY_STATUS) ends CLEAR, its statements as the reasons:
it asks for facts, not for permission, so once every fact is reported nothing in it can stand
in a partner's way; a third verdict would only add a value every client must handle while
meaning the same. That a CLEAR statement is not a clearance for anything else is said by the
kind, which the signed answer carries, and by its checks' INFO outcomes (never PASS).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

from gateway.inquiries.checks import Check, CheckOutcome, ManualCheck
from gateway.inquiries.facts import Outcome
from gateway.inquiries.kinds import InquiryKind
from gateway.inquiries.wording import Text
from gateway.inquiries.workdays import is_overdue

__all__ = ["CheckState", "InquiryStatus", "Standing", "Verdict", "Waiting", "standing"]


class InquiryStatus(Enum):
    PENDING = "PENDING"  # a machine is still answering (a rule, an agency being retried)
    WAITING_FOR_DEPARTMENT = "WAITING_FOR_DEPARTMENT"  # a check is in a department's queue
    DECIDED = "DECIDED"


class Verdict(Enum):
    CLEAR = "CLEAR"
    NOT_CLEAR = "NOT_CLEAR"


@dataclass(frozen=True, slots=True)
class CheckState:
    """One check of an inquiry as recorded: its outcome once it has one, and for a manual
    check in a department's queue the moment it is due (set once, when it was queued, so that
    a change of configuration does not move a deadline already given)."""

    check: Check
    outcome: CheckOutcome | None = None
    due_at: dt.datetime | None = None

    def __post_init__(self) -> None:
        if self.outcome is not None and self.outcome.check != self.check.name:
            raise ValueError(f"the outcome of {self.outcome.check} is not {self.check.name}'s")
        if self.due_at is not None:
            if not isinstance(self.check, ManualCheck):
                raise ValueError("only a manual check waits in a department's queue")
            if self.due_at.tzinfo is None:
                raise ValueError("due_at must be aware")

    @property
    def open(self) -> bool:
        return self.outcome is None

    @property
    def queued(self) -> bool:
        """Open, in its department's queue (a manual check not yet screened is not)."""
        return self.open and self.due_at is not None

    def overdue(self, now: dt.datetime) -> bool:
        return self.queued and self.due_at is not None and is_overdue(self.due_at, now)


@dataclass(frozen=True, slots=True)
class Waiting:
    """An open check, as a partner sees why its inquiry waits."""

    check: str
    title: Text
    authority: str
    authority_title: Text
    due_at: dt.datetime | None  # None: a machine is answering
    overdue: bool


@dataclass(frozen=True, slots=True)
class Standing:
    status: InquiryStatus
    verdict: Verdict | None  # None until decided
    # NOT_CLEAR: every failed check's reasons, in the kind's order of checks; CLEAR: the
    # statements of a statement-only kind, else none.
    reasons: tuple[Text, ...]
    waiting: tuple[Waiting, ...]
    overdue: bool

    @property
    def decided(self) -> bool:
        return self.status is InquiryStatus.DECIDED


def _in_kind_order(kind: InquiryKind, states: Sequence[CheckState]) -> list[CheckState]:
    by_name = {state.check.name: state for state in states}
    if len(by_name) != len(states):
        raise ValueError("a check is given twice")
    expected = [check.name for check in kind.checks]
    if set(by_name) != set(expected):
        raise ValueError(f"the checks given are not {kind.name}'s: {sorted(by_name)}")
    for check in kind.checks:
        if by_name[check.name].check != check:
            raise ValueError(f"{check.name} is not {kind.name}'s definition of it")
    return [by_name[name] for name in expected]


def standing(
    kind: InquiryKind, states: Sequence[CheckState], now: Callable[[], dt.datetime]
) -> Standing:
    """Where an inquiry of `kind` stands, given the state of each of its checks."""
    ordered = _in_kind_order(kind, states)
    still_open = [state for state in ordered if state.open]
    if still_open:
        moment = now()
        waiting = tuple(
            Waiting(
                check=state.check.name,
                title=state.check.title,
                authority=state.check.authority.name,
                authority_title=state.check.authority.title,
                due_at=state.due_at,
                overdue=state.overdue(moment),
            )
            for state in still_open
        )
        in_queue = any(state.queued for state in still_open)
        return Standing(
            status=InquiryStatus.WAITING_FOR_DEPARTMENT if in_queue else InquiryStatus.PENDING,
            verdict=None,
            reasons=(),
            waiting=waiting,
            overdue=any(item.overdue for item in waiting),
        )
    outcomes = [state.outcome for state in ordered if state.outcome is not None]
    failed = [outcome for outcome in outcomes if outcome.outcome is Outcome.FAIL]
    if failed:
        reasons = tuple(reason for outcome in failed for reason in outcome.reasons)
        return Standing(InquiryStatus.DECIDED, Verdict.NOT_CLEAR, reasons, (), overdue=False)
    stated = tuple(
        reason
        for outcome in outcomes
        if outcome.outcome is Outcome.INFO
        for reason in outcome.reasons
    )
    return Standing(InquiryStatus.DECIDED, Verdict.CLEAR, stated, (), overdue=False)
