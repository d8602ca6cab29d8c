"""Frozen records that are quick to make: `quick_init` gives a frozen, slotted dataclass an
`__init__` that stores each field through its slot's descriptor.

dataclasses writes a frozen class's `__init__` as one `object.__setattr__(self, "name",
value)` per field, which finds the slot by name each time; the domain makes hundreds of
records per page of parcels (a parcel's dues items, owners, buildings), and that lookup was
half the cost of making one. The record stays exactly as frozen, equal, hashable and
printable as dataclasses made it; only `__init__` changes, with the same parameters.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

__all__ = ["quick_init"]

T = TypeVar("T")


def quick_init(cls: type[T]) -> type[T]:
    """Decorates a `@dataclass(frozen=True, slots=True)` whose fields are all plain (no
    default, no factory, no keyword-only, all in `__init__`, no `__post_init__`); TypeError
    for any other class, rather than an `__init__` that would differ from dataclasses'."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__} is not a frozen, slotted dataclass")
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    if hasattr(cls, "__post_init__") or any(
        field.default is not dataclasses.MISSING
        or field.default_factory is not dataclasses.MISSING
        or not field.init
        or field.kw_only
        for field in fields
    ):
        raise TypeError(f"{cls.__name__}: quick_init takes plain fields only")
    names = [field.name for field in fields]
    namespace: dict[str, Any] = {f"_set_{name}": cls.__dict__[name].__set__ for name in names}
    lines = [f"def __init__(self, {', '.join(names)}):"]
    lines += [f"    _set_{name}(self, {name})" for name in names] or ["    pass"]
    exec("\n".join(lines), namespace)  # as dataclasses makes __init__
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    cls.__init__ = init  # type: ignore[method-assign]
    return cls
