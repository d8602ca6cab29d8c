"""API keys for partners, departments and operators: issue, list, revoke and verify them.

A key is `gw_<prefix>_<secret>`. The prefix is not secret and finds the row; only the SHA-256
of the secret is stored. The secret carries 256 random bits, so a fast hash suffices: a slow
one (bcrypt, argon2) protects guessable passwords, and would only slow every request here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import ColumnElement, Row, Select, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

import identifiers
from db.engines import Databases
from db.gateway import ApiKey, PrincipalRecord
from gateway.access import rows
from gateway.access.principals import DEPARTMENTS, Principal, PrincipalKind, scopes_for
from gateway.clock import as_utc, naive_utc, utc_now
from gateway.errors import BadUserInput, Conflict, NotFound
from gateway.events import Topic

KEY_MARK = "gw"
PREFIX_BYTES = 6  # 12 lowercase hex characters
SECRET_BYTES = 32
DEFAULT_LIFETIME = dt.timedelta(days=365)
DEMO_LIFETIME = dt.timedelta(days=30)
MAX_NAME_LENGTH = 200

_PREFIX = re.compile(rf"[0-9a-f]{{{PREFIX_BYTES * 2}}}")
_SECRET = re.compile(r"[A-Za-z0-9_-]{43}")  # token_urlsafe(32), unpadded

KeyState = Literal["active", "revoked", "expired"]


@dataclass(frozen=True)
class KeyInfo:
    """What may be shown about a key: never its secret, nor the secret's hash."""

    id: int
    prefix: str
    principal_id: int
    principal_kind: PrincipalKind
    principal_name: str
    department: str | None
    created_at: dt.datetime  # aware, UTC
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    state: KeyState
    organisation: str | None = None  # a bank's three-digit bank code

    @property
    def kind_label(self) -> str:
        return kind_label(self.principal_kind, self.department)


@dataclass(frozen=True)
class VerifiedKey:
    principal: Principal
    expires_at: dt.datetime | None  # aware, UTC; callers that cache must not outlive it


def parse_kind(text: str) -> tuple[PrincipalKind, str | None]:
    """`notary`, `bank`, `counter`, `operator`, `router` or `department:<name>` → kind and
    department."""
    base, colon, department = text.strip().partition(":")
    kind = next((k for k in PrincipalKind if k.value == base), None)
    if kind is None or kind is PrincipalKind.PUBLIC:
        raise BadUserInput(
            "The kind must be notary, bank, counter, operator, router or department:<name>.",
            field="kind",
        )
    if kind is PrincipalKind.DEPARTMENT:
        _check_department(kind, department)
        return kind, department
    if colon:
        raise BadUserInput(f"The kind {kind.value} takes no department.", field="kind")
    return kind, None


def kind_label(kind: PrincipalKind, department: str | None) -> str:
    """The inverse of parse_kind."""
    return f"{kind.value}:{department}" if kind is PrincipalKind.DEPARTMENT else kind.value


def _check_department(kind: PrincipalKind, department: str | None) -> None:
    if kind is PrincipalKind.DEPARTMENT:
        if department not in DEPARTMENTS:
            raise BadUserInput(
                f"The department must be one of: {', '.join(DEPARTMENTS)}.", field="department"
            )
    elif department is not None:
        raise BadUserInput(f"The kind {kind.value} takes no department.", field="department")


def parse_organisation(
    kind: PrincipalKind, text: str | None, *, required: bool = False
) -> str | None:
    """A bank's organisation is its three-digit bank code (as in a Sheba number): its payment
    references start with it. Other kinds have none. `required`: a bank must name one."""
    if kind is not PrincipalKind.BANK:
        if text is not None:
            raise BadUserInput(
                f"The kind {kind.value} takes no organisation.", field="organisation"
            )
        return None
    if text is None:
        if required:
            raise BadUserInput("A bank needs its three-digit bank code.", field="organisation")
        return None
    try:
        return identifiers.parse_bank_code(text)
    except identifiers.InvalidIdentifier:
        raise BadUserInput(
            "A bank's organisation is its three-digit bank code.", field="organisation"
        ) from None


def _utcnow(now: dt.datetime | None = None) -> dt.datetime:
    """`now` (the wall clock's by default) as the columns hold it: naive UTC, in whole
    seconds, as MariaDB's DATETIME keeps them."""
    return naive_utc(now or utc_now()).replace(microsecond=0)


def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    return None if moment is None else as_utc(moment)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _split(token: str) -> tuple[str, str] | None:
    mark, _, rest = token.partition("_")
    prefix, _, secret = rest.partition("_")
    if mark != KEY_MARK or not _PREFIX.fullmatch(prefix) or not _SECRET.fullmatch(secret):
        return None
    return prefix, secret


