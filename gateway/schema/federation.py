"""The gateway as an Apollo Federation v2 subgraph, one per municipality.

A province (or the national exchange) runs a federation router over many municipalities'
gateways and other agencies' subgraphs. Every municipality serves the same schema, so that
its types compose as one: the SDL the router reads (`_service { sdl }`) marks every object
type @shareable, and carries the queries only (a mutation or a subscription through a router
could land on another city's gateway; they stay on each gateway's own endpoint).

What keeps two municipalities apart under one router:
- entity keys unique across municipalities: a Parcel by (municipality, renewalCode) or
  (municipality, registryPlate), the municipality being `settings.municipality_code`; a
  Person by national ID (unique nationwide). A gateway answers `_entities` for its own
  municipality's parcels only (null for another's), under the same scopes, row rules and
  audit as `parcel(...)` and `person(...)` (see their `resolve_reference` in planning.py);
- one root field per municipality, `municipality_<code>` (its code with `.` and `-` as `_`),
  defined by that municipality's gateway alone: the router sends a selection under it to
  that gateway, and the nested fields stay there.

`_service { sdl }` answers internal callers and federation routers (the federation:sdl scope);
data goes through the router under the end caller's own credential, which the router
forwards, so limits, row rules and audit are those of a direct request.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable
from typing import Annotated, Any, cast

import strawberry
from graphql import (
    ArgumentNode,
    DirectiveNode,
    DocumentNode,
    GraphQLEnumType,
    GraphQLSchema,
    ListValueNode,
    NameNode,
    ObjectTypeDefinitionNode,
    ObjectTypeExtensionNode,
    SchemaDefinitionNode,
    SchemaExtensionNode,
    StringValueNode,
    parse,
    print_ast,
)
from strawberry.federation.schema import FederationAny
from strawberry.printer import print_schema
from strawberry.tools import create_type
from strawberry.types.field import StrawberryField

from gateway.access.permissions import Scope, requires
from gateway.context import Info
from gateway.errors import BadUserInput
from gateway.guards.cost import sized_by
from gateway.schema.planning import Parcel, Person, PlanningQuery
from gateway.schema.scalars import NationalCode, RegistryPlate, RenewalCode
from gateway.settings import Settings

__all__ = [
    "FederationQuery",
    "describe_federation_types",
    "federated_sdl",
    "municipality_field_name",
    "municipality_query",
]

# Root types a router never reaches through this subgraph (see the module's docstring).
_NOT_FEDERATED = frozenset({"Mutation", "Subscription"})


def municipality_field_name(code: str) -> str:
    """The root field under which a router reaches this municipality: `municipality_urmia`."""
    return "municipality_" + re.sub(r"[^A-Za-z0-9_]", "_", code)


@strawberry.type(
    name="Municipality",
    description="One municipality (شهرداری) of a federated graph: its parcels and the people "
    "its planning department knows, under its own gateway.",
)
class Municipality:
    code: str = strawberry.field(
        description="The municipality's code (کد شهرداری), as in its parcels' keys."
    )

    @strawberry.field(
        description="One of this municipality's parcels by exactly one of its keys; null when "
        "none matches (as Query.parcel).",
        permission_classes=[requires(Scope.PARCELS_READ)],
    )
    async def parcel(
        self,
        info: Info,
        renewal_code: Annotated[
            RenewalCode | None,
            strawberry.argument(description="The parcel's renewal code (کد نوسازی)."),
        ] = None,
        registry_plate: Annotated[
            RegistryPlate | None,
            strawberry.argument(description="The parcel's registry plate (پلاک ثبتی)."),
        ] = None,
    ) -> Parcel | None:
        found: Parcel | None = await PlanningQuery().parcel(
            info, renewal_code=renewal_code, registry_plate=registry_plate
        )
        return found

    @strawberry.field(
        description="A person this municipality's planning department knows, by national ID "
        "(کد ملی); null when unknown (as Query.person).",
        permission_classes=[requires(Scope.PERSONAL_READ)],
    )
    async def person(
        self,
        info: Info,
        national_code: Annotated[
            NationalCode, strawberry.argument(description="The person's national ID (کد ملی).")
        ],
    ) -> Person | None:
        found: Person | None = await PlanningQuery().person(info, national_code=national_code)
        return found


def municipality_query(settings: Settings) -> type:
    """The Query part with this gateway's own root field, `municipality_<code>`."""
    code = settings.municipality_code

    def resolve() -> Municipality:
        return Municipality(code=code)

    field = strawberry.field(
        resolver=resolve,
        name=municipality_field_name(code),
        description=f"This municipality ({code}) in a federated graph: a router sends what is "
        "selected under this field to this municipality's gateway.",
    )
    return create_type("MunicipalityQuery", [cast(StrawberryField, field)])


@strawberry.type(name="_Service", description="This subgraph, as a federation router reads it.")
class Service:
    sdl: str = strawberry.field(
        description="The subgraph's SDL for composition: queries only, every object type "
        "@shareable, entity keys unique across municipalities."
    )


# The entity types a router may fetch by key (`_entities`), with their key fields.
Entity = Annotated[
    Parcel | Person,
    strawberry.union("_Entity", description="What a federation router may fetch by key."),
]
_ENTITIES: dict[str, Any] = {"Parcel": Parcel, "Person": Person}


