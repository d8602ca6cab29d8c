"""The urban planning department's database: parcels, owners, buildings, permits, violations."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db.base import PlanningBase, Rials

LAND_USES = ("residential", "commercial", "office", "industrial", "green_space", "educational")
PERMIT_KINDS = ("new_construction", "renovation", "extension")
CERTIFICATE_KINDS = ("completion", "no_violation")
VIOLATION_KINDS = ("excess_density", "no_permit", "parking_removed", "use_change", "setback")
VIOLATION_STATUSES = ("open", "resolved")
# Article 100 commission rulings.
RULINGS = ("fine", "demolition", "settled")


class Region(PlanningBase):
    __tablename__ = "regions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[int] = mapped_column(Integer, unique=True)
    name: Mapped[str] = mapped_column(String(100))

    districts: Mapped[list[District]] = relationship(back_populates="region", lazy="raise")


class District(PlanningBase):
    __tablename__ = "districts"
    __table_args__ = (UniqueConstraint("region_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))

    region: Mapped[Region] = relationship(back_populates="districts", lazy="raise")


class Person(PlanningBase):
    __tablename__ = "persons"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    national_code: Mapped[str] = mapped_column(String(10), unique=True)
    first_name: Mapped[str] = mapped_column(String(60))
    last_name: Mapped[str] = mapped_column(String(60))
    father_name: Mapped[str] = mapped_column(String(60))
    birth_date: Mapped[dt.date] = mapped_column(Date)


class Parcel(PlanningBase):
    __tablename__ = "parcels"
    __table_args__ = (
        UniqueConstraint("registry_section", "main_plate", "sub_plate"),
        # Every column the filters read, in id order and per region or land use in id order:
        # a filtered page reads its ids by an index-only scan (gateway.parcels).
        Index("ix_parcels_id_filters", "id", "region_id", "district_id", "land_use"),
        Index("ix_parcels_region_id_filters", "region_id", "id", "district_id", "land_use"),
        Index("ix_parcels_land_use_id_filters", "land_use", "id", "region_id", "district_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("districts.id"), index=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), index=True)
    renewal_code: Mapped[str] = mapped_column(String(40), unique=True)
    registry_section: Mapped[int] = mapped_column(Integer)
    main_plate: Mapped[int] = mapped_column(Integer)
    sub_plate: Mapped[int] = mapped_column(Integer)
    postal_code: Mapped[str] = mapped_column(String(10), index=True)
    address: Mapped[str] = mapped_column(String(300))
    land_use: Mapped[str] = mapped_column(String(32))
    density_percent: Mapped[int] = mapped_column(Integer)
    area: Mapped[Decimal] = mapped_column(Numeric(12, 2))

    ownerships: Mapped[list[Ownership]] = relationship(lazy="raise")


class Ownership(PlanningBase):
    """A person's share of a parcel, in dang (six dang make the whole)."""

    __tablename__ = "ownerships"
    __table_args__ = (
        UniqueConstraint("parcel_id", "person_id"),
        CheckConstraint("share > 0 AND share <= 6", name="share_in_dang"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    parcel_id: Mapped[int] = mapped_column(ForeignKey("parcels.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    share: Mapped[Decimal] = mapped_column(Numeric(7, 4))
    acquired_on: Mapped[dt.date] = mapped_column(Date)


class Building(PlanningBase):
    __tablename__ = "buildings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    parcel_id: Mapped[int] = mapped_column(ForeignKey("parcels.id"), index=True)
    floors: Mapped[int] = mapped_column(Integer)
    units: Mapped[int] = mapped_column(Integer)
    built_area: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    construction_year: Mapped[int] = mapped_column(Integer)  # Solar Hijri year


class Permit(PlanningBase):
    __tablename__ = "permits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    parcel_id: Mapped[int] = mapped_column(ForeignKey("parcels.id"), index=True)
    number: Mapped[str] = mapped_column(String(30), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    issued_on: Mapped[dt.date] = mapped_column(Date)
    expires_on: Mapped[dt.date] = mapped_column(Date)
    floors: Mapped[int] = mapped_column(Integer)
    units: Mapped[int] = mapped_column(Integer)


class Certificate(PlanningBase):
    """A completion certificate (پایان کار) or a no-violation certificate (عدم خلاف)."""

    __tablename__ = "certificates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    parcel_id: Mapped[int] = mapped_column(ForeignKey("parcels.id"), index=True)
    building_id: Mapped[int | None] = mapped_column(ForeignKey("buildings.id"))
    kind: Mapped[str] = mapped_column(String(32))
    number: Mapped[str] = mapped_column(String(30), unique=True)
    issued_on: Mapped[dt.date] = mapped_column(Date)


class Violation(PlanningBase):
    """A building violation and, once ruled on, the Article 100 commission's ruling."""

    __tablename__ = "violations"
    __table_args__ = (Index("ix_violations_status_parcel_id", "status", "parcel_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    parcel_id: Mapped[int] = mapped_column(ForeignKey("parcels.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    detected_on: Mapped[dt.date] = mapped_column(Date)
    description: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(16))
    ruling: Mapped[str | None] = mapped_column(String(16))
    ruled_on: Mapped[dt.date | None] = mapped_column(Date)
    fine: Mapped[int | None] = mapped_column(Rials)
