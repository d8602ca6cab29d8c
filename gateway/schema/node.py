"""Relay global object identification: opaque ids that name a type and a record, the
registry of Node types, and `node(id)`.

Each Node type registers itself where it is defined (`@node_type(...)` above its
`@strawberry.type`): how to load one by its primary key, and the scope reading one needs.
The registry holds the classes themselves, under the GraphQL name strawberry gives them;
building the schema fails if a type implements Node without registering, so node(id)
reaches every Node type.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Self, TypeVar

import strawberry
from graphql import GraphQLInterfaceType, GraphQLSchema

from gateway.access.permissions import note_personal_read
from gateway.context import Info
from gateway.errors import BadUserInput, Forbidden
from gateway.loaders import Loaders

# Record ids are positive and live in 32-bit INTEGER columns (PostgreSQL's and MariaDB's
# INTEGER, SQLite's rowid): a larger number must be refused before it reaches a statement.
MAX_RECORD_ID = 2**31 - 1
# An id names a type and a number; anything longer is not one the gateway gave out, and is
# refused before it is decoded.
MAX_OPAQUE_LENGTH = 200
_RECORD_ID = re.compile(r"[1-9][0-9]{0,9}", re.ASCII)


@strawberry.interface(description="An object with a globally unique id (Relay).")
class Node:
    pk: strawberry.Private[int]

    # Computed only when asked: most lists never select it.
    @strawberry.field(description="The object's global id, for node(id:).")
    def id(self) -> strawberry.ID:
        return to_global_id(graphql_name(type(self)), self.pk)

    @classmethod
    def from_domain(cls, record: Any) -> Self:
        """The object from the record its loader returns; every Node type defines it."""
        raise NotImplementedError


def graphql_name(cls: type[Node]) -> str:
    """The type's name in the schema (and in its global ids), as strawberry derives it."""
    return cls.__strawberry_definition__.name  # type: ignore[attr-defined,no-any-return]


@dataclass(frozen=True)
class NodeType:
    """How node(id) reads one object of a registered type."""

    cls: type[Node]
    # The loader that reads one by primary key; its statement carries any row-level rule.
    loader: Callable[[Loaders], Any]
    # The scope reading one needs; None when the type's row-level rule alone decides (a
    # record outside it reads as absent, see gateway/access/rows.py).
    scope: str | None
    # Whose personal data one is: the subject id noted for the audit trail, if any.
    personal: Callable[[Any], str] | None = None


NODE_TYPES: dict[str, NodeType] = {}

N = TypeVar("N", bound=type[Node])


def node_type(
    *,
    loader: Callable[[Loaders], Any],
    scope: str | None,
    personal: Callable[[Any], str] | None = None,
) -> Callable[[N], N]:
    """Registers a strawberry Node type for node(id); put it above `@strawberry.type`."""

    def register(cls: N) -> N:
        NODE_TYPES[graphql_name(cls)] = NodeType(cls, loader, scope, personal)
        return cls

    return register


def check_every_node_registered(schema: GraphQLSchema) -> None:
    """Refuses a schema with a Node type that node(id) could not reach."""
    node = schema.get_type("Node")
    assert isinstance(node, GraphQLInterfaceType)
    missing = sorted(
        t.name for t in schema.get_implementations(node).objects if t.name not in NODE_TYPES
    )
    if missing:
        raise TypeError(f"Node types without @node_type, unreachable by node(id): {missing}")


def to_global_id(type_name: str, pk: int) -> strawberry.ID:
    return strawberry.ID(base64.urlsafe_b64encode(f"{type_name}:{pk}".encode()).decode())


def record_id(text: str) -> int | None:
    """A record id written in ASCII digits, 1 to MAX_RECORD_ID; None for anything else
    (int() would also take signs, spaces, underscores and other scripts' digits)."""
    if _RECORD_ID.fullmatch(text) is None:
        return None
    number = int(text)
    return number if number <= MAX_RECORD_ID else None


def decode_opaque(value: str) -> str | None:
    """The text inside an opaque id or cursor (url-safe base64); None if it is not one."""
    if len(value) > MAX_OPAQUE_LENGTH:
        return None
    try:
        # validate=True: the lenient decoder would skip characters outside the alphabet.
        return base64.b64decode(value.encode("ascii"), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeError, ValueError):
        return None


def from_global_id(value: str, *, field: str = "id") -> tuple[str, int]:
    text = decode_opaque(value)
    if text is not None:
        type_name, colon, pk = text.partition(":")
        number = record_id(pk)
        if colon and type_name and number is not None:
            return type_name, number
    raise BadUserInput("Not a valid global id.", field=field)


@strawberry.type
class NodeQuery:
    @strawberry.field(description="Any object by its global id; null when it does not exist.")
    async def node(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID,
            strawberry.argument(description="A global id, as an object's id field gives it."),
        ],
    ) -> Node | None:
        type_name, pk = from_global_id(id)
        registered = NODE_TYPES.get(type_name)
        if registered is None:
            raise BadUserInput("The id names no known type.", field="id")
        scope = registered.scope
        if scope is not None and not info.context.principal.has(scope):
            raise Forbidden(f"Reading a {type_name} needs the {scope} scope.", scope=scope)
        record = await registered.loader(info.context.loaders).load(pk)
        if record is None:
            return None
        node = registered.cls.from_domain(record)
        if registered.personal is not None:
            note_personal_read(info, type_name, registered.personal(node))
        return node
