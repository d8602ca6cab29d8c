"""Relay global object identification: opaque ids that name a type and a record."""

from __future__ import annotations

import base64
import binascii

import strawberry

from gateway.errors import BadUserInput


@strawberry.interface(description="An object with a globally unique id (Relay).")
class Node:
    pk: strawberry.Private[int]

    # Computed only when asked: most lists never select it.
    @strawberry.field(description="The object's global id, for node(id:).")
    def id(self) -> strawberry.ID:
        return to_global_id(type(self).__name__, self.pk)


def to_global_id(type_name: str, pk: int) -> strawberry.ID:
    return strawberry.ID(base64.urlsafe_b64encode(f"{type_name}:{pk}".encode()).decode())


def from_global_id(value: str, *, field: str = "id") -> tuple[str, int]:
    try:
        type_name, _, pk = base64.urlsafe_b64decode(value.encode()).decode().partition(":")
        return type_name, int(pk)
    except (binascii.Error, UnicodeError, ValueError):
        raise BadUserInput("Not a valid global id.", field=field) from None
