"""The gateway's own database: principals and their API keys, the audit trail, registered
operations. (Inquiries and citizen requests arrive with later work.)"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
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
