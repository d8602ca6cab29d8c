"""Row-level rules: which records of a type a principal may see, as one mechanism.

Every place that loads such records — root lists, nested fields, loaders, node(id) — asks
the type's rule for a SQL condition, so no path can show what another path hides. A record
outside the rule reads as absent (null from node(id)), never as "forbidden": that would
tell the caller it exists.

Today partners and departments own their API keys and their audit records; inquiries and
citizen requests will join with a line each (owned by the submitting partner, assigned to
a department, opened to the public by a tracking code).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, false, true

from db.gateway import ApiKey, AuditRecord
from gateway.access.principals import Principal, PrincipalKind, Scope


@dataclass(frozen=True)
class RowRule:
    """`see_all`: a scope that sees every record. Otherwise a principal sees the records whose
    `owner_column` equals `owner_of(principal)`; None means it owns none of them."""

    see_all: str | None
    owner_column: ColumnElement[Any]
    owner_of: Callable[[Principal], object | None]

    def owner(self, principal: Principal) -> object | None:
        """The owner value to filter by, or None when the principal sees every record."""
        if self.see_all is not None and principal.has(self.see_all):
            return None
        return self.owner_of(principal)

    def sees_all(self, principal: Principal) -> bool:
        return self.see_all is not None and principal.has(self.see_all)

    def condition(self, principal: Principal) -> ColumnElement[bool]:
        if self.sees_all(principal):
            return true()
        owner = self.owner_of(principal)
        return false() if owner is None else self.owner_column == owner


def _key_holder(principal: Principal) -> int | None:
    """API keys belong to principals recorded in the gateway's database (not JWT clients)."""
    if principal.kind is PrincipalKind.PUBLIC or not principal.id.isdigit():
        return None
    return int(principal.id)


def _actor(principal: Principal) -> str | None:
    return None if principal.kind is PrincipalKind.PUBLIC else principal.id


# One rule per record type, as a named attribute, so that mypy sees every use.
API_KEYS = RowRule(see_all=None, owner_column=ApiKey.__table__.c.principal_id, owner_of=_key_holder)
AUDIT_RECORDS = RowRule(
    see_all=Scope.AUDIT_READ,
    owner_column=AuditRecord.__table__.c.principal_id,
    owner_of=_actor,
)
