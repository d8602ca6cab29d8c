"""A failing agency nulls only its own fields: every field that asks an agency is nullable,
checked from the resolvers' code and by a query over the whole schema with every agency down."""

from __future__ import annotations

import socket
import types
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from graphql import (
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    Undefined,
    get_named_type,
    is_leaf_type,
    is_non_null_type,
)
from sqlalchemy import select

from db.demo import KNOWN_NATIONAL_CODE
from db.engines import Databases
from db.revenue import Payment
from gateway.access.principals import ANONYMOUS
from gateway.edge.app import create_app
from gateway.inquiries.tracking import damm_check_digit
from gateway.loaders import Loaders, per_request
from gateway.schema import build_schema
from gateway.schema.node import to_global_id
from gateway.settings import Settings
from tests.conftest import Backend, GraphQLClient, settings_for

# A well-formed tracking code no inquiry has.
TRACKING_CODE = "100000000000000" + damm_check_digit("100000000000000")
AGENCY_CODES = {"AGENCY_UNAVAILABLE", "AGENCY_TIMEOUT", "AGENCY_REJECTED"}
AGENCY_URLS = ("land_registry_url", "civil_registry_url", "bank_url", "postal_url")


# --- Which resolvers can raise an agency error ------------------------------------------


class _Touched:
    """Stands in for the agencies (and databases) while loaders are built: records whether
    building a loader reached for an agency."""

    def __init__(self) -> None:
        self.touched = False

    def __getattr__(self, name: str) -> Any:
        self.touched = True
        return self


async def agency_loaders() -> frozenset[str]:
    """The loaders that call an agency: those that take hold of an agency when built. Found
    from the Loaders class itself, so a loader added later is classified without a list."""
    found = set()
    for name, member in vars(Loaders).items():
        if not isinstance(member, per_request):
            continue
        agencies = _Touched()
        databases = types.SimpleNamespace(
            planning=None, revenue=None, gateway=None, engine=lambda name: None
        )
        getattr(Loaders(databases, agencies, ANONYMOUS), name)  # type: ignore[arg-type]
        if agencies.touched:
            found.add(name)
    return frozenset(found)


def _names_used(code: types.CodeType) -> Iterator[str]:
    """Every attribute and global name a function's code uses, nested functions included."""
    yield from code.co_names
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            yield from _names_used(constant)


def _object_fields(schema: GraphQLSchema) -> Iterator[tuple[str, str, GraphQLField]]:
    for type_name, named in schema.type_map.items():
        if isinstance(named, GraphQLObjectType) and not type_name.startswith("__"):
            for field_name, field in named.fields.items():
                yield type_name, field_name, field


def agency_fields(schema: GraphQLSchema, loaders: frozenset[str]) -> dict[str, GraphQLField]:
    """Fields whose resolver loads through an agency loader ("Type.field" → field)."""
    found = {}
    for type_name, field_name, field in _object_fields(schema):
        definition = field.extensions.get("strawberry-definition")
        resolver = getattr(definition, "base_resolver", None)
        if resolver is None:
            continue
        if loaders & set(_names_used(resolver.wrapped_func.__code__)):
            found[f"{type_name}.{field_name}"] = field
    return found


@pytest.fixture(scope="module")
def schema() -> GraphQLSchema:
    built: GraphQLSchema = build_schema(Settings())._schema
    return built


async def test_the_agency_loaders_are_found_from_the_loaders_themselves() -> None:
    found = await agency_loaders()
    assert {"deed_by_plate", "civil_record", "postal_address", "bank_payment"} <= found
    assert not found & {"parcel_by_id", "payment_by_reference", "dues_by_renewal_code"}


async def test_every_field_whose_resolver_asks_an_agency_is_nullable(
    schema: GraphQLSchema,
) -> None:
    fields = agency_fields(schema, await agency_loaders())
    # The scan must see the fields known to ask agencies, or it proves nothing.
    assert {
        "Parcel.deed",
        "Parcel.postalAddress",
        "Person.civilRecord",
        "PaymentCheck.bank",
        "PaymentCheck.consistent",
    } <= set(fields)
    non_null = sorted(name for name, field in fields.items() if is_non_null_type(field.type))
    assert non_null == [], f"these fields ask an agency but are non-null: {non_null}"


# --- With every agency down, a query over the whole schema ------------------------------


