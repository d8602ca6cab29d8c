"""The contact centre's database (مرکز ارتباط مردمی ۱۳۷): the services catalogue, the regions'
boundaries, the holidays, the routing rules, citizen requests with their history, replies and
followers, and in-person appointment slots.

Moments are naive UTC, as in the gateway's database; those that order records or are compared
to the second keep their microseconds on MariaDB too (`Moment`). Vocabularies (kinds, statuses,
channels, roles) are plain strings checked by the domain (gateway/requests/), not database
enums, so that adding a value is not a migration on three backends.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column

from db.base import ContactBase

Moment = DateTime(timezone=False).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def exact_string(length: int) -> String:
    """A string compared character for character on every backend: MariaDB's default
    collation would take "Key-1" and "key-1 " for the same idempotency key or registrar."""
    return String(length).with_variant(
        mysql.VARCHAR(length, collation="utf8mb4_bin"), "mysql", "mariadb"
    )


# --- Vocabularies (the domain checks them; kept here so every layer names them alike) -------

# A service's channel: where the citizen gets it answered.
SERVICE_CHANNELS = ("PORTAL", "CENTRE_137", "IN_PERSON", "SEMI_IN_PERSON")
# How a request came in.
REQUEST_CHANNELS = ("PORTAL", "CENTRE_137", "PARTNER_APP", "OPEN311")
REQUEST_KINDS = ("REQUEST", "COMPLAINT", "CRITICISM", "SUGGESTION", "THANKS")
REQUEST_STATUSES = (
    "SUBMITTED",
    "ASSIGNED",
    "IN_PROGRESS",
    "WAITING_FOR_CITIZEN",
    "RESOLVED",
    "REJECTED",
    "REFERRED",
    "REOPENED",
    "CLOSED",
)
# A department's part in a service: it answers requests (RESPONSIBLE) or only sees them.
DEPARTMENT_ROLES = ("RESPONSIBLE", "SEES")
# Agencies outside the municipality a matter may be referred to.
OUTSIDE_AGENCIES = ("water", "electricity", "gas", "police")


class ServiceGroup(ContactBase):
    """One of the catalogue's five groups (e.g. خدمات شهری و فضای سبز)."""

    __tablename__ = "service_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name_fa: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer)


class Service(ContactBase):
    """A service of the catalogue (شناسنامه خدمت): its channel, its process owner (the
    department that sets its policy), its deadline in working days, the questions a request
    for it answers (Open311 attributes), and the agency a matter is referred to when it is
    not the municipality's (water, electricity, gas, police)."""

    __tablename__ = "services"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("service_groups.id"), index=True)
    name_fa: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    description_fa: Mapped[str | None] = mapped_column(Text)
    description_en: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(16))
    owner_department: Mapped[str] = mapped_column(String(64))
    deadline_days: Mapped[int] = mapped_column(Integer)
    # [{"code", "datatype", "required", "description_fa", "description_en", "order",
    #   "values": [{"key", "name_fa", "name_en"}]}]; datatype as Open311's.
    questions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    keywords: Mapped[str | None] = mapped_column(String(500))
    referred_agency: Mapped[str | None] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(Moment)
    updated_at: Mapped[dt.datetime] = mapped_column(Moment)


