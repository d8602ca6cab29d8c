"""Relay global object identification: opaque ids that name a type and a record."""

from __future__ import annotations

import base64
import binascii
import re

import strawberry

from gateway.errors import BadUserInput

# Record ids are positive and live in 32-bit INTEGER columns (PostgreSQL's and MariaDB's
# INTEGER, SQLite's rowid): a larger number must be refused before it reaches a statement.
MAX_RECORD_ID = 2**31 - 1
# An id names a type and a number; anything longer is not one the gateway gave out, and is
# refused before it is decoded.
MAX_OPAQUE_LENGTH = 200
_RECORD_ID = re.compile(r"[1-9][0-9]{0,9}", re.ASCII)


@strawberry.interface(description="An object with a globally unique id (Relay).")
class Node:
    pk: strawberry.Private[int]

    # Computed only when asked: most lists never select it.
    @strawberry.field(description="The object's global id, for node(id:).")
    def id(self) -> strawberry.ID:
        return to_global_id(type(self).__name__, self.pk)


def to_global_id(type_name: str, pk: int) -> strawberry.ID:
    return strawberry.ID(base64.urlsafe_b64encode(f"{type_name}:{pk}".encode()).decode())


def record_id(text: str) -> int | None:
    """A record id written in ASCII digits, 1 to MAX_RECORD_ID; None for anything else
    (int() would also take signs, spaces, underscores and other scripts' digits)."""
    if _RECORD_ID.fullmatch(text) is None:
        return None
    number = int(text)
    return number if number <= MAX_RECORD_ID else None


def decode_opaque(value: str) -> str | None:
    """The text inside an opaque id or cursor (url-safe base64); None if it is not one."""
    if len(value) > MAX_OPAQUE_LENGTH:
        return None
    try:
        # validate=True: the lenient decoder would skip characters outside the alphabet.
        return base64.b64decode(value.encode("ascii"), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeError, ValueError):
        return None


def from_global_id(value: str, *, field: str = "id") -> tuple[str, int]:
    text = decode_opaque(value)
    if text is not None:
        type_name, colon, pk = text.partition(":")
        number = record_id(pk)
        if colon and type_name and number is not None:
            return type_name, number
    raise BadUserInput("Not a valid global id.", field=field)
