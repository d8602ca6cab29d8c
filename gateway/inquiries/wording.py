"""Reasons in words a notary understands, in Persian and in English: Persian digits and
thousands separators in the Persian text, Jalali dates, shares in dang."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import jdatetime

_PERSIAN_DIGITS = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
THOUSANDS_SEPARATOR = "٬"  # U+066C ARABIC THOUSANDS SEPARATOR
DECIMAL_SEPARATOR = "٫"  # U+066B ARABIC DECIMAL SEPARATOR


@dataclass(frozen=True, slots=True)
class Text:
    """One sentence in both languages. Every ASCII digit of the Persian one is made Persian
    (identifiers too, as Persian letters write them), so callers write digits either way."""

    fa: str
    en: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "fa", persian_digits(self.fa))


def persian_digits(text: str) -> str:
    return text.translate(_PERSIAN_DIGITS)


def rials_fa(amount: int) -> str:
    """1250000 → ۱٬۲۵۰٬۰۰۰"""
    return persian_digits(f"{amount:,}".replace(",", THOUSANDS_SEPARATOR))


def rials_en(amount: int) -> str:
    """1250000 → 1,250,000"""
    return f"{amount:,}"


def jalali(day: dt.date) -> str:
    """A Gregorian date as the Solar Hijri YYYY/MM/DD people read (ASCII digits)."""
    return str(jdatetime.date.fromgregorian(date=day).strftime("%Y/%m/%d"))


def date_fa(day: dt.date) -> str:
    return persian_digits(jalali(day))


def date_en(day: dt.date) -> str:
    """The Jalali date the Persian text gives, and the ISO date beside it."""
    return f"{jalali(day)} ({day.isoformat()})"


def dang(share: Decimal) -> str:
    """A share in dang without trailing zeros: 3.00 → 3, 1.50 → 1.5 (ASCII; Text makes the
    digits of the Persian sentence Persian, and `dang_fa` its decimal point too)."""
    return format(share.normalize(), "f")


def dang_fa(share: Decimal) -> str:
    return persian_digits(dang(share).replace(".", DECIMAL_SEPARATOR))
