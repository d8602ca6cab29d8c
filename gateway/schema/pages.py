"""Relay pagination shared by every connection: page information and opaque keyset cursors."""

from __future__ import annotations

import base64
from collections.abc import Sequence

import strawberry

from gateway.errors import BadUserInput
from gateway.schema.node import decode_opaque, record_id


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


def page_info(has_next: bool, after: str | None, cursors: Sequence[str]) -> PageInfo:
    return PageInfo(
        has_next_page=has_next,
        has_previous_page=after is not None,
        start_cursor=cursors[0] if cursors else None,
        end_cursor=cursors[-1] if cursors else None,
    )


def encode_cursor(kind: str, pk: int) -> str:
    """An opaque cursor after the record `pk` of one list (`kind` keeps lists apart)."""
    return base64.urlsafe_b64encode(f"{kind}:{pk}".encode()).decode()


def decode_cursor(kind: str, after: str | None) -> int:
    """The id a cursor of this list stands after; 0 for none. BAD_USER_INPUT otherwise."""
    if after is None:
        return 0
    text = decode_opaque(after)
    if text is not None and text.startswith(f"{kind}:"):
        after_id = record_id(text.removeprefix(f"{kind}:"))
        if after_id is not None:
            return after_id
    raise BadUserInput("Not a cursor this list gave out.", field="after")
