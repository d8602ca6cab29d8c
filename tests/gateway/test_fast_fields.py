"""The executor's short cuts answer exactly as strawberry and graphql-core do: plain leaves
read and coerced in place (gateway/guards/execution.py, `_execute_fields`) and plain resolvers
called directly (`lean_resolvers`), errors, paths, refusals and argument conversion included.

Each case runs the same document on the same types twice: through the gateway's executor with
both short cuts, and through strawberry's own executor and resolvers; the results must be equal.
"""

from __future__ import annotations

import asyncio
import gc
import warnings
from decimal import Decimal
from enum import Enum
from types import SimpleNamespace
from typing import Annotated, Any

import pytest
import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from gateway.access.permissions import Scope, requires
from gateway.access.principals import Principal, PrincipalKind
from gateway.guards.execution import (
    ExecutionPolicy,
    answers_prefetched,
    lean_enums,
    lean_resolvers,
    plain_values,
    shared_loop_execution,
)
from gateway.schema.scalars import SCALARS, Money
from tests.clocks import Ticking


@strawberry.enum
class Colour(Enum):
    RED = "red"
    GREEN = "green"


class NotAColour(Enum):
    BLUE = "blue"


async def _later(value: Any) -> Any:
    await asyncio.sleep(0)
    return value


class _Again:
    """An awaitable item that every list holding it may await (a coroutine is awaited once,
    and which field got it first would depend on the order fields run in)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __await__(self) -> Any:
        yield from asyncio.sleep(0).__await__()
        return self.value


@strawberry.type
class Item:
    name: str
    colour: Colour
    maybe_colour: Colour | None
    money: Money
    area: Decimal
    note: str | None
    count: int

    @strawberry.field
    def where(self, info: strawberry.Info) -> str:
        """What a resolver sees of its resolve-info, which the executor builds for each object
        from what every object shares (the path alone is new)."""
        raw = info._raw_info
        return (
            f"{'/'.join(map(str, info.path.as_list()))} {info.field_name} "
            f"{raw.parent_type.name} {raw.return_type} {sorted(info.variable_values.items())} "
            f"{raw.operation.name.value} {type(info.context).__name__}"
        )


@strawberry.type
class Box:
    label: str
    size: int | None
    # What the fields hold is set per case (plain attributes, as a database row gives them).
    items: list[Item]
    maybe_items: list[Item | None]
    main: Item | None  # a single object, read from an attribute
    calls: strawberry.Private[list[str]]
    prefetched: strawberry.Private[dict[str, Any]]

    @strawberry.field
    def echoed(self) -> str:
        """A leaf from a resolver: whatever the label holds."""
        self.calls.append("echoed")
        return self.label  # type: ignore[no-any-return]

    @strawberry.field
    def first(self, info: strawberry.Info) -> Item:
        self.calls.append(f"first {info.path.key}")
        return self.items[0]  # type: ignore[no-any-return]

    @strawberry.field
    def tally(self) -> int:
        self.calls.append("tally")
        return len(self.items)

    @strawberry.field
    def named(self, info: strawberry.Info) -> str:
        self.calls.append(f"named {info.field_name} {info._raw_info.parent_type.name}")
        return self.label.upper()

    @strawberry.field
    def filtered(
        self, colour: Annotated[Colour | None, strawberry.argument()] = None
    ) -> list[Item]:
        self.calls.append(f"filtered {colour!r}")
        return [item for item in self.items if colour is None or item.colour == colour]

    @strawberry.field(permission_classes=[requires(Scope.DUES_READ)])  # type: ignore[untyped-decorator]
    def secret(self, info: strawberry.Info) -> str | None:
        self.calls.append("secret")
        return f"for {info.context.principal.id}"

    @strawberry.field
    async def later(self, info: strawberry.Info) -> str:
        return str(await _later(self.label))

    @strawberry.field(permission_classes=[requires(Scope.DUES_READ)])  # type: ignore[untyped-decorator]
    @answers_prefetched("ahead")
    def ahead(
        self, info: strawberry.Info, colour: Annotated[Colour | None, strawberry.argument()] = None
    ) -> list[Item] | None:
        """What a list loaded ahead for the box, else its items; filtered by colour."""
        self.calls.append(f"ahead {colour!r}")
        items = self.prefetched.get("ahead", self.items)
        return [item for item in items if colour is None or item.colour == colour]

    @strawberry.field
    def broken(self) -> str | None:
        raise ValueError("broken on purpose")

    @strawberry.field(permission_classes=[requires(Scope.DUES_READ)])  # type: ignore[untyped-decorator]
    async def guarded(self, info: strawberry.Info, word: str) -> str | None:
        """Async, with a scope and a required scalar argument (a root look-up's shape)."""
        self.calls.append(f"guarded {word!r}")
        return f"{await _later(word)} for {info.context.principal.id}"

    @strawberry.field
    def paint(self, colour: Colour, again: Colour | None = None) -> str:
        """Enum arguments, passed as strawberry passes them: the member."""
        self.calls.append(f"paint {colour!r} {again!r}")
        return f"{colour.value} {again and again.value}"


BOX: dict[str, Any] = {}


@strawberry.type
class Query:
    @strawberry.field
    def box(self) -> Box | None:
        box: Box | None = BOX["box"]
        return box


def _box(items: Any, label: Any = "box", size: Any = 3, main: Any = "first") -> Box:
    if main == "first":
        main = items[0] if items else None
    return Box(
        label=label, size=size, items=items, maybe_items=items, main=main, calls=[], prefetched={}
    )


class Raising:
    """An item whose attributes are computed, and one of them fails."""

    name = "raising"
    colour = Colour.RED
    maybe_colour = None
    money = Money(1)
    area = Decimal(1)
    note = None

    @property
    def count(self) -> int:
        raise ArithmeticError("count failed")


class _FailingBox(Box):
    """A box whose object and list of objects are computed, and fail."""

    @property  # type: ignore[override]
    def main(self) -> Item | None:
        raise LookupError("main failed")

    @property  # type: ignore[override]
    def items(self) -> list[Item]:
        raise LookupError("items failed")


def _failing_box() -> Box:
    box = object.__new__(_FailingBox)
    vars(box).update(label="box", size=3, maybe_items=[_item()], calls=[], prefetched={})
    return box


class _SubItem(Item):
    """An item of a subclass: not the type's own class, so not taken as plainly a value."""


def _item(**changes: Any) -> Item:
    values: dict[str, Any] = {
        "name": "one",
        "colour": Colour.RED,
        "maybe_colour": None,
        "money": Money(120),
        "area": Decimal("12.500"),
        "note": None,
        "count": 2,
    }
    values.update(changes)
    return Item(**values)


class Tracing(SchemaExtension):
    """A resolve hook, as tracing's spans are: every field then takes graphql-core's path."""

    def resolve(self, _next: Any, root: Any, info: Any, *args: Any, **kwargs: Any) -> Any:
        return _next(root, info, *args, **kwargs)


def _schemas(
    *extensions: Any, policy: ExecutionPolicy | None = None
) -> tuple[strawberry.Schema, strawberry.Schema]:
    policy = policy or ExecutionPolicy(budget_s=60.0, slice_s=60.0)
    fast = strawberry.Schema(
        query=Query,
        config=strawberry.schema.config.StrawberryConfig(scalar_map=SCALARS),
        execution_context_class=shared_loop_execution(policy),
        extensions=list(extensions),
    )
    assert lean_resolvers(fast) >= 4  # tally, named, filtered, secret, later (and Query.box)
    # Item, Box, Query and Colour: their instances are not asked whether they are awaitable.
    assert plain_values(fast) == 4
    assert lean_enums(fast) == 1  # Colour: its members named in place
    reference = strawberry.Schema(
        query=Query,
        config=strawberry.schema.config.StrawberryConfig(scalar_map=SCALARS),
        extensions=list(extensions),
    )
    return fast, reference


FAST, REFERENCE = _schemas()
TRACED_FAST, TRACED_REFERENCE = _schemas(Tracing)
# Every object's slice used up: objects, and the rest of each list, wait for a turn.
SLICED_FAST, _ = _schemas(
    policy=ExecutionPolicy(budget_s=1e9, slice_s=0.0005, clock=Ticking(0.001))
)

DOCUMENT = """
query Box($colour: Colour) {
  box {
    label size tally named secret later broken echoed guarded(word: "hi")
    paint(colour: GREEN) paintedAgain: paint(colour: RED, again: $colour)
    items { name colour maybeColour money area note count renamed: name where }
    maybeItems { name colour maybeColour money area note count }
    filtered(colour: $colour) { name colour }
    all: filtered { name }
    main { name colour }
    first { name count }
  }
}
"""


def _context(*scopes: str) -> SimpleNamespace:
    principal = Principal(PrincipalKind.COUNTER, "counter-1", "Counter", scopes=frozenset(scopes))
    return SimpleNamespace(principal=principal)


async def _both(
    box: Any,
    variables: dict[str, Any] | None = None,
    scopes: tuple[str, ...] = (),
    *,
    traced: bool = False,
    sliced: bool = False,
) -> tuple[Any, Any, list[str], list[str]]:
    fast, reference = (TRACED_FAST, TRACED_REFERENCE) if traced else (FAST, REFERENCE)
    if sliced:
        fast = SLICED_FAST
    answers = []
    calls = []
    for schema in (fast, reference):
        BOX["box"] = box()
        result = await schema.execute(
            DOCUMENT, variable_values=variables, context_value=_context(*scopes)
        )
        answers.append(
            (
                result.data,
                sorted(
                    (error.message, tuple(error.path or ()), repr(error.original_error))
                    for error in result.errors or []
                ),
            )
        )
        calls.append(BOX["box"].calls)
    return answers[0], answers[1], calls[0], calls[1]


CASES: dict[str, Any] = {
    "plain": lambda: _box([_item(), _item(name="two", colour=Colour.GREEN, note="n")]),
    "empty": lambda: _box([]),
    "null in a non-null leaf": lambda: _box([_item(name=None), _item()]),
    "null in a nullable leaf": lambda: _box([_item(note=None)], size=None),
    "an enum value of another enum": lambda: _box([_item(colour=NotAColour.BLUE)]),
    "a nullable enum's bad value": lambda: _box([_item(maybe_colour="purple")]),
    "an enum's value for its member": lambda: _box([_item(colour="red", maybe_colour="green")]),
    "null in a non-null enum": lambda: _box([_item(colour=None), _item()]),
    "an exception as an enum": lambda: _box([_item(maybe_colour=ValueError("no colour"))]),
    "a nullable enum's member": lambda: _box([_item(maybe_colour=Colour.GREEN)]),
    "a scalar that refuses its value": lambda: _box([_item(money="12")]),
    "a Decimal scalar given a float": lambda: _box([_item(area=1.5)]),
    "an int that is not one": lambda: _box([_item(count="many")]),
    "an int past 32 bits": lambda: _box([_item(count=2**31), _item(count=-(2**31) - 1)]),
    "an int at its bounds": lambda: _box([_item(count=2**31 - 1), _item(count=-(2**31))]),
    # Money's int is its own output (serializes_as_itself), within 32 bits; past them, and
    # for what is not exactly an int, Money's serialize decides.
    "money past 32 bits": lambda: _box([_item(money=Money(2**40)), _item(money=-(2**31) - 1)]),
    "a bool for money": lambda: _box([_item(money=True)]),
    "a Decimal for money": lambda: _box([_item(money=Decimal(5))]),
    "a bool for an int": lambda: _box([_item(count=True)]),
    "an int for a string": lambda: _box([_item(name=7)]),
    "an exception as a value": lambda: _box([_item(note=ValueError("held"))]),
    "a non-null root leaf null": lambda: _box([_item()], label=None),
    "a missing attribute": lambda: _box([SimpleNamespace(name="x")]),
    "an attribute that raises": lambda: _box([Raising()]),
    # Lists of objects (completed item by item in place, gateway/guards/execution.py).
    "a null item": lambda: _box([_item(), None, _item(name="three")]),
    "an exception as an item": lambda: _box([_item(), ValueError("item failed")]),
    "an awaitable item": lambda: _box([_Again(_item()), _item(name="two")]),
    "an item of another type": lambda: _box([_item(), _box([])]),
    "a tuple of items": lambda: _box((_item(), _item(name="two"))),
    "an item whose non-null field fails": lambda: _box([_item(), _item(count=None)]),
    # Single objects (their resolver called and their fields executed directly).
    "a null object": lambda: _box([_item()], main=None),
    "an exception as an object": lambda: _box([_item()], main=ValueError("object failed")),
    "an awaitable object": lambda: _box([_item()], main=_later(_item(name="later"))),
    "an object of another type": lambda: _box([_item()], main=_box([])),
    "an object whose non-null field fails": lambda: _box([_item()], main=_item(count=None)),
    "a non-null object's resolver fails": lambda: _box([]),
    "an object's attribute that raises": lambda: _failing_box(),
    "an object of a subclass": lambda: _box([_item()], main=_SubItem(**vars(_item()))),
    "a non-null object null": lambda: _box([None, _item()]),
    # Leaves from resolvers (their value coerced directly).
    "an exception from a resolved leaf": lambda: _box([_item()], label=ValueError("label")),
    "a resolved leaf its type refuses": lambda: _box([_item()], label=[1]),
    "an awaitable from a resolved leaf": lambda: _box([_item()], label=_Again("later")),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize(
    ("traced", "sliced"),
    [(False, False), (True, False), (False, True)],
    ids=["plain", "with a resolve hook", "a turn before every object"],
)
@pytest.mark.parametrize("scopes", [(), (Scope.DUES_READ,)], ids=["no scope", "dues:read"])
async def test_the_short_cuts_answer_as_strawberry_does(
    case: str, traced: bool, sliced: bool, scopes: tuple[str, ...]
) -> None:
    fast, reference, fast_calls, reference_calls = await _both(
        CASES[case], scopes=scopes, traced=traced, sliced=sliced
    )
    if sliced:
        # Fields after an object that waited run before its error is known (graphql-core's
        # own order for awaited fields): the same data, the same errors and resolvers and
        # maybe more of them, from fields whose parent was then nulled.
        assert fast[0] == reference[0]
        assert set(reference[1]) <= set(fast[1])
        assert set(reference_calls) <= set(fast_calls)
    else:
        assert fast == reference
        assert fast_calls == reference_calls


@pytest.mark.parametrize("case", sorted(CASES))
async def test_work_put_off_for_a_turn_is_never_dropped_unawaited(case: str) -> None:
    """A sibling's error cancels what waits beside it, possibly just after the runner ran it
    and it put the rest of its list off again: that rest is settled in the background, not
    left as a coroutine nobody awaits (Python warns as it is collected)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        await _both(CASES[case], scopes=(Scope.DUES_READ,), sliced=True)
        for _ in range(10):
            await asyncio.sleep(0)  # what settles in the background finishes
        gc.collect()
    assert [str(w.message) for w in caught if "never awaited" in str(w.message)] == []


@pytest.mark.parametrize("colour", [None, "RED", "GREEN"])
async def test_arguments_are_converted_as_strawberry_converts_them(colour: str | None) -> None:
    fast, reference, fast_calls, reference_calls = await _both(
        CASES["plain"], {"colour": colour}, (Scope.DUES_READ,)
    )
    assert fast == reference
    assert fast_calls == reference_calls
    # The argument arrives as the enum member (strawberry's conversion), null as None.
    expected = "None" if colour is None else f"<Colour.{colour}: '{colour.lower()}'>"
    assert f"filtered {expected}" in fast_calls


async def test_a_scope_the_caller_lacks_is_refused_as_before() -> None:
    fast, reference, fast_calls, _ = await _both(CASES["plain"])
    assert fast == reference
    data, errors = fast
    assert data["box"]["secret"] is None
    assert any("dues:read" in message for message, _, _ in errors)
    assert "secret" not in fast_calls  # the resolver never ran
    granted, _, granted_calls, _ = await _both(CASES["plain"], scopes=(Scope.DUES_READ,))
    assert granted[0]["box"]["secret"] == "for counter-1"
    assert "named named Box" in granted_calls  # strawberry's Info, over graphql-core's


def test_only_plain_resolvers_are_replaced() -> None:
    fields = FAST._schema.type_map["Box"].fields  # type: ignore[attr-defined]
    reference_fields = REFERENCE._schema.type_map["Box"].fields  # type: ignore[attr-defined]
    for name in ("tally", "named", "filtered", "secret", "later", "broken", "guarded", "paint"):
        assert fields[name].resolve is not reference_fields[name].resolve
        assert fields[name].resolve.__name__ in ("resolve", "resolve_plainly"), name
    # Plain attributes read the attribute directly, and name it for the executor, which
    # reads leaves and objects in place.
    for name, attribute in [("label", "label"), ("items", "items"), ("main", "main")]:
        assert fields[name].resolve.__name__ == "read_attribute"
        assert fields[name].resolve.attribute == attribute
        assert fields[name].resolve._is_default


def test_every_enum_of_the_gateways_schema_serializes_as_strawberry_does() -> None:
    """lean_enums looks members up instead of scanning: same names for every member of every
    enum in the schema, and the same refusal for what is not a member."""
    from strawberry.schema.schema_converter import CustomGraphQLEnumType

    from gateway.schema import build_schema
    from gateway.settings import Settings

    schema = build_schema(Settings())
    enums = [t for t in schema._schema.type_map.values() if isinstance(t, CustomGraphQLEnumType)]
    assert len(enums) >= 5
    for enum_type in enums:
        assert "coerce_output_value" in vars(enum_type), enum_type.name  # the lookup is on
        for member in enum_type.wrapped_cls:
            expected = CustomGraphQLEnumType.coerce_output_value(enum_type, member)
            assert enum_type.coerce_output_value(member) == expected
        for odd in (object(), "no such value"):
            outcomes = []
            for coerce in (
                enum_type.coerce_output_value,
                lambda value, t=enum_type: CustomGraphQLEnumType.coerce_output_value(t, value),
            ):
                try:
                    outcomes.append(("answered", coerce(odd)))
                except (TypeError, ValueError, GraphQLError) as error:
                    outcomes.append((type(error).__name__, str(error)))
            assert outcomes[0] == outcomes[1], enum_type.name
            assert outcomes[0][0] != "answered"


AHEAD = """
query Ahead($colour: Colour) {
  box { label ahead { name colour } red: ahead(colour: $colour) { name } }
}
"""


@pytest.mark.parametrize("loaded", [False, True], ids=["nothing loaded ahead", "loaded ahead"])
@pytest.mark.parametrize("scopes", [(), (Scope.DUES_READ,)], ids=["no scope", "dues:read"])
async def test_a_value_loaded_ahead_is_read_without_its_resolver(
    loaded: bool, scopes: tuple[str, ...]
) -> None:
    """answers_prefetched: the value a list loaded ahead is the answer the resolver would
    give with every argument null, and it is read without calling the resolver; with an
    argument given, or nothing loaded, the resolver runs; a missing scope is refused first."""
    answers, calls = [], []
    for schema in (FAST, REFERENCE):
        box = _box([_item(name="own")])
        if loaded:
            box.prefetched["ahead"] = [_item(name="red"), _item(name="green", colour=Colour.GREEN)]
        BOX["box"] = box
        result = await schema.execute(
            AHEAD, variable_values={"colour": "RED"}, context_value=_context(*scopes)
        )
        answers.append((result.data, sorted(e.message for e in result.errors or [])))
        calls.append(box.calls)
    assert answers[0] == answers[1]
    if not scopes:
        assert answers[0][1] == ["This field needs the dues:read scope."] * 2
        assert calls[0] == calls[1] == []
        return
    names = [item["name"] for item in answers[0][0]["box"]["ahead"]]
    assert names == (["red", "green"] if loaded else ["own"])
    # The reference calls the resolver twice; the fast executor skips the unfiltered call
    # when a value was loaded ahead.
    assert calls[1] == ["ahead None", "ahead <Colour.RED: 'red'>"]
    assert calls[0] == (calls[1][1:] if loaded else calls[1])


@strawberry.interface
class Named:
    name: str


@strawberry.type
class Pet(Named):
    legs: int


@strawberry.type
class Plant(Named):
    leaves: int


class Puppy(Pet):
    """A subclass: not the type's own class, so strawberry's check answers for it."""


PETS: dict[str, Any] = {}


@strawberry.type
class PetQuery:
    @strawberry.field
    def pets(self) -> list[Pet | None]:
        return PETS["pets"]  # type: ignore[no-any-return]

    @strawberry.field
    def pet(self) -> Pet | None:
        return PETS["pets"][0]  # type: ignore[no-any-return]

    @strawberry.field
    def named(self) -> list[Named]:
        return PETS["pets"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "pets",
    [
        lambda: [Pet(name="rex", legs=4), Puppy(name="bit", legs=4)],
        lambda: [strawberry.cast(Plant, Pet(name="fern", legs=0)), Pet(name="rex", legs=4)],
        lambda: [Plant(name="ivy", leaves=9), Pet(name="rex", legs=4)],
        lambda: [strawberry.cast(Pet, Plant(name="odd", leaves=1))],
    ],
    ids=["its class and a subclass", "one cast to another type", "another type", "cast to it"],
)
async def test_an_interface_s_types_are_checked_as_strawberry_checks_them(pets: Any) -> None:
    """plain_values answers is_type_of for an instance of exactly the type's class that holds
    no strawberry.cast; every other object gets strawberry's own answer."""
    fast = strawberry.Schema(
        query=PetQuery, execution_context_class=shared_loop_execution(ExecutionPolicy(60.0, 60.0))
    )
    plain_values(fast)
    pet_type = fast._schema.type_map["Pet"]
    assert pet_type.is_type_of.__qualname__.startswith("_quick_type_check")  # type: ignore[attr-defined]
    reference = strawberry.Schema(query=PetQuery)
    document = "{ pets { name legs } pet { name } named { name ... on Pet { legs } } }"
    answers = []
    for schema in (fast, reference):
        PETS["pets"] = pets()
        result = await schema.execute(document)
        answers.append((result.data, sorted(e.message for e in result.errors or [])))
    assert answers[0] == answers[1]


async def test_selections_of_leaves_are_completed_by_a_function_made_once_per_schema() -> None:
    from gateway.guards import execution

    functions = FAST.execution_context_class.leaf_functions  # type: ignore[attr-defined]
    functions.clear()
    await _both(CASES["plain"], scopes=(Scope.DUES_READ,))
    made = [function for function in functions.values() if function is not None]
    # maybeItems', filtered's (and main's, the same leaves), all's and first's selections;
    # items' has a resolver.
    assert len(made) == 4
    assert all(function.__name__ == "leaves" for function in made)
    await _both(CASES["plain"], scopes=(Scope.DUES_READ,))
    assert [f for f in functions.values() if f is not None] == made  # not made again
    # Past the cap, a new selection gets none (the plan's loop executes it).
    functions.clear()
    functions.update({("filler", n): None for n in range(execution._MAX_LEAF_FUNCTIONS)})
    fast, reference, _, _ = await _both(CASES["plain"], scopes=(Scope.DUES_READ,))
    assert fast == reference
    assert not any(f for f in functions.values())
    functions.clear()
