"""quick_init and quick_new (gateway/records.py): a record or a GraphQL object made faster is
the same one."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest
import strawberry

from gateway.dues import DueItem
from gateway.records import quick_init, quick_new


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
    from gateway.parcels import Building

    building = Building(7, 1, 2, 3, Decimal("120.5"), 1390)
    assert type(building).__init__.__qualname__ == "Building.__init__"
    assert "_set_id" in type(building).__init__.__code__.co_names


def test_due_items_are_made_straight_from_their_rows() -> None:
    """A due item is a named tuple made from its row's values as the statement gives them
    (the sum paid an integer where the driver decodes a numeric)."""
    from collections import namedtuple

    from gateway.dues import group_by_renewal_code

    row = namedtuple("row", "id renewal_code kind period amount due_date paid")
    rows = [
        row(1, "1-1-1-1", "renewal_duty", 1403, 500, DAY, Decimal(200)),
        row(2, "1-1-1-1", "waste_fee", 1403, 80, DAY, 100),
    ]
    grouped = group_by_renewal_code(rows, ["2-2-2-2", "1-1-1-1"])
    assert [dues.renewal_code for dues in grouped] == ["2-2-2-2", "1-1-1-1"]
    assert grouped[0].items == ()
    first, second = grouped[1].items
    assert first == DueItem(1, "renewal_duty", 1403, 500, 200, DAY)
    assert type(first) is DueItem
    assert type(first.paid) is int
    assert (first.outstanding, second.outstanding) == (300, 0)  # overpaid: nothing left
    assert (grouped[1].total, grouped[1].paid, grouped[1].outstanding) == (580, 300, 300)
    assert hash(first) == hash(DueItem(1, "renewal_duty", 1403, 500, 200, DAY))


@strawberry.type
class Shown:
    id: int
    name: str
    note: str | None = None
    hidden: strawberry.Private[list[str]]

    @strawberry.field
    def shouted(self) -> str:
        return self.name.upper()


_new_shown = quick_new(Shown)


def test_a_quick_object_is_the_object_its_class_makes() -> None:
    made, called = _new_shown(id=1, name="a", hidden=[]), Shown(id=1, name="a", hidden=[])
    assert type(made) is Shown
    assert vars(made) == vars(called) == {"id": 1, "name": "a", "note": None, "hidden": []}
    assert made == called
    assert repr(made) == repr(called)
    assert made.shouted() == "A"
    assert _new_shown(id=1, name="a", note="n", hidden=[]).note == "n"


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((), {"id": 1}),
        ((1, "a"), {"hidden": []}),
        ((), {"id": 1, "name": "a", "hidden": [], "other": 2}),
    ],
    ids=["a keyword missing", "positional", "an unknown keyword"],
)
def test_a_quick_object_takes_the_same_arguments(
    args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    with pytest.raises(TypeError):
        Shown(*args, **kwargs)  # type: ignore[misc]
    with pytest.raises(TypeError):
        _new_shown(*args, **kwargs)  # type: ignore[misc]


def test_only_plain_keyword_only_dataclasses_are_made_quickly() -> None:
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Frozen:
        id: int

    @dataclasses.dataclass
    class Positional:
        id: int

    @dataclasses.dataclass(kw_only=True)
    class Factory:
        ids: list[int] = dataclasses.field(default_factory=list)

    @dataclasses.dataclass(kw_only=True)
    class Checked:
        id: int

        def __post_init__(self) -> None:
            pass

    class NotADataclass:
        pass

    for cls in (Frozen, Positional, Factory, Checked, NotADataclass):
        with pytest.raises(TypeError):
            quick_new(cls)


def test_the_page_s_graphql_objects_are_made_quickly() -> None:
    """The makers a page of parcels uses build what the classes build."""
    from gateway import dues, parcels
    from gateway.schema import planning, revenue
    from gateway.schema.scalars import calendar_date

    owed = dues.Dues("1-1-1-1", (DueItem(1, "renewal_duty", 1403, 500, 200, DAY),))
    made = revenue.Dues.from_domain(owed)
    assert type(made) is revenue.Dues
    assert type(made.items[0]) is revenue.DueItem
    assert vars(made.items[0]) == vars(
        revenue.DueItem(
            kind=revenue.DueKind("renewal_duty"), period=1403, amount=500, paid=200,
            outstanding=300, due_date=calendar_date(DAY),
        )
    )  # fmt: skip
    assert (made.total, made.paid, made.outstanding, made.settled) == (500, 200, 300, False)
    building = parcels.Building(7, 1, 2, 3, Decimal("120.5"), 1390)
    converted = planning.Building.from_domain(building)
    assert type(converted) is planning.Building
    assert vars(converted) == vars(
        planning.Building(
            pk=7, floors=2, units=3, built_area=Decimal("120.5"), construction_year=1390
        )
    )