def _state(
    expires_at: dt.datetime | None, revoked_at: dt.datetime | None, now: dt.datetime
) -> KeyState:
    if revoked_at is not None:
        return "revoked"
    if expires_at is not None and expires_at <= now:
        return "expired"
    return "active"


def _info(key: ApiKey, principal: PrincipalRecord, now: dt.datetime) -> KeyInfo:
    return KeyInfo(
        id=key.id,
        prefix=key.prefix,
        principal_id=principal.id,
        principal_kind=PrincipalKind(principal.kind),
        principal_name=principal.name,
        department=principal.department,
        created_at=as_utc(key.created_at),
        expires_at=_aware(key.expires_at),
        revoked_at=_aware(key.revoked_at),
        state=_state(key.expires_at, key.revoked_at, now),
        organisation=principal.organisation,
    )


async def _principal_record(
    databases: Databases,
    kind: PrincipalKind,
    name: str,
    department: str | None,
    organisation: str | None = None,
) -> PrincipalRecord:
    """Finds the principal (kind, name), or creates it; safe when two callers race. A bank
    recorded without a bank code gets the one given now; another code is refused."""
    query = select(PrincipalRecord).where(
        PrincipalRecord.kind == kind.value, PrincipalRecord.name == name
    )
    for _ in range(3):
        async with databases.session("gateway") as session:
            record = (await session.execute(query)).scalar_one_or_none()
        if record is None:
            record = PrincipalRecord(
                kind=kind.value,
                name=name,
                department=department,
                organisation=organisation,
                created_at=_utcnow(),
            )
            try:
                async with databases.session("gateway") as session, session.begin():
                    session.add(record)
            except IntegrityError:
                continue  # created meanwhile by someone else: find it
        if record.department != department:
            raise BadUserInput(
                f"A {kind.value} named {name!r} exists in another department "
                f"({record.department}).",
                field="department",
            )
        if organisation is not None and record.organisation != organisation:
            if record.organisation is not None:
                raise BadUserInput(
                    f"A {kind.value} named {name!r} has another organisation "
                    f"({record.organisation}).",
                    field="organisation",
                )
            async with databases.session("gateway") as session, session.begin():
                await session.execute(
                    update(PrincipalRecord)
                    .where(PrincipalRecord.id == record.id)
                    .values(organisation=organisation)
                )
            record.organisation = organisation
        return record
    raise RuntimeError(f"could not find or create the principal {kind.value} {name!r}")


async def create_key(
    databases: Databases,
    kind: PrincipalKind,
    name: str,
    department: str | None = None,
    expires_in: dt.timedelta | None = DEFAULT_LIFETIME,
    *,
    organisation: str | None = None,
    now: dt.datetime | None = None,
) -> tuple[KeyInfo, str]:
    """Issues a key to the principal (kind, name), creating the principal on first use.

    `organisation`: a bank's three-digit bank code (see parse_organisation); a bank without
    one verifies no payment. Returns the key's details and the key itself, which exists
    nowhere else afterwards.
    """
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise BadUserInput(f"The name must have 1 to {MAX_NAME_LENGTH} characters.", field="name")
    if kind is PrincipalKind.PUBLIC:
        raise BadUserInput("The public needs no key.", field="kind")
    _check_department(kind, department)
    organisation = parse_organisation(kind, organisation)
    if expires_in is not None and expires_in <= dt.timedelta(0):
        raise BadUserInput("A key must expire in the future, or never.", field="expires_in")
    principal = await _principal_record(databases, kind, name, department, organisation)
    created = _utcnow(now)
    for _ in range(3):
        prefix = secrets.token_hex(PREFIX_BYTES)
        secret = secrets.token_urlsafe(SECRET_BYTES)
        key = ApiKey(
            principal_id=principal.id,
            prefix=prefix,
            secret_hash=_digest(secret),
            created_at=created,
            expires_at=None if expires_in is None else created + expires_in,
            revoked_at=None,
        )
        try:
            async with databases.session("gateway") as session, session.begin():
                session.add(key)
        except IntegrityError:
            continue  # a prefix taken already (one chance in 2**48 per key): draw another
        return _info(key, principal, created), f"{KEY_MARK}_{prefix}_{secret}"
    raise RuntimeError("could not draw an unused key prefix")


def _with_principal() -> Select[ApiKey, PrincipalRecord]:
    return select(ApiKey, PrincipalRecord).join(
        PrincipalRecord, PrincipalRecord.id == ApiKey.principal_id
    )


