"""Tracking codes' digits: 15 random digits (the first never 0) and a Damm check digit.

The scheme, and why, is described where the gateway parses and prints codes
(gateway/inquiries/tracking.py); the digits live here, below both the gateway and the
databases' demo seeders, which draw codes too.

Damm's algorithm (one totally anti-symmetric quasigroup table of order 10) catches every
single mistyped digit and every swap of two neighbouring digits: a code is valid when
folding all its digits through the table ends at 0.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable

__all__ = [
    "TRACKING_CODE_DIGITS",
    "damm_check_digit",
    "damm_interim",
    "is_damm_valid",
    "new_tracking_code",
]

TRACKING_CODE_DIGITS = 16
_RANDOM_DIGITS = TRACKING_CODE_DIGITS - 1

# Damm's table (H. M. Damm, 2004): row = interim digit, column = next digit.
_DAMM = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)

_ASCII_DIGITS = re.compile(r"[0-9]+", re.ASCII)


def damm_interim(digits: str) -> int:
    """The interim digit after folding `digits` (ASCII digits) through the table."""
    interim = 0
    for digit in digits:
        interim = _DAMM[interim][ord(digit) - 48]
    return interim


def damm_check_digit(digits: str) -> str:
    """The digit that makes `digits` + it valid under Damm's algorithm (ASCII digits only)."""
    if _ASCII_DIGITS.fullmatch(digits) is None:
        raise ValueError("Damm's algorithm takes ASCII digits")
    return str(damm_interim(digits))


def is_damm_valid(digits: str) -> bool:
    return _ASCII_DIGITS.fullmatch(digits) is not None and damm_interim(digits) == 0


def new_tracking_code(randbelow: Callable[[int], int] = secrets.randbelow) -> str:
    """A fresh code from the operating system's CSPRNG (`randbelow` is injectable for tests
    and seeders); the caller's unique index refuses the rare repeat and asks again."""
    body = str(10 ** (_RANDOM_DIGITS - 1) + randbelow(9 * 10 ** (_RANDOM_DIGITS - 1)))
    return body + damm_check_digit(body)