class ServiceDepartment(ContactBase):
    """A department's part in a service: RESPONSIBLE (executes it) or SEES (is kept informed)."""

    __tablename__ = "service_departments"
    __table_args__ = (UniqueConstraint("service_id", "department"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"), index=True)
    department: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(16))


class ServiceRegion(ContactBase):
    """A region where a service is enabled (a new one is piloted in one region first)."""

    __tablename__ = "service_regions"
    __table_args__ = (UniqueConstraint("service_id", "region"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"), index=True)
    region: Mapped[int] = mapped_column(Integer, index=True)
    enabled_at: Mapped[dt.datetime] = mapped_column(Moment)


class RegionArea(ContactBase):
    """A region's boundary and its office: `boundary` is one ring of [latitude, longitude]
    points (WGS 84), closed implicitly; `office` names the region office (دفتر منطقه) that
    answers its requests on the ground."""

    __tablename__ = "region_areas"

    region: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name_fa: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    office: Mapped[str] = mapped_column(String(64))
    boundary: Mapped[list[list[float]]] = mapped_column(JSON)


class Holiday(ContactBase):
    """An official holiday (تعطیل رسمی) of the year: deadlines and appointment slots skip it."""

    __tablename__ = "holidays"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    name_fa: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))


class RoutingRule(ContactBase):
    """A routing rule: rules are tried in `position` order and the first that matches routes
    the request. Every condition left null matches anything; `area` is a ring like a region's
    boundary; `hours_from`/`hours_to` a window of Tehran's local hours (from inclusive, to
    exclusive, wrapping past midnight when from > to); `answers` a mapping of question code to
    the answer required. The target: the responsible department and region office (null:
    the service's responsible department, the region's office), or an outside agency."""

    __tablename__ = "routing_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    position: Mapped[int] = mapped_column(Integer, index=True)
    name: Mapped[str] = mapped_column(String(200))
    service_code: Mapped[str | None] = mapped_column(String(32))
    group_code: Mapped[str | None] = mapped_column(String(32))
    kind: Mapped[str | None] = mapped_column(String(16))
    region: Mapped[int | None] = mapped_column(Integer)
    area: Mapped[list[list[float]] | None] = mapped_column(JSON)
    hours_from: Mapped[int | None] = mapped_column(Integer)
    hours_to: Mapped[int | None] = mapped_column(Integer)
    answers: Mapped[dict[str, str] | None] = mapped_column(JSON)
    department: Mapped[str | None] = mapped_column(String(64))
    region_office: Mapped[str | None] = mapped_column(String(64))
    referred_to: Mapped[str | None] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class CitizenRequestRecord(ContactBase):
    """A citizen's request, complaint, criticism, suggestion or thanks (درخواست، شکایت، انتقاد،
    پیشنهاد، تقدیر) and where it stands.

    `registered_by` is the registering principal (`Principal.label`): its idempotency keys are
    its own. The citizen's name and mobile are personal data; `anonymised_at` says when they
    were erased. `paused_since` is set while the request waits for the citizen; when the wait
    ends the deadline moves by the working days it took (gateway/requests/deadlines.py), and
    `paused_seconds` adds the time waited (all of it, for the figures).
    """

    __tablename__ = "citizen_requests"
    __table_args__ = (
        UniqueConstraint("registered_by", "idempotency_key"),
        Index("ix_citizen_requests_department_status", "department", "status"),
        Index("ix_citizen_requests_service_id_status", "service_id", "status"),
        Index("ix_citizen_requests_region_registered_at", "region", "registered_at"),
        # contact_0002: Parcel.citizenRequests by address; the engaged citizens (a citizen's
        # requests by mobile; the consenting mobiles, read from the index alone).
        Index("ix_citizen_requests_address", "address"),
        Index("ix_citizen_requests_mobile_registered_at", "citizen_mobile", "registered_at"),
        Index(
            "ix_citizen_requests_consent_mobile",
            "public_consent",
            "anonymised_at",
            "citizen_mobile",
        ),
        # contact_0003: Parcel.citizenRequests near the parcel's postal point (a bounding
        # box on latitude, then longitude).
        Index("ix_citizen_requests_latitude_longitude", "latitude", "longitude"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tracking_code: Mapped[str] = mapped_column(String(16), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(32), index=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    channel: Mapped[str] = mapped_column(String(16))
    registered_by_kind: Mapped[str] = mapped_column(String(32))
    registered_by: Mapped[str] = mapped_column(exact_string(200), index=True)
    idempotency_key: Mapped[str] = mapped_column(exact_string(200))
    # SHA-256 of the submitted input: the same key with another input is a conflict.
    input_digest: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text)
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    address: Mapped[str | None] = mapped_column(String(500))
    renewal_code: Mapped[str | None] = mapped_column(String(40), index=True)
    region: Mapped[int | None] = mapped_column(Integer)
    department: Mapped[str | None] = mapped_column(String(64))
    region_office: Mapped[str | None] = mapped_column(String(64))
    referred_to: Mapped[str | None] = mapped_column(String(32))
    routing_rule_id: Mapped[int | None] = mapped_column(Integer)
    citizen_name: Mapped[str | None] = mapped_column(String(200))
    citizen_mobile: Mapped[str | None] = mapped_column(String(16))
    photo_urls: Mapped[list[str]] = mapped_column(JSON, default=list)
    answers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # An Open311 token for a request registered there, if the client was given one.
    open311_token: Mapped[str | None] = mapped_column(String(64), unique=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("citizen_requests.id"), index=True)
    merged_into_id: Mapped[int | None] = mapped_column(
        ForeignKey("citizen_requests.id"), index=True
    )
    registered_at: Mapped[dt.datetime] = mapped_column(Moment, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(Moment)
    assigned_at: Mapped[dt.datetime | None] = mapped_column(Moment)
    deadline_at: Mapped[dt.datetime | None] = mapped_column(Moment, index=True)
    paused_since: Mapped[dt.datetime | None] = mapped_column(Moment)
    paused_seconds: Mapped[int] = mapped_column(Integer, default=0)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(Moment)
    closed_at: Mapped[dt.datetime | None] = mapped_column(Moment, index=True)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    rating: Mapped[int | None] = mapped_column(Integer)
    rated_at: Mapped[dt.datetime | None] = mapped_column(Moment)
    # The citizen agreed to be named among the most engaged reporters.
    public_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    anonymised_at: Mapped[dt.datetime | None] = mapped_column(Moment)
    overdue_at: Mapped[dt.datetime | None] = mapped_column(Moment)
    reminded_at: Mapped[dt.datetime | None] = mapped_column(Moment)
    escalated_at: Mapped[dt.datetime | None] = mapped_column(Moment)
    # Bumped by every change, so that two writers notice each other.
    version: Mapped[int] = mapped_column(Integer, default=1)


class RequestHistoryRecord(ContactBase):
    """One step of a request's life, append-only: the status it left and entered (the same
    for an event that is not a transition: routed, merged, split, replied, rated), who, when,
    and a note."""

    __tablename__ = "request_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("citizen_requests.id"), index=True)
    event: Mapped[str] = mapped_column(String(16))  # TRANSITION | ROUTED | MERGED | SPLIT | …
    from_status: Mapped[str | None] = mapped_column(String(32))
    to_status: Mapped[str] = mapped_column(String(32))
    at: Mapped[dt.datetime] = mapped_column(Moment)
    actor_kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(200))
    department: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)


class RequestReplyRecord(ContactBase):
    """A reply to the citizen (پاسخ به شهروند) from a department or the 137 centre."""

    __tablename__ = "request_replies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("citizen_requests.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(Moment)
    author_kind: Mapped[str] = mapped_column(String(32))
    author: Mapped[str] = mapped_column(String(200))
    department: Mapped[str | None] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)


class RequestFollowerRecord(ContactBase):
    """A merged duplicate's citizen following the surviving request: they hear its updates
    through their own tracking code."""

    __tablename__ = "request_followers"
    __table_args__ = (UniqueConstraint("request_id", "follower_request_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("citizen_requests.id"), index=True)
    follower_request_id: Mapped[int] = mapped_column(ForeignKey("citizen_requests.id"), index=True)
    since: Mapped[dt.datetime] = mapped_column(Moment)


class AppointmentSlot(ContactBase):
    """A time at a region office for an in-person service; `booked_request_id` is unique, and
    a booking sets it only where it is still null, so a slot is never booked twice."""

    __tablename__ = "appointment_slots"
    __table_args__ = (
        UniqueConstraint("region_office", "service_id", "starts_at"),
        Index("ix_appointment_slots_service_id_starts_at", "service_id", "starts_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    region: Mapped[int] = mapped_column(Integer)
    region_office: Mapped[str] = mapped_column(String(64))
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    starts_at: Mapped[dt.datetime] = mapped_column(Moment)
    ends_at: Mapped[dt.datetime] = mapped_column(Moment)
    booked_request_id: Mapped[int | None] = mapped_column(
        ForeignKey("citizen_requests.id"), unique=True
    )
    booked_at: Mapped[dt.datetime | None] = mapped_column(Moment)


class AppointmentEvent(ContactBase):
    """A booking, cancellation or rescheduling, append-only."""

    __tablename__ = "appointment_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slot_id: Mapped[int] = mapped_column(ForeignKey("appointment_slots.id"), index=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("citizen_requests.id"), index=True)
    event: Mapped[str] = mapped_column(String(16))  # BOOKED | CANCELLED | RESCHEDULED
    at: Mapped[dt.datetime] = mapped_column(Moment)
    actor: Mapped[str] = mapped_column(String(200))
