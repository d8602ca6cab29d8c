"""A schema people can read: every type, field, argument and enum value described (English,
with the Persian term where there is one), and every deprecation saying why."""

from __future__ import annotations

from collections.abc import Iterator

from graphql import (
    DEFAULT_DEPRECATION_REASON,
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    build_schema,
)

from gateway.schema import build_schema as build_gateway_schema
from gateway.settings import Settings

# GraphQL's own scalars are described by the specification, not by us.
_BUILT_IN = {"String", "Int", "Float", "Boolean", "ID"}


def _ours(name: str) -> bool:
    """Not a type that a specification defines: GraphQL's (`__Type`, `String`, …), Apollo
    Federation's (`_Any`, `_FieldSet`, `_Service`) or a linked spec's (`link__Purpose`)."""
    return not (name.startswith("_") or "__" in name or name in _BUILT_IN)


def undescribed(schema: GraphQLSchema) -> Iterator[str]:
    """Every type, field, argument, input field and enum value without a description, as
    `Type`, `Type.field`, `Type.field(argument)` or `Enum.VALUE`."""
    for name, kind in sorted(schema.type_map.items()):
        if not _ours(name):
            continue
        if not (kind.description or "").strip():
            yield name
        if isinstance(kind, GraphQLObjectType | GraphQLInterfaceType):
            for field_name, field in kind.fields.items():
                if not (field.description or "").strip():
                    yield f"{name}.{field_name}"
                for argument_name, argument in field.args.items():
                    if not (argument.description or "").strip():
                        yield f"{name}.{field_name}({argument_name})"
        elif isinstance(kind, GraphQLInputObjectType):
            for field_name, input_field in kind.fields.items():
                if not (input_field.description or "").strip():
                    yield f"{name}.{field_name}"
        elif isinstance(kind, GraphQLEnumType):
            for value_name, value in kind.values.items():
                if not (value.description or "").strip():
                    yield f"{name}.{value_name}"
        elif isinstance(kind, GraphQLUnionType):
            pass  # a union's members are types, described where they are defined


def deprecated_without_reason(schema: GraphQLSchema) -> Iterator[str]:
    """Every deprecated field, argument, input field or enum value whose reason is missing or
    GraphQL's default ("No longer supported"), which tells a caller nothing."""

    def vague(reason: str | None) -> bool:
        return not (reason or "").strip() or reason == DEFAULT_DEPRECATION_REASON

    for name, kind in sorted(schema.type_map.items()):
        if name.startswith("__"):
            continue
        if isinstance(kind, GraphQLObjectType | GraphQLInterfaceType):
            for field_name, field in kind.fields.items():
                if field.deprecation_reason is not None and vague(field.deprecation_reason):
                    yield f"{name}.{field_name}"
                for argument_name, argument in field.args.items():
                    if argument.deprecation_reason is not None and vague(
                        argument.deprecation_reason
                    ):
                        yield f"{name}.{field_name}({argument_name})"
        elif isinstance(kind, GraphQLInputObjectType):
            for field_name, input_field in kind.fields.items():
                if input_field.deprecation_reason is not None and vague(
                    input_field.deprecation_reason
                ):
                    yield f"{name}.{field_name}"
        elif isinstance(kind, GraphQLEnumType):
            for value_name, value in kind.values.items():
                if value.deprecation_reason is not None and vague(value.deprecation_reason):
                    yield f"{name}.{value_name}"


SCHEMA = build_gateway_schema(Settings())._schema


def test_every_type_field_argument_and_enum_value_is_described() -> None:
    missing = list(undescribed(SCHEMA))
    assert not missing, "describe these (English, with the Persian term where there is one):\n" + (
        "\n".join(missing)
    )


def test_every_deprecation_says_why() -> None:
    assert not list(deprecated_without_reason(SCHEMA))


def test_the_walk_finds_what_is_missing() -> None:
    """The two walks above on a small schema with one gap of each kind: they cannot pass by
    finding nothing."""
    sample = build_schema("""
        "Described."
        type Query {
          "Described."
          parcel("Described." id: ID, code: String): Parcel
          plain: Int
          old: Int @deprecated
          older: Int @deprecated(reason: "Use `plain`: it counts the same.")
        }
        type Parcel { "Described." area: Int }
        scalar _Any
        enum link__Purpose { SECURITY }
        "Described."
        enum Use { "Described." HOME SHOP @deprecated(reason: "") }
        "Described."
        input Filter { "Described." use: Use, region: Int }
    """)
    assert list(undescribed(sample)) == [
        "Filter.region",
        "Parcel",
        "Query.parcel(code)",
        "Query.plain",
        "Query.old",
        "Query.older",
        "Use.SHOP",
    ]
    assert list(deprecated_without_reason(sample)) == ["Query.old", "Use.SHOP"]
