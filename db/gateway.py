"""The gateway's own database: principals and their API keys, the audit trail, registered
operations, inquiries with their checks, and partners' webhooks with their deliveries."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column

from db.base import GatewayBase


class PrincipalRecord(GatewayBase):
    """A partner office, a department or an operator that holds API keys."""

    __tablename__ = "principals"
    __table_args__ = (UniqueConstraint("kind", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    department: Mapped[str | None] = mapped_column(String(64))
    # The organisation a partner belongs to, where a rule depends on it: for a bank, its
    # three-digit bank code (as in a Sheba number), which starts its payment references.
    organisation: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=False))


class ApiKey(GatewayBase):
    """An API key: `gw_<prefix>_<secret>`; only the secret's SHA-256 is kept."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    principal_id: Mapped[int] = mapped_column(ForeignKey("principals.id"), index=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=False))
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=False))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=False))


class AuditRecord(GatewayBase):
    """One read of personal data or one change, chained: `hash` covers the record and
    `prev_hash`, so an edited, deleted or reordered record breaks the chain."""

    __tablename__ = "audit_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Microseconds are hashed: MariaDB's DATETIME must keep them (fsp=6).
    recorded_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=False).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
    )
    request_id: Mapped[str] = mapped_column(String(64))  # the gateway's own, unique per request
    # The X-Request-Id the caller sent, if any: its own correlation, not trusted to be unique.
    caller_request_id: Mapped[str | None] = mapped_column(String(64))
    principal_kind: Mapped[str] = mapped_column(String(32), index=True)
    principal_id: Mapped[str] = mapped_column(String(200), index=True)
    action: Mapped[str] = mapped_column(String(16))  # read | change
    operation: Mapped[str] = mapped_column(String(200))
    subject_type: Mapped[str] = mapped_column(String(64))
    subject_id: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str | None] = mapped_column(String(200))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditHead(GatewayBase):
    """The chain's last record and length, updated with every append, so that deleting
    records from the end is detected too. One row (id 1); appends lock it."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_id: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))
    length: Mapped[int] = mapped_column(Integer)


class RegisteredOperation(GatewayBase):
    """A trusted document: in production mode partners may send only these, by hash."""

    __tablename__ = "registered_operations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    document: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=False))


# Moments that order records or are compared to the second keep their microseconds on
# MariaDB too (its DATETIME drops them by default). Naive UTC, as everywhere in this database.
Moment = DateTime(timezone=False).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


# The answers that are not valid (revoked or superseded): what the status list reads.
WITHDRAWN_ANSWERS = text(
    "answer_id IS NOT NULL AND (revoked_at IS NOT NULL OR superseded_by IS NOT NULL)"
)


class InquiryRecord(GatewayBase):
    """An inquiry (استعلام) a partner submitted: what it asks about, where it stands, and
    once decided its verdict and the municipality's signed answer.

    `partner_id` is the submitting principal (its idempotency keys are its own);
    `organisation` the partner as the answer names it (a bank's code, else the principal),
    whose every principal sees the inquiry. The id is also the answer's index in the status
    list (gateway/inquiries/status.py).
    """

    __tablename__ = "inquiries"
    __table_args__ = (
        UniqueConstraint("partner_id", "idempotency_key"),
        # The status list reads only the answers that are not valid, a few among many
        # (gateway/inquiries/publication.py): a partial index of just those on PostgreSQL and
        # SQLite; MariaDB has no partial indexes and scans the whole index, which still holds
        # every column the list reads and is far smaller than the table.
        Index(
            "ix_inquiries_withdrawn",
            "revoked_at",
            "superseded_by",
            "answer_id",
            "id",
            postgresql_where=WITHDRAWN_ANSWERS,
            sqlite_where=WITHDRAWN_ANSWERS,
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tracking_code: Mapped[str] = mapped_column(String(16), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    partner_kind: Mapped[str] = mapped_column(String(32))
    partner_id: Mapped[str] = mapped_column(String(200), index=True)
    organisation: Mapped[str] = mapped_column(String(200), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(200))
    # SHA-256 of the submitted input: the same key with another input is a conflict.
    input_digest: Mapped[str] = mapped_column(String(64))
    parcel_id: Mapped[int] = mapped_column(Integer, index=True)
    region: Mapped[int] = mapped_column(Integer)
    renewal_code: Mapped[str] = mapped_column(String(32))
    registry_plate: Mapped[str | None] = mapped_column(String(64))
    applicant_national_code: Mapped[str] = mapped_column(String(10))
    counterparty_national_code: Mapped[str | None] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(32), index=True)
    verdict: Mapped[str | None] = mapped_column(String(16))
    reasons: Mapped[list[dict[str, str]] | None] = mapped_column(JSON)
    submitted_at: Mapped[dt.datetime] = mapped_column(Moment, index=True)
    decided_at: Mapped[dt.datetime | None] = mapped_column(Moment)
    valid_until: Mapped[dt.datetime | None] = mapped_column(Moment)
    answer_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    answer: Mapped[str | None] = mapped_column(Text)
    # A newer answer for the same parcel and kind replaces this one (its inquiry's id).
    superseded_by: Mapped[int | None] = mapped_column(Integer)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(Moment)
    revocation_reason: Mapped[str | None] = mapped_column(String(500))


class InquiryCheckRecord(GatewayBase):
    """One check of an inquiry: pending while a machine answers it (an agency may be
    retried), queued in a department with its deadline when a person must, done with its
    outcome. `authority` is the department or agency that answers it; a department sees the
    inquiries holding a check of its own."""

    __tablename__ = "inquiry_checks"
    __table_args__ = (UniqueConstraint("inquiry_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    inquiry_id: Mapped[int] = mapped_column(ForeignKey("inquiries.id"), index=True)
    name: Mapped[str] = mapped_column(String(32))
    authority: Mapped[str] = mapped_column(String(32), index=True)
    manual: Mapped[bool] = mapped_column(Boolean)
    state: Mapped[str] = mapped_column(String(16), index=True)  # pending | queued | done
    outcome: Mapped[str | None] = mapped_column(String(8))  # PASS | FAIL | INFO
    reasons: Mapped[list[dict[str, str]] | None] = mapped_column(JSON)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    read_at: Mapped[dt.datetime | None] = mapped_column(Moment)
    queued_at: Mapped[dt.datetime | None] = mapped_column(Moment)
    due_at: Mapped[dt.datetime | None] = mapped_column(Moment)
    answered_by: Mapped[str | None] = mapped_column(String(200))
    officer_role: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[dt.datetime | None] = mapped_column(Moment)
    # Why a machine has not answered yet (an agency unavailable), as the partner sees it.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(200))


class PartnerWebhook(GatewayBase):
    """Where a partner is told of its inquiries' changes, configured by an operator. The
    secret signs each body (HMAC-SHA256); it is shown once, when it is set."""

    __tablename__ = "partner_webhooks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation: Mapped[str] = mapped_column(String(200), unique=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(Moment)


class WebhookDelivery(GatewayBase):
    """One event to deliver to a partner's webhook, and how its attempts went."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[str] = mapped_column(String(64), unique=True)
    organisation: Mapped[str] = mapped_column(String(200), index=True)
    inquiry_id: Mapped[int] = mapped_column(ForeignKey("inquiries.id"), index=True)
    event: Mapped[str] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(String(2000))
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(Moment)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(Moment)


class WebhookAttempt(GatewayBase):
    """One attempt at a delivery: when, what the partner's server answered, or the error."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("webhook_deliveries.id"), index=True)
    attempted_at: Mapped[dt.datetime] = mapped_column(Moment)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(200))
    duration_ms: Mapped[int] = mapped_column(Integer)
