"""Inquiries and their checks as the rest of the gateway sees them: frozen values built from
rows once, so that no column name reaches the schema."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Self

from sqlalchemy import ColumnElement, Row

from db.gateway import InquiryCheckRecord, InquiryRecord
from gateway.inquiries.wording import Text
from gateway.inquiries.workdays import is_overdue

INQUIRIES = InquiryRecord.__table__
CHECKS = InquiryCheckRecord.__table__

PENDING = "PENDING"
WAITING_FOR_DEPARTMENT = "WAITING_FOR_DEPARTMENT"
DECIDED = "DECIDED"

# A check's state: a machine is answering it; it waits in its department's queue; done.
CHECK_PENDING = "pending"
CHECK_QUEUED = "queued"
CHECK_DONE = "done"


def aware(moment: dt.datetime | None) -> dt.datetime | None:
    """A moment read from the database (naive UTC) as an aware one."""
    if moment is None:
        return None
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment


def naive(moment: dt.datetime) -> dt.datetime:
    """An aware moment as the database keeps it (naive UTC)."""
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


def past_due(due_at: ColumnElement[Any], now: dt.datetime) -> ColumnElement[bool]:
    """workdays.is_overdue as SQL over a due_at column: an answer at the deadline itself is
    on time. `now` is aware, or naive UTC as the database keeps it."""
    return due_at < (now if now.tzinfo is None else naive(now))


def texts(value: Any) -> tuple[Text, ...]:
    return tuple(Text(item["fa"], item["en"]) for item in value or ())


def stored(reasons: tuple[Text, ...]) -> list[dict[str, str]]:
    return [{"fa": reason.fa, "en": reason.en} for reason in reasons]


@dataclass(frozen=True, slots=True)
class Inquiry:
    id: int
    tracking_code: str
    kind: str
    partner_kind: str
    partner_id: str
    organisation: str
    parcel_id: int
    region: int
    renewal_code: str
    registry_plate: str | None
    applicant_national_code: str
    counterparty_national_code: str | None
    status: str
    verdict: str | None
    reasons: tuple[Text, ...]
    submitted_at: dt.datetime
    decided_at: dt.datetime | None
    valid_until: dt.datetime | None
    answer_id: str | None
    answer: str | None
    superseded_by: int | None
    revoked_at: dt.datetime | None

    @classmethod
    def from_row(cls, row: Row[Any] | InquiryRecord) -> Self:
        submitted = aware(row.submitted_at)
        assert submitted is not None
        return cls(
            id=row.id,
            tracking_code=row.tracking_code,
            kind=row.kind,
            partner_kind=row.partner_kind,
            partner_id=row.partner_id,
            organisation=row.organisation,
            parcel_id=row.parcel_id,
            region=row.region,
            renewal_code=row.renewal_code,
            registry_plate=row.registry_plate,
            applicant_national_code=row.applicant_national_code,
            counterparty_national_code=row.counterparty_national_code,
            status=row.status,
            verdict=row.verdict,
            reasons=texts(row.reasons),
            submitted_at=submitted,
            decided_at=aware(row.decided_at),
            valid_until=aware(row.valid_until),
            answer_id=row.answer_id,
            answer=row.answer,
            superseded_by=row.superseded_by,
            revoked_at=aware(row.revoked_at),
        )


@dataclass(frozen=True, slots=True)
class InquiryCheck:
    id: int
    inquiry_id: int
    name: str
    authority: str
    manual: bool
    state: str
    outcome: str | None
    reasons: tuple[Text, ...]
    read_at: dt.datetime | None
    queued_at: dt.datetime | None
    due_at: dt.datetime | None
    answered_by: str | None
    officer_role: str | None
    note: str | None
    answered_at: dt.datetime | None
    attempts: int
    last_error: str | None

    @classmethod
    def from_row(cls, row: Row[Any] | InquiryCheckRecord) -> Self:
        return cls(
            id=row.id,
            inquiry_id=row.inquiry_id,
            name=row.name,
            authority=row.authority,
            manual=bool(row.manual),
            state=row.state,
            outcome=row.outcome,
            reasons=texts(row.reasons),
            read_at=aware(row.read_at),
            queued_at=aware(row.queued_at),
            due_at=aware(row.due_at),
            answered_by=row.answered_by,
            officer_role=row.officer_role,
            note=row.note,
            answered_at=aware(row.answered_at),
            attempts=row.attempts or 0,
            last_error=row.last_error,
        )

    def overdue(self, now: dt.datetime) -> bool:
        return (
            self.state == CHECK_QUEUED and self.due_at is not None and is_overdue(self.due_at, now)
        )
