"""Records that are quick to make: `quick_init` gives a frozen, slotted dataclass an
`__init__` that stores each field through its slot's descriptor; `quick_new` makes a plain
keyword-only dataclass (a strawberry type) without the class call's keyword dictionary.

dataclasses writes a frozen class's `__init__` as one `object.__setattr__(self, "name",
value)` per field, which finds the slot by name each time; the domain makes hundreds of
records per page of parcels (a parcel's dues items, owners, buildings), and that lookup was
half the cost of making one. The record stays exactly as frozen, equal, hashable and
printable as dataclasses made it; only `__init__` changes, with the same parameters.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

__all__ = ["quick_init", "quick_new"]

T = TypeVar("T")
P = ParamSpec("P")


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


def quick_new(cls: Callable[P, T]) -> Callable[P, T]:
    """A maker for a keyword-only, unfrozen dataclass (every strawberry type is one) that
    gives what `cls(**values)` gives, in a third of the time.

    Calling the class with keywords packs them into a dictionary for `__init__` and unpacks
    them there; a page of parcels makes over a thousand GraphQL objects so (a due item, an
    owner, a permit). The maker takes the same keyword-only parameters, defaults included,
    and stores them as `__init__` would. TypeError for any class whose `__init__` does more
    (`__post_init__`, a default factory, its own `__new__` or `__setattr__`, a positional or
    frozen field), rather than a maker that would differ."""
    if not isinstance(cls, type):
        raise TypeError(f"{cls!r} is not a class")
    kind: Any = cls
    params = getattr(kind, "__dataclass_params__", None)
    if (
        params is None
        or params.frozen
        or not params.init
        or hasattr(kind, "__post_init__")
        or kind.__new__ is not object.__new__
        or kind.__setattr__ is not object.__setattr__
    ):
        raise TypeError(f"{kind.__name__} is not a plain dataclass")
    namespace: dict[str, Any] = {"_cls": kind, "_new": object.__new__}
    parameters: list[str] = []
    body: list[str] = []
    for field in dataclasses.fields(kind):
        if field.default_factory is not dataclasses.MISSING:
            raise TypeError(f"{kind.__name__}.{field.name}: quick_new takes no default factory")
        has_default = field.default is not dataclasses.MISSING
        if has_default:
            namespace[f"_default_{field.name}"] = field.default
        if not field.init:
            if has_default:  # dataclasses' __init__ stores it
                body.append(f"    self.{field.name} = _default_{field.name}")
            continue
        if not field.kw_only:
            raise TypeError(f"{kind.__name__}.{field.name}: quick_new takes keyword-only fields")
        parameters.append(f"{field.name}=_default_{field.name}" if has_default else field.name)
        body.append(f"    self.{field.name} = {field.name}")
    signature = f"*, {', '.join(parameters)}" if parameters else ""
    lines = [f"def new({signature}):", "    self = _new(_cls)", *body, "    return self"]
    exec("\n".join(lines), namespace)  # as dataclasses makes __init__
    new: Callable[P, T] = namespace["new"]
    new.__qualname__ = f"{kind.__qualname__}.new"
    new.__module__ = kind.__module__
    return new
