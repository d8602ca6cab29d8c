"""The revenue department's database: assessments of municipal dues per parcel, and payments."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import Date, DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from db.base import RevenueBase, Rials

# Renewal duty (عوارض نوسازی), waste fee (عوارض پسماند), other charges.
DUE_KINDS = ("renewal_duty", "waste_fee", "other")

# Revenue records when a payment was made as the banks report it, on Iran's clocks, without
# an offset (the bank's own answers carry none either): payments.paid_at is naive Asia/Tehran.
PAYMENT_TIMES = ZoneInfo("Asia/Tehran")


class Assessment(RevenueBase):
    """One charge on a parcel for one Solar Hijri year; revenue keys parcels by renewal code."""

    __tablename__ = "assessments"
    __table_args__ = (UniqueConstraint("renewal_code", "kind", "period"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    renewal_code: Mapped[str] = mapped_column(String(40), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    period: Mapped[int] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(Rials)
    due_date: Mapped[dt.date] = mapped_column(Date)


class Payment(RevenueBase):
    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    assessment_id: Mapped[int] = mapped_column(ForeignKey("assessments.id"), index=True)
    amount: Mapped[int] = mapped_column(Rials)
    paid_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=False))  # PAYMENT_TIMES
    bank_reference: Mapped[str] = mapped_column(String(40), unique=True)