@strawberry.type
class FederationQuery:
    @strawberry.field(
        name="_entities",
        description="Entities by their keys, for a federation router: each representation "
        "answers as the direct query would (same scopes, row rules and audit); null when "
        "this municipality has no such entity.",
        # The cost estimate counts an entity per representation, not a typical list's size.
        metadata=sized_by("representations"),
    )
    async def entities(
        self,
        info: Info,
        representations: Annotated[
            list[FederationAny],
            strawberry.argument(
                description="Each entity's __typename and key fields, as the router sends them."
            ),
        ],
    ) -> list[Entity | None]:
        settings = info.context.settings
        most = settings.max_page_size * settings.cost_list_size
        if len(representations) > most:
            raise BadUserInput(
                f"At most {most} representations in one request.", field="representations"
            )
        lookups: list[Awaitable[Any]] = []
        for representation in representations:
            entity = None
            if isinstance(representation, dict):
                key = dict(representation)
                entity = _ENTITIES.get(str(key.pop("__typename", "")))
            if entity is None:
                raise BadUserInput(
                    "Each representation needs the __typename of an entity: Parcel or Person.",
                    field="representations",
                )
            lookups.append(entity.resolve_reference(info, **key))
        # Together, so that the loaders batch them as they batch a list's; each one's error
        # stays at its index, as a direct query's field would be null with its error listed.
        found: list[Any] = await asyncio.gather(*lookups, return_exceptions=True)
        return found

    @strawberry.field(
        name="_service",
        description="The subgraph's SDL, for a federation router (internal callers and "
        "routers only).",
        permission_classes=[requires(Scope.FEDERATION_SDL)],
    )
    def service(self, info: Info) -> Service:
        return Service(sdl=federated_sdl(info.schema))


# The federation spec's own types, described as every type of the schema is.
_SPEC_DESCRIPTIONS = {
    "_Any": "An entity's representation: its __typename and key fields (federation).",
    "_FieldSet": "A selection of fields, such as an entity key's (federation).",
    "link__Import": "A name the @link directive imports from a specification (federation).",
    "link__Purpose": "What a linked specification is for (federation).",
}
_SPEC_VALUE_DESCRIPTIONS = {
    ("link__Purpose", "SECURITY"): "The specification secures access to the schema.",
    ("link__Purpose", "EXECUTION"): "The specification affects how operations execute.",
}


def describe_federation_types(schema: GraphQLSchema) -> None:
    """Gives the federation spec's types (which strawberry adds undescribed) descriptions."""
    for name, description in _SPEC_DESCRIPTIONS.items():
        named = schema.get_type(name)
        if named is not None and not named.description:
            named.description = description
    for (name, value), description in _SPEC_VALUE_DESCRIPTIONS.items():
        enum = schema.get_type(name)
        if isinstance(enum, GraphQLEnumType) and value in enum.values:
            enum.values[value].description = description


_SDL_CACHE: dict[int, tuple[object, str]] = {}


def federated_sdl(schema: object) -> str:
    """The SDL a router composes: the schema's, with Mutation and Subscription left out and
    every object type @shareable (every municipality serves them alike)."""
    cached = _SDL_CACHE.get(id(schema))
    if cached is not None and cached[0] is schema:
        return cached[1]
    document = parse(print_schema(cast(Any, schema)))
    definitions: list[Any] = []
    for node in document.definitions:
        if isinstance(node, (SchemaDefinitionNode, SchemaExtensionNode)):
            definitions.append(_federated_schema_node(node))
        elif isinstance(node, (ObjectTypeDefinitionNode, ObjectTypeExtensionNode)):
            if node.name.value in _NOT_FEDERATED:
                continue
            definitions.append(_shareable(node))
        else:
            definitions.append(node)
    sdl = print_ast(DocumentNode(definitions=tuple(definitions)))
    if len(_SDL_CACHE) >= 16:
        _SDL_CACHE.clear()
    _SDL_CACHE[id(schema)] = (schema, sdl)
    return sdl


def _replace(node: Any, **changes: Any) -> Any:
    """A copy of an AST node with some of its parts changed."""
    return node.__class__(**{**{key: getattr(node, key) for key in node.keys}, **changes})


def _directive(name: str) -> DirectiveNode:
    return DirectiveNode(name=NameNode(value=name), arguments=())


def _shareable(node: ObjectTypeDefinitionNode | ObjectTypeExtensionNode) -> Any:
    directives = tuple(node.directives or ())
    if node.name.value.startswith("_") or any(d.name.value == "shareable" for d in directives):
        return node
    return _replace(node, directives=(*directives, _directive("shareable")))


def _federated_schema_node(node: SchemaDefinitionNode | SchemaExtensionNode) -> Any:
    """The schema node with its @link importing @shareable, and the query root only."""
    directives: list[DirectiveNode] = [
        _with_import(directive, "@shareable") if directive.name.value == "link" else directive
        for directive in node.directives or ()
    ]
    operations = tuple(
        operation
        for operation in node.operation_types or ()
        if operation.type.name.value not in _NOT_FEDERATED
    )
    return _replace(node, directives=tuple(directives), operation_types=operations)


def _with_import(link: DirectiveNode, name: str) -> DirectiveNode:
    arguments = []
    found = False
    for argument in link.arguments or ():
        if argument.name.value == "import" and isinstance(argument.value, ListValueNode):
            found = True
            names = [cast(StringValueNode, value).value for value in argument.value.values]
            if name not in names:
                names.append(name)
            argument = ArgumentNode(
                name=argument.name,
                value=ListValueNode(values=tuple(StringValueNode(value=n) for n in names)),
            )
        arguments.append(argument)
    if not found:
        arguments.append(
            ArgumentNode(
                name=NameNode(value="import"),
                value=ListValueNode(values=(StringValueNode(value=name),)),
            )
        )
    return DirectiveNode(name=link.name, arguments=tuple(arguments))
