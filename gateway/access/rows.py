"""Row-level rules: which records of a type a principal may see, as one mechanism.

A record type's rule is a predicate: from the principal it builds the SQL condition a record
must meet, and it is composed of a few conditions that say why someone may see a record —
owned by the caller or the caller's organisation, assigned to the caller's department,
addressed by a token the caller holds, or a scope that sees them all. Every place that loads
such records (root lists, nested fields, loaders, node(id)) adds the condition of
`RULES.condition(RecordClass, principal)` to its statement, so no path can show what another
path hides. A record outside the rule reads as absent (null from node(id)), never as
"forbidden": that would tell the caller it exists.

Rules are keyed by the record class itself, so mypy and a rename see every use. Today
partners and departments own their API keys and their audit records; inquiries and citizen
requests join with a line each, e.g.

    Inquiry: any_of(
        owned_by(inquiries.c.partner_id),
        assigned_to_department(checks.c.department, via=checks.c.inquiry_id == inquiries.c.id),
        token_holder(inquiries.c.answer_token_sha256, held=…),
    ),
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    LargeBinary,
    and_,
    bindparam,
    cast,
    exists,
    false,
    or_,
    true,
)
from sqlalchemy.dialects.mysql import BINARY
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import False_, True_
from sqlalchemy.sql.visitors import InternalTraversal

from db.contact import CitizenRequestRecord, ServiceDepartment
from db.gateway import ApiKey, AuditRecord, InquiryCheckRecord, InquiryRecord, WebhookDelivery
from gateway.access.principals import Principal, PrincipalKind, Scope

# From the principal, the condition a record must meet to be seen by it.
Predicate = Callable[[Principal], ColumnElement[bool]]


class Exactly(ColumnElement[bool]):
    """`column = value`, character for character on every database.

    MariaDB's collations match "Bank-1" to "bank-1 "; a rule must never let one caller's
    value select another's records, so there the UTF-8 bytes must match too (the plain
    comparison still uses the index). Both values are bound parameters, so a statement's
    compiled form is reused across principals with their own values.
    """

    __visit_name__ = "exactly"
    inherit_cache = True
    type = Boolean()
    _traverse_internals = [  # noqa: RUF012 (SQLAlchemy's protocol for the cache key)
        ("column", InternalTraversal.dp_clauseelement),
        ("text", InternalTraversal.dp_clauseelement),
        ("data", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column: ColumnElement[Any], value: str) -> None:
        self.column = column
        self.text = bindparam(None, value, type_=column.type, unique=True)
        self.data = bindparam(None, value.encode(), type_=LargeBinary(), unique=True)


@compiles(Exactly)
def _exactly(element: Exactly, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.column == element.text, **kw)


@compiles(Exactly, "mysql")
def _exactly_mysql(element: Exactly, compiler: SQLCompiler, **kw: Any) -> str:
    condition = and_(element.column == element.text, cast(element.column, BINARY()) == element.data)
    return compiler.process(condition, **kw)


def _equals(column: ColumnElement[Any], value: object) -> ColumnElement[bool]:
    return Exactly(column, value) if isinstance(value, str) else column == value


# --- What a principal is, as rules compare it ----------------------------------------------


def caller_id(principal: Principal) -> str | None:
    """The caller as records name it (its principal id, `jwt:<sub>` for a JWT client); the
    anonymous public is everyone, and owns nothing."""
    return None if principal.kind is PrincipalKind.PUBLIC else principal.id


def partner_code(principal: Principal) -> str | None:
    """A partner as its inquiries name it (Principal.partner_code); None for others."""
    return principal.partner_code


def key_holder(principal: Principal) -> int | None:
    """API keys belong to principals recorded in the gateway's database (not JWT clients)."""
    if principal.kind is PrincipalKind.PUBLIC or not principal.id.isdigit():
        return None
    return int(principal.id)


# --- The conditions a rule is made of ------------------------------------------------------


def nobody(principal: Principal) -> ColumnElement[bool]:
    return false()


def holding(scope: str) -> Predicate:
    """Every record, for a principal holding `scope`; none otherwise."""
    return lambda principal: true() if principal.has(scope) else false()


def owned_by(
    column: ColumnElement[Any], owner: Callable[[Principal], object | None] = caller_id
) -> Predicate:
    """Records whose `column` names the caller (`owner` says how the column names it)."""

    def condition(principal: Principal) -> ColumnElement[bool]:
        value = owner(principal)
        return false() if value is None else _equals(column, value)

    return condition


def owned_by_organisation(column: ColumnElement[Any]) -> Predicate:
    """Records whose `column` names the caller's organisation (a bank: its bank code)."""

    def condition(principal: Principal) -> ColumnElement[bool]:
        organisation = principal.organisation
        if principal.kind is PrincipalKind.PUBLIC or organisation is None:
            return false()
        return _equals(column, organisation)

    return condition


def assigned_to_department(
    column: ColumnElement[Any], *, via: ColumnElement[bool] | None = None
) -> Predicate:
    """Records assigned to the caller's department: `column` holds a department's name,
    on the record itself or, with `via` (the join to the record), on any of the rows it has
    in another table (an inquiry's checks, one per department)."""

    def condition(principal: Principal) -> ColumnElement[bool]:
        department = principal.department
        if principal.kind is not PrincipalKind.DEPARTMENT or department is None:
            return false()
        if via is None:
            return _equals(column, department)
        return exists().where(via, _equals(column, department))

    return condition


