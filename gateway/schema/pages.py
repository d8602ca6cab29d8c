"""Relay pagination shared by every connection: page information, opaque keyset cursors,
and the four paging arguments (`first`/`after` forward, `last`/`before` backward)."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Annotated, Any

import strawberry

from gateway.errors import BadUserInput
from gateway.paging import DEFAULT_PAGE_SIZE, Page, Window, window
from gateway.schema.node import decode_opaque, record_id


@strawberry.type(
    description="Where a page sits in its list (Relay): whether the list goes on past either "
    "end, and the cursors of its first and last items (صفحه‌بندی)."
)
class PageInfo:
    has_next_page: bool = strawberry.field(
        description="More items follow the page's last one (with `first`: beyond it; with "
        "`last`/`before`: from the `before` cursor on)."
    )
    has_previous_page: bool = strawberry.field(
        description="More items precede the page's first one (with `last`: before it; with "
        "`first`/`after`: up to the `after` cursor)."
    )
    start_cursor: str | None = strawberry.field(
        description="The cursor of the page's first item; pass it as `before` for the page "
        "before. Null for an empty page."
    )
    end_cursor: str | None = strawberry.field(
        description="The cursor of the page's last item; pass it as `after` for the page "
        "after. Null for an empty page."
    )


First = Annotated[
    int | None,
    strawberry.argument(
        description=f"The page holds the first this many items (after `after`); with neither "
        f"`first` nor `last`, the first {DEFAULT_PAGE_SIZE}."
    ),
]
After = Annotated[
    str | None,
    strawberry.argument(description="Start after the item with this cursor (`endCursor`)."),
]
Last = Annotated[
    int | None,
    strawberry.argument(
        description="The page holds the last this many items (before `before`); not with `first`."
    ),
]
Before = Annotated[
    str | None,
    strawberry.argument(description="End before the item with this cursor (`startCursor`)."),
]


def page_info_of(page: Page[Any], cursors: Sequence[str]) -> PageInfo:
    """Page information for a page a `Window` selected, from its items' cursors."""
    return page_info_at(page.has_next, page.has_previous, cursors)


def page_info_at(has_next: bool, has_previous: bool, cursors: Sequence[str]) -> PageInfo:
    """Page information from whether the list goes on past each end of the page."""
    return PageInfo(
        has_next_page=has_next,
        has_previous_page=has_previous,
        start_cursor=cursors[0] if cursors else None,
        end_cursor=cursors[-1] if cursors else None,
    )


def page_window(
    kind: str,
    *,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    cap: int,
) -> Window:
    """The window a connection's arguments ask for; BAD_USER_INPUT for a cursor of another
    list, both `first` and `last`, or a size under 1; QUERY_TOO_COMPLEX over `cap`."""
    return window(
        first=first,
        last=last,
        after_id=decode_cursor(kind, after) or None,
        before_id=decode_cursor(kind, before, field="before") or None,
        cap=cap,
    )


def encode_cursor(kind: str, pk: int) -> str:
    """An opaque cursor at the record `pk` of one list (`kind` keeps lists apart)."""
    return base64.urlsafe_b64encode(f"{kind}:{pk}".encode()).decode()


def decode_cursor(kind: str, cursor: str | None, *, field: str = "after") -> int:
    """The record id a cursor of this list names; 0 for none. BAD_USER_INPUT otherwise."""
    if cursor is None:
        return 0
    text = decode_opaque(cursor)
    if text is not None and text.startswith(f"{kind}:"):
        cursor_id = record_id(text.removeprefix(f"{kind}:"))
        if cursor_id is not None:
            return cursor_id
    raise BadUserInput("Not a cursor this list gave out.", field=field)