@pytest.fixture(scope="module")
def dead_address() -> Iterator[str]:
    """An address where nothing listens: bound, never listening, so connections are refused
    at once and no one else can take the port meanwhile."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


@pytest.fixture(scope="module")
async def agencies_down(
    backend: Backend, keys: dict[str, str], dead_address: str
) -> AsyncIterator[GraphQLClient]:
    """The operator, on an app whose four agencies are all unreachable. Its limits are raised
    so that one query may select the whole schema."""
    overrides: dict[str, Any] = dict.fromkeys(AGENCY_URLS, dead_address)
    overrides |= {
        "max_query_depth": 100,
        "max_query_tokens": 100_000,
        "max_query_length": 1_000_000,
        "max_root_fields": 100,
        "max_aliases": 10_000,
        "max_fields": 100_000,
        "cost_budget_internal": 10**9,
    }
    app = create_app(settings_for(backend, **overrides))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        yield GraphQLClient(http, keys["operator"])


async def _settled_reference(backend: Backend) -> str:
    """A payment revenue recorded and the bank settled (the sandbox's rules, by payment id)."""
    databases = Databases({"revenue": backend.urls["revenue"]})
    try:
        async with databases.revenue.connect() as connection:
            rows = (
                await connection.execute(
                    select(Payment.id, Payment.bank_reference).order_by(Payment.id).limit(100)
                )
            ).all()
    finally:
        await databases.dispose()
    return next(r.bank_reference for r in rows if r.id % 19 != 7 and r.id % 17 != 5)


async def test_with_the_bank_down_revenue_record_still_arrives(
    agencies_down: GraphQLClient, backend: Backend
) -> None:
    reference = await _settled_reference(backend)
    body = await agencies_down(
        "query($r: String!) { verifyPayment(reference: $r) { reference recorded { amount }"
        " consistent } }",
        {"r": reference},
    )
    check = body["data"]["verifyPayment"]
    assert check is not None, body
    assert check["reference"] == reference
    assert check["recorded"]["amount"] > 0
    assert check["consistent"] is None
    assert [
        (e["path"], e["extensions"]["code"], e["extensions"]["agency"]) for e in body["errors"]
    ] == [(["verifyPayment", "consistent"], "AGENCY_UNAVAILABLE", "bank")]


class SchemaWalk:
    """A query selecting every field reachable from the roots, built from the schema itself:
    each object type is expanded once along a path (so cycles end), interfaces and unions
    through a fragment on each of their types. Arguments are given by name from `values`
    (or by `Type.field.argument` where one field needs its own) when known (required ones
    must be): a field added later is walked without a change here,
    or names the argument it needs."""

    def __init__(self, schema: GraphQLSchema, values: dict[str, str]) -> None:
        self.schema = schema
        self.values = values
        self.unknown_arguments: list[str] = []

    def query(self) -> str:
        query_type = self.schema.query_type
        assert query_type is not None
        return self._fields(query_type, frozenset())

    def _fields(
        self, parent: GraphQLObjectType, on_path: frozenset[str], alias: bool = False
    ) -> str:
        """`alias`: in a fragment, each field is aliased `Type__field`, since two types of one
        interface may have fields of one name and different types."""
        selected = []
        for name, field in parent.fields.items():
            arguments = []
            for argument_name, argument in field.args.items():
                qualified = f"{parent.name}.{name}.{argument_name}"
                if qualified in self.values:
                    arguments.append(f"{argument_name}: {self.values[qualified]}")
                elif argument_name in self.values:
                    arguments.append(f"{argument_name}: {self.values[argument_name]}")
                elif (
                    isinstance(argument.type, GraphQLNonNull)
                    and argument.default_value is Undefined
                ):
                    self.unknown_arguments.append(f"{parent.name}.{name}({argument_name})")
            call = f"{name}({', '.join(arguments)})" if arguments else name
            if alias:
                call = f"{parent.name}__{name}: {call}"
            named = get_named_type(field.type)
            if is_leaf_type(named):
                selected.append(call)
            elif named.name not in on_path:
                selected.append(f"{call} {self._selection(named, on_path | {named.name})}")
        return "{ " + " ".join(selected) + " }"

    def _selection(self, named: GraphQLNamedType, on_path: frozenset[str]) -> str:
        if isinstance(named, GraphQLObjectType):
            return self._fields(named, on_path)
        assert isinstance(named, GraphQLInterfaceType | GraphQLUnionType), named
        fragments = [
            f"... on {possible.name} {self._fields(possible, on_path | {possible.name}, True)}"
            for possible in self.schema.get_possible_types(named)
            if possible.name not in on_path
        ]
        return "{ __typename " + " ".join(fragments) + " }"


def _at(data: Any, path: list[str | int]) -> Any:
    for step in path:
        data = data[step]
    return data


async def test_with_every_agency_down_only_agency_fields_are_null(
    agencies_down: GraphQLClient, backend: Backend, schema: GraphQLSchema
) -> None:
    walk = SchemaWalk(
        schema,
        {
            "reference": f'"{await _settled_reference(backend)}"',
            "nationalCode": f'"{KNOWN_NATIONAL_CODE}"',
            "id": f'"{to_global_id("Parcel", 1)}"',
            "first": "3",
            "trackingCode": f'"{TRACKING_CODE}"',
            "answer": '"not-an-answer"',
            "groupBy": "[KIND]",
            "serviceCode": '"completion_certificate"',
            "representations": "[]",
            # A municipality's parcel is found by its keys only (no global id).
            "Municipality.parcel.renewalCode": '"3-3-1-1"',
        },
    )
    query = walk.query()
    assert walk.unknown_arguments == [], "give the walk a value for these arguments"
    body = await agencies_down(query)
    errors = body.get("errors", [])
    assert errors, "with every agency down, the walk must meet agency errors"
    others = [e for e in errors if e["extensions"]["code"] not in AGENCY_CODES]
    assert others == []
    for error in errors:
        path = error["path"]
        # Only the field itself is null: its parent object arrived.
        assert isinstance(_at(body["data"], path[:-1]), dict), (path, error)
        assert _at(body["data"], path) is None
    # Every field that asks an agency was reached, and failed on its own.
    failed = {error["path"][-1].rpartition("__")[2] for error in errors}
    fields = agency_fields(schema, await agency_loaders())
    assert {name.split(".")[1] for name in fields} <= failed