async def list_keys(
    databases: Databases, principal_id: int | None = None, *, now: dt.datetime | None = None
) -> list[KeyInfo]:
    """Every key (or one principal's), revoked and expired ones included, oldest first."""
    query = _with_principal().order_by(ApiKey.id)
    if principal_id is not None:
        query = query.where(ApiKey.principal_id == principal_id)
    moment = _utcnow(now)
    async with databases.session("gateway") as session:
        rows = (await session.execute(query)).all()
    return [_info(key, principal, moment) for key, principal in rows]


def _prefix_of(text: str) -> str:
    # Accept the key's visible start (`gw_<prefix>`) as well as the bare prefix.
    if text.startswith(f"{KEY_MARK}_"):
        return text.split("_")[1]
    return text


# The audit trail's name for a revocation, whether from the CLI or through GraphQL.
KEYS_REVOKE = "keys.revoke"


@dataclass(frozen=True)
class Revocation:
    key: KeyInfo  # as it is after the revocation
    changed: bool  # False: it was revoked already, and nothing changed


@dataclass(frozen=True)
class KeyRevoked:
    """Published after a revocation commits, to the key's holder (see revocation_notice)."""

    key_id: int
    prefix: str


KEY_REVOKED = Topic("api-key-revoked", KeyRevoked)


def revocation_notice(key: KeyInfo) -> tuple[Topic[KeyRevoked], str, KeyRevoked]:
    """The event a revocation raises: its topic, its audience (the holder) and the event."""
    return KEY_REVOKED, str(key.principal_id), KeyRevoked(key_id=key.id, prefix=key.prefix)


def holder_audience(principal: Principal) -> str:
    """The audience of a principal's key events: its id, which is its record's for a key
    holder (a JWT client's `jwt:<sub>` holds no keys and hears none)."""
    return principal.id


async def revoke(
    session: AsyncSession,
    prefix_or_id: str | int,
    *,
    visible: ColumnElement[bool] | None = None,
    by_id: bool = True,
    now: dt.datetime | None = None,
) -> Revocation:
    """Revokes a key, named by its prefix (or `gw_<prefix>…`) or, when `by_id`, its id, in
    the session's transaction. `visible` narrows the keys that can be named (a row rule); any
    other reads as absent: NotFound. Revoking a revoked key changes nothing (`changed` is
    False)."""
    moment = _utcnow(now)
    found = _with_principal()
    if visible is not None:
        found = found.where(visible)
    row: Row[ApiKey, PrincipalRecord] | None = None
    if isinstance(prefix_or_id, str):
        prefix = _prefix_of(prefix_or_id.strip().lower())
        if _PREFIX.fullmatch(prefix):
            row = (await session.execute(found.where(ApiKey.prefix == prefix))).first()
    key_id = str(prefix_or_id).strip()
    # Ids fit a 32-bit column: a larger number is no id, rather than a database error.
    if row is None and by_id and key_id.isascii() and key_id.isdigit() and int(key_id) < 2**31:
        row = (await session.execute(found.where(ApiKey.id == int(key_id)))).first()
    if row is None:
        # The argument is not repeated: it may be a whole key pasted by mistake.
        raise NotFound("No API key has that prefix or id.")
    key, principal = row
    # Conditional, so that of two concurrent revocations exactly one changes the key.
    result = await session.execute(
        update(ApiKey)
        .where(ApiKey.id == key.id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=moment)
        .execution_options(synchronize_session=False)
    )
    changed = result.rowcount == 1  # type: ignore[attr-defined]
    await session.refresh(key)
    return Revocation(_info(key, principal, moment), changed)


def parse_prefix(text: str) -> str:
    """A key's prefix (12 hex digits), given bare or as the key's start `gw_<prefix>`."""
    prefix = _prefix_of(text.strip().lower())
    if not _PREFIX.fullmatch(prefix):
        raise BadUserInput(
            f"A key's prefix is the {PREFIX_BYTES * 2} hex digits after {KEY_MARK}_.",
            field="prefix",
        )
    return prefix


async def revoke_own_key(
    session: AsyncSession, principal: Principal, prefix: str, *, now: dt.datetime | None = None
) -> KeyInfo:
    """A principal revokes one of its own keys (a compromised one): another's reads as
    absent (NotFound, as the ApiKey row rule decides), a revoked one is a Conflict."""
    revocation = await revoke(
        session,
        parse_prefix(prefix),
        visible=rows.RULES.condition(ApiKey, principal),
        by_id=False,
        now=now,
    )
    if not revocation.changed:
        raise Conflict("This key is revoked already.")
    return revocation.key


