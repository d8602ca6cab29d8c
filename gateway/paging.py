"""Keyset windows over lists ordered by record id: Relay's `first`/`after` and `last`/`before`.

Every connection is a list in id order (ascending or, newest first, descending) behind
opaque cursors that name a record id. A `Window` is one page of such a list: the records
strictly between `after` and `before` (in the list's order), the first `size` of them, or
with `last` the last `size`. Domain functions apply it to their statements with
`windowed` and read the page back with `paged`, so each list pages both ways the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, and_, exists, select
from sqlalchemy.orm import QueryableAttribute

from gateway.errors import BadUserInput, QueryTooComplex

# The page size when a caller gives neither `first` nor `last` (the cost estimate uses it).
DEFAULT_PAGE_SIZE = 20

T = TypeVar("T")
S = TypeVar("S", bound="Select[*tuple[Any, ...]]")
# A list's id column, as a table column or a mapped attribute.
IdColumn = ColumnElement[Any] | QueryableAttribute[Any]


@dataclass(frozen=True, slots=True)
class Window:
    """One page of a list in id order. `after_id`/`before_id` are exclusive bounds in the
    list's own order (0 or None: unbounded); `from_end`: the last `size` records before
    `before_id` (Relay's `last`), otherwise the first `size` after `after_id`."""

    size: int
    after_id: int | None = None
    before_id: int | None = None
    from_end: bool = False


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """The records of a window, in the list's order, and whether the list goes on past
    either end of it."""

    items: list[T]
    has_next: bool
    has_previous: bool


def window(
    *,
    first: int | None,
    last: int | None,
    after_id: int | None,
    before_id: int | None,
    cap: int,
) -> Window:
    """The window Relay's arguments ask for: `first` or `last` (not both; neither means
    DEFAULT_PAGE_SIZE from the start), each 1 to `cap`; BAD_USER_INPUT or
    QUERY_TOO_COMPLEX otherwise."""
    if first is not None and last is not None:
        raise BadUserInput("Give first or last, not both.", field="last")
    name, size = ("last", last) if last is not None else ("first", first)
    if size is None:
        size = min(DEFAULT_PAGE_SIZE, cap)
    if size < 1:
        raise BadUserInput(f"{name} must be at least 1.", field=name)
    if size > cap:
        raise QueryTooComplex(
            f"{name} may be at most {cap}; page through the rest with a cursor.",
            field=name,
            max=cap,
            limit="pageSize",
        )
    return Window(size=size, after_id=after_id, before_id=before_id, from_end=last is not None)


def bounds(id_column: IdColumn, w: Window, *, descending: bool) -> list[Any]:
    """The conditions that keep a list's records strictly between the window's cursors."""
    conditions: list[Any] = []
    if w.after_id:
        conditions.append(id_column < w.after_id if descending else id_column > w.after_id)
    if w.before_id:
        conditions.append(id_column > w.before_id if descending else id_column < w.before_id)
    return conditions


def windowed(statement: S, id_column: IdColumn, w: Window, *, descending: bool = False) -> S:
    """`statement` (already filtered) narrowed to the window, ordered from the window's
    starting end and limited to one more record than the page holds."""
    backward = w.from_end != descending  # fetch in descending id order
    narrowed = statement.where(*bounds(id_column, w, descending=descending))
    return narrowed.order_by(id_column.desc() if backward else id_column).limit(w.size + 1)


def beyond(
    id_column: IdColumn,
    conditions: Sequence[Any],
    w: Window,
    *,
    descending: bool = False,
) -> Select[tuple[bool]] | None:
    """A one-row statement: does the list (under `conditions`) hold a record at or past
    the window's cursor on the side it does not fetch? None when there is no such cursor
    (then the answer is no). Read only when a caller pages with a cursor."""
    cursor = w.before_id if w.from_end else w.after_id
    if not cursor:
        return None
    if w.from_end:
        past = id_column <= cursor if descending else id_column >= cursor
    else:
        past = id_column >= cursor if descending else id_column <= cursor
    return select(exists().where(and_(past, *conditions)))


def paged(rows: Sequence[T], w: Window, *, beyond_cursor: bool = False) -> Page[T]:
    """The page from the rows `windowed` fetched, in the list's order. `beyond_cursor`:
    what `beyond` answered."""
    more = len(rows) > w.size
    items = list(rows[: w.size])
    if w.from_end:
        items.reverse()
        return Page(items, has_next=beyond_cursor, has_previous=more)
    return Page(items, has_next=more, has_previous=beyond_cursor)


def paged_ids(ids: Sequence[int], w: Window, *, descending: bool = False) -> Page[int]:
    """The window over a list of every matching id already in memory (in the list's order),
    with both ends exact."""
    inside = [
        i
        for i in ids
        if (not w.after_id or (i < w.after_id if descending else i > w.after_id))
        and (not w.before_id or (i > w.before_id if descending else i < w.before_id))
    ]
    cursor = (w.before_id if w.from_end else w.after_id) or 0
    if w.from_end:
        items = inside[-w.size :]
        past = cursor > 0 and any((i <= cursor) if descending else (i >= cursor) for i in ids)
        return Page(items, has_next=past, has_previous=len(inside) > w.size)
    items = inside[: w.size]
    past = cursor > 0 and any((i >= cursor) if descending else (i <= cursor) for i in ids)
    return Page(items, has_next=len(inside) > w.size, has_previous=past)
