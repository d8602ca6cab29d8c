"""Tracking codes (کد پیگیری) for inquiries: random, digits only, with a Damm check digit.

Length: 15 random digits and one check digit, printed in four groups of four. The first digit
is never 0 (a spreadsheet or an integer column would drop it), so there are 9·10^14 codes,
about 49.7 bits. A code is a lookup key, not a credential: a partner's reads of its inquiry
also need its key, and the public verification page shows only what the signed letter already
shows (verdict, status, identities masked). Even so, guessing one stays out of reach: with a
million live answers an attacker must try about 10^9 codes per hit, which at the gateway's
anonymous rate limits is decades of requests from one address. 16 digits is also what a person
reads over the phone without losing their place, and what a card-sized field prints.

Check digit: Damm's algorithm (one totally anti-symmetric quasigroup table of order 10). It
catches every single mistyped digit and every swap of two neighbouring digits, the check digit
included, and is simpler than Verhoeff (one table, no permutations, no inverse): a code is
valid when folding all its digits through the table ends at 0.
"""

from __future__ import annotations

import re

from identifiers import InvalidIdentifier, normalize_digits

# The digits themselves live below the gateway, where the databases' demo seeders draw codes.
from identifiers.tracking import (
    _DAMM,  # noqa: F401 (the table, whose properties tests/gateway/inquiries/test_tracking.py checks)
    TRACKING_CODE_DIGITS,
    damm_check_digit,
    damm_interim,
    is_damm_valid,
    new_tracking_code,
)

__all__ = [
    "TRACKING_CODE_DIGITS",
    "damm_check_digit",
    "format_tracking_code",
    "is_damm_valid",
    "new_tracking_code",
    "parse_tracking_code",
]

_ASCII_DIGITS = re.compile(r"[0-9]+", re.ASCII)
# People copy the printed grouping ("1234 5678 …") or dash it; nothing else is accepted.
_SEPARATORS = re.compile(r"[ \-\u00a0\u200c]+")


def parse_tracking_code(text: str) -> str:
    """A tracking code as 16 ASCII digits; Persian and Arabic-Indic digits and the printed
    grouping (spaces, dashes) are accepted, anything else refused with InvalidIdentifier (whose
    message never repeats the value)."""
    if not isinstance(text, str):
        raise InvalidIdentifier("tracking_code", "must be a string")
    code = _SEPARATORS.sub("", normalize_digits(text))
    if _ASCII_DIGITS.fullmatch(code) is None:
        raise InvalidIdentifier(
            "tracking_code", "must contain only digits (0-9, Persian or Arabic-Indic)"
        )
    if len(code) != TRACKING_CODE_DIGITS:
        raise InvalidIdentifier("tracking_code", f"must be {TRACKING_CODE_DIGITS} digits")
    if code[0] == "0":
        raise InvalidIdentifier("tracking_code", "does not start with 0")
    if damm_interim(code) != 0:
        raise InvalidIdentifier("tracking_code", "wrong check digit (a digit mistyped?)")
    return code


def format_tracking_code(code: str) -> str:
    """The printed form: four groups of four digits."""
    return " ".join(code[i : i + 4] for i in range(0, len(code), 4))