async def revoke_key(
    databases: Databases, prefix_or_id: str | int, *, now: dt.datetime | None = None
) -> KeyInfo:
    """Revokes any key, named by its prefix or id (the CLI); revoking it again changes nothing."""
    async with databases.session("gateway") as session, session.begin():
        revocation = await revoke(session, prefix_or_id, now=now)
    return revocation.key


async def visible_key(session: AsyncSession, principal: Principal, key_id: int) -> KeyInfo | None:
    """A key as it is now, if the ApiKey row rule lets `principal` see it."""
    query = _with_principal().where(ApiKey.id == key_id, rows.RULES.condition(ApiKey, principal))
    row = (await session.execute(query)).first()
    return None if row is None else _info(row[0], row[1], _utcnow())


async def check_key(
    databases: Databases, token: str, *, now: dt.datetime | None = None
) -> VerifiedKey | None:
    """The principal behind an active key and when the key expires; None for any other token."""
    parts = _split(token)
    if parts is None:
        return None
    prefix, secret = parts
    query = (
        select(
            ApiKey.secret_hash,
            ApiKey.expires_at,
            ApiKey.revoked_at,
            PrincipalRecord.id,
            PrincipalRecord.kind,
            PrincipalRecord.name,
            PrincipalRecord.department,
            PrincipalRecord.organisation,
        )
        .join(PrincipalRecord, PrincipalRecord.id == ApiKey.principal_id)
        .where(ApiKey.prefix == prefix)
    )
    async with databases.session("gateway") as session:
        row = (await session.execute(query)).first()
    if row is None:
        return None
    (
        secret_hash,
        expires_at,
        revoked_at,
        principal_id,
        kind_value,
        name,
        department,
        organisation,
    ) = row
    if not hmac.compare_digest(secret_hash, _digest(secret)):
        return None
    if _state(expires_at, revoked_at, _utcnow(now)) != "active":
        return None
    try:
        kind = PrincipalKind(kind_value)
    except ValueError:
        return None
    if kind is PrincipalKind.PUBLIC:
        return None
    principal = Principal(
        kind=kind,
        id=str(principal_id),
        name=name,
        department=department,
        scopes=scopes_for(kind, department),
        organisation=organisation,
    )
    return VerifiedKey(principal, _aware(expires_at))


async def verify_key(
    databases: Databases, token: str, *, now: dt.datetime | None = None
) -> Principal | None:
    """The principal behind an active key; None if unknown, wrong, revoked or expired."""
    verified = await check_key(databases, token, now=now)
    return None if verified is None else verified.principal


# Development mode's principals, one of each kind (and one per department): kind, name,
# department, organisation (the demo bank is Bank Melli, bank code 017).
_DEPARTMENT_NAMES = {
    "planning": "معاونت شهرسازی و معماری",
    "revenue": "اداره درآمد",
    "contact137": "سامانه ۱۳۷",
    "inspection": "اداره بازرسی",
    "urban_services": "معاونت خدمات شهری",
    "transport": "معاونت حمل و نقل و ترافیک",
}
DEMO_PRINCIPALS: tuple[tuple[PrincipalKind, str, str | None, str | None], ...] = (
    (PrincipalKind.NOTARY, "دفتر اسناد رسمی ۱۲ ارومیه", None, None),
    (PrincipalKind.BANK, "بانک ملی شعبه مرکزی", None, "017"),
    (PrincipalKind.COUNTER, "دفتر پیشخوان دولت ۱۰۴ ارومیه", None, None),
    *(
        (PrincipalKind.DEPARTMENT, _DEPARTMENT_NAMES.get(department, department), department, None)
        for department in DEPARTMENTS
    ),
    (PrincipalKind.OPERATOR, "اپراتور درگاه", None, None),
)


async def ensure_demo_principals(databases: Databases) -> dict[str, str]:
    """Development only: the demo principals, each with one fresh key; label → key.

    Secrets cannot be recovered, so every call revokes all keys the demo principals hold
    and issues new ones. Labels are the kinds as the CLI writes them (`department:planning`).
    """
    issued: dict[str, str] = {}
    for kind, name, department, organisation in DEMO_PRINCIPALS:
        record = await _principal_record(databases, kind, name, department, organisation)
        async with databases.session("gateway") as session, session.begin():
            await session.execute(
                update(ApiKey)
                .where(ApiKey.principal_id == record.id, ApiKey.revoked_at.is_(None))
                .values(revoked_at=_utcnow())
            )
        _, key = await create_key(
            databases, kind, name, department, DEMO_LIFETIME, organisation=organisation
        )
        issued[kind_label(kind, department)] = key
    return issued