def token_digest(token: str) -> str:
    """How a record keeps a token that opens it: its SHA-256, never the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_holder(
    digest_column: ColumnElement[Any], *, held: Callable[[Principal], Collection[str]]
) -> Predicate:
    """Records addressed by a token the caller holds (an answer's token, a tracking code's
    secret): `digest_column` keeps each record's token_digest, and `held` names the tokens
    the caller presented."""

    def condition(principal: Principal) -> ColumnElement[bool]:
        digests = sorted({token_digest(token) for token in held(principal)})
        return digest_column.in_(digests) if digests else false()

    return condition


def any_of(*predicates: Predicate) -> Predicate:
    """Records any of the predicates lets the caller see."""

    def condition(principal: Principal) -> ColumnElement[bool]:
        conditions = [predicate(principal) for predicate in predicates]
        if any(isinstance(c, True_) for c in conditions):
            return true()
        conditions = [c for c in conditions if not isinstance(c, False_)]
        if not conditions:
            return false()
        return conditions[0] if len(conditions) == 1 else or_(*conditions)

    return condition


def all_of(*predicates: Predicate) -> Predicate:
    """Records every one of the predicates lets the caller see."""

    def condition(principal: Principal) -> ColumnElement[bool]:
        conditions = [predicate(principal) for predicate in predicates]
        if any(isinstance(c, False_) for c in conditions):
            return false()
        conditions = [c for c in conditions if not isinstance(c, True_)]
        if not conditions:
            return true()
        return conditions[0] if len(conditions) == 1 else and_(*conditions)

    return condition


def sees_none(condition: ColumnElement[bool]) -> bool:
    """True when a condition admits no record at all: the statement need not run."""
    return isinstance(condition, False_)


def registered_by_caller(column: ColumnElement[Any]) -> Predicate:
    """Citizen requests the caller registered (`column` keeps its Principal.label)."""
    return owned_by(column, owner=lambda p: None if p.kind is PrincipalKind.PUBLIC else p.label)


def registered_at_centre(channel: ColumnElement[Any]) -> Predicate:
    """For the 137 centre's officers: every request the centre registered, whichever of them
    took the call (they search and follow up each other's)."""

    def condition(principal: Principal) -> ColumnElement[bool]:
        if principal.kind is PrincipalKind.DEPARTMENT and principal.department == "contact137":
            return channel == "CENTRE_137"
        return false()

    return condition


# --- The rules -----------------------------------------------------------------------------


class RowRules:
    """Each record type's rule, keyed by its model class."""

    def __init__(self, rules: Mapping[type[DeclarativeBase], Predicate]) -> None:
        self._rules = dict(rules)

    def __iter__(self) -> Iterator[type[DeclarativeBase]]:
        """The record types under a rule."""
        return iter(self._rules)

    def condition(self, record: type[DeclarativeBase], principal: Principal) -> ColumnElement[bool]:
        """The condition `principal` puts on every statement loading `record`s."""
        return self._rules[record](principal)


RULES = RowRules(
    {
        # A caller's own keys, and no one else's: not even an operator lists others' here.
        ApiKey: owned_by(ApiKey.__table__.c.principal_id, owner=key_holder),
        AuditRecord: any_of(
            holding(Scope.AUDIT_READ), owned_by(AuditRecord.__table__.c.principal_id)
        ),
        # The partner that asked (every key of its organisation), each department holding one
        # of its checks, operators.
        InquiryRecord: any_of(
            holding(Scope.INQUIRIES_ALL),
            owned_by(InquiryRecord.__table__.c.organisation, owner=partner_code),
            assigned_to_department(
                InquiryCheckRecord.__table__.c.authority,
                via=InquiryCheckRecord.__table__.c.inquiry_id == InquiryRecord.__table__.c.id,
            ),
        ),
        # Checks a department answers are its own (operators see every queue).
        InquiryCheckRecord: any_of(
            holding(Scope.INQUIRIES_ALL),
            assigned_to_department(InquiryCheckRecord.__table__.c.authority),
        ),
        # Citizen requests: whoever registered them, the 137 centre those it took, the
        # department routed to, the departments taking part in the service (executing it or
        # only seeing it), operators and inspection. The citizen reads their own by tracking
        # code and mobile (gateway/requests/lookup.py), never through a principal.
        CitizenRequestRecord: any_of(
            holding(Scope.REQUESTS_ALL),
            registered_by_caller(CitizenRequestRecord.__table__.c.registered_by),
            registered_at_centre(CitizenRequestRecord.__table__.c.channel),
            assigned_to_department(CitizenRequestRecord.__table__.c.department),
            assigned_to_department(
                ServiceDepartment.__table__.c.department,
                via=ServiceDepartment.__table__.c.service_id
                == CitizenRequestRecord.__table__.c.service_id,
            ),
        ),
        WebhookDelivery: any_of(
            holding(Scope.INQUIRIES_ALL),
            owned_by(WebhookDelivery.__table__.c.organisation, owner=partner_code),
        ),
    }
)
