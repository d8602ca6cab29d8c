"""Reading an agency's answer (zeep's plain data, or JSON) into our own dataclasses.

An answer that lacks a field or holds the wrong kind of value is unusable: `reading` turns
the lookup errors below into AgencyUnavailable, as for any other malformed answer.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar, cast

from connectors.errors import AgencyUnavailable

__all__ = ["Malformed", "field", "items", "number", "optional", "reading", "record", "records"]

T = TypeVar("T")


class Malformed(ValueError):
    """An answer's field is missing or not what the agency's contract promises."""


def _check(key: str, value: object, kind: type[T]) -> T:
    # bool is an int to Python, but never an amount or a number of anything.
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise Malformed(f"{key}: expected {kind.__name__}")
    return value


def _is_mapping(value: object) -> bool:
    # A dict (what answers are made of) without the ABC's isinstance machinery.
    return type(value) is dict or isinstance(value, Mapping)


def _mapping(key: str, value: object) -> Mapping[str, Any]:
    if not _is_mapping(value):
        raise Malformed(f"{key}: expected a record")
    return cast(Mapping[str, Any], value)


def record(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """A nested record the answer must hold."""
    if not _is_mapping(data) or data.get(key) is None:
        raise Malformed(f"{key}: missing")
    return _mapping(key, data[key])


def field(data: Mapping[str, Any], key: str, kind: type[T]) -> T:
    """A field the answer must hold, of `kind`."""
    if not _is_mapping(data) or data.get(key) is None:
        raise Malformed(f"{key}: missing")
    value = data[key]
    if type(value) is kind:  # the common case, bool for bool included
        return value
    return _check(key, value, kind)


def optional(data: Mapping[str, Any], key: str, kind: type[T]) -> T | None:
    """A field the answer may leave out."""
    if not _is_mapping(data):
        raise Malformed(f"{key}: not in a record")
    value = data.get(key)
    if value is None or type(value) is kind:
        return value
    return _check(key, value, kind)


def number(data: Mapping[str, Any], key: str) -> float:
    """A number the answer must hold (JSON writes 37.0 as 37)."""
    if not _is_mapping(data) or data.get(key) is None:
        raise Malformed(f"{key}: missing")
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Malformed(f"{key}: expected a number")
    return float(value)


def items(data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    """A repeated element, as a list of records (empty when absent)."""
    value = optional(data, key, list)
    if value is None:
        return []
    return [item if type(item) is dict else _mapping(key, item) for item in value]


def records(value: object, key: str) -> Sequence[Mapping[str, Any]]:
    """A top-level answer that is a list of records (or nothing)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise Malformed(f"{key}: expected a list")
    return [item if type(item) is dict else _mapping(key, item) for item in value]


@contextmanager
def reading(agency: str, operation: str) -> Iterator[None]:
    """Map a malformed answer to AgencyUnavailable(agency, operation)."""
    try:
        yield
    except (KeyError, TypeError, ValueError, decimal.InvalidOperation) as exc:
        raise AgencyUnavailable(agency, operation) from exc
