"""quick_init (gateway/records.py): a frozen record made faster is the same record."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from gateway.dues import DueItem
from gateway.records import quick_init


@dataclasses.dataclass(frozen=True, slots=True)
class Plain:
    id: int
    name: str
    on: dt.date


@quick_init
@dataclasses.dataclass(frozen=True, slots=True)
class Quick:
    id: int
    name: str
    on: dt.date


DAY = dt.date(2026, 3, 20)


def test_a_quick_record_is_the_record_dataclasses_makes() -> None:
    plain, quick = Plain(1, "a", DAY), Quick(1, "a", DAY)
    assert dataclasses.astuple(quick) == dataclasses.astuple(plain)
    assert repr(quick) == repr(plain).replace("Plain", "Quick")
    assert quick == Quick(id=1, name="a", on=DAY)
    assert hash(quick) == hash(Quick(1, name="a", on=DAY))
    assert quick != Quick(2, "a", DAY)
    assert dataclasses.replace(quick, name="b") == Quick(1, "b", DAY)


def test_a_quick_record_stays_frozen() -> None:
    quick = Quick(1, "a", DAY)
    with pytest.raises(dataclasses.FrozenInstanceError):
        quick.name = "b"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del quick.name  # type: ignore[misc]
    # Neither takes another attribute (Python 3.11's frozen slotted dataclasses raise a
    # TypeError for it, from their __setattr__'s super(): the same for both).
    for record in (quick, Plain(1, "a", DAY)):
        with pytest.raises((AttributeError, TypeError)):
            record.other = 1  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((1, "a"), {}), ((1, "a", DAY, 4), {}), ((1, "a"), {"when": DAY}), ((1, "a", DAY), {"id": 1})],
    ids=["too few", "too many", "an unknown keyword", "a field twice"],
)
def test_a_quick_record_takes_the_same_arguments(
    args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    with pytest.raises(TypeError):
        Plain(*args, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Quick(*args, **kwargs)  # type: ignore[arg-type]


def test_only_plain_frozen_slotted_dataclasses_are_taken() -> None:
    @dataclasses.dataclass(slots=True)
    class Mutable:
        id: int

    @dataclasses.dataclass(frozen=True)
    class Unslotted:
        id: int

    @dataclasses.dataclass(frozen=True, slots=True)
    class Defaulted:
        id: int = 0

    @dataclasses.dataclass(frozen=True, slots=True)
    class Checked:
        id: int

        def __post_init__(self) -> None:
            pass

    for cls in (Mutable, Unslotted, Defaulted, Checked):
        with pytest.raises(TypeError):
            quick_init(cls)


def test_the_domain_records_are_quick() -> None:
    item = DueItem(1, "renewal_duty", 1403, 500, 200, DAY)
    assert type(item).__init__.__qualname__ == "DueItem.__init__"
    assert "_set_id" in type(item).__init__.__code__.co_names
    assert item.outstanding == 300
