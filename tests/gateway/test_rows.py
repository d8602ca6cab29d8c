"""The row-level rules' conditions, proven on a small table of their own before any workflow
relies on them: who sees which letter, by ownership, organisation, department or token."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Collection
from pathlib import Path

import pytest
from sqlalchemy import ForeignKey, Integer, MetaData, String, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from db.contact import CitizenRequestRecord
from db.gateway import ApiKey, AuditRecord, InquiryCheckRecord, InquiryRecord, WebhookDelivery
from gateway.access.principals import ANONYMOUS, Principal, PrincipalKind, Scope
from gateway.access.rows import (
    RULES,
    Predicate,
    RowRules,
    all_of,
    any_of,
    assigned_to_department,
    holding,
    nobody,
    owned_by,
    owned_by_organisation,
    sees_none,
    token_digest,
    token_holder,
)
from tests.conftest import SERVER_URLS, ServerDatabases


class Base(DeclarativeBase):
    metadata = MetaData()


class Letter(Base):
    """A record type shaped like the workflows' own: a submitter, the submitter's
    organisation, a department it is addressed to, checks by other departments, a token."""

    __tablename__ = "letters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(200))
    organisation: Mapped[str | None] = mapped_column(String(64))
    department: Mapped[str | None] = mapped_column(String(64))
    token_sha256: Mapped[str | None] = mapped_column(String(64))


class LetterCheck(Base):
    __tablename__ = "letter_checks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    letter_id: Mapped[int] = mapped_column(ForeignKey("letters.id"))
    department: Mapped[str] = mapped_column(String(64))


letters = Letter.__table__
checks = LetterCheck.__table__

ANSWER_TOKEN = "answer-token-4b1f"
LETTERS: list[tuple[object, ...]] = [
    # id, owner, organisation, addressed to, token
    (1, "12", "017", None, token_digest(ANSWER_TOKEN)),
    (2, "13", "055", "revenue", None),
    (3, "jwt:Bank-1", None, None, None),
    # Equal to letter 3's owner under MariaDB's collation (case, trailing space), not in fact.
    (4, "jwt:bank-1 ", None, None, None),
    (5, "anonymous", None, None, None),  # the public's id: still owned by no one
]
CHECKS: list[tuple[object, ...]] = [(1, 2, "planning"), (2, 3, "revenue"), (3, 3, "inspection")]


def _principal(
    kind: PrincipalKind,
    id: str,
    *,
    department: str | None = None,
    organisation: str | None = None,
    scopes: Collection[str] = (),
) -> Principal:
    return Principal(
        kind=kind,
        id=id,
        name=id,
        department=department,
        scopes=frozenset(scopes),
        organisation=organisation,
    )


NOTARY = _principal(PrincipalKind.NOTARY, "12")
BANK = _principal(PrincipalKind.BANK, "20", organisation="017")
JWT_BANK = _principal(PrincipalKind.BANK, "jwt:Bank-1")
REVENUE = _principal(PrincipalKind.DEPARTMENT, "30", department="revenue")
PLANNING = _principal(PrincipalKind.DEPARTMENT, "31", department="planning")
INSPECTION = _principal(
    PrincipalKind.DEPARTMENT, "32", department="inspection", scopes=[Scope.AUDIT_READ]
)
# A notary office that names the revenue department in its data, but is no department.
NOT_A_DEPARTMENT = _principal(PrincipalKind.NOTARY, "14", department="revenue")

# The tokens each caller presented (how they arrive is the workflows' to decide).
HELD: dict[str, tuple[str, ...]] = {"13": (ANSWER_TOKEN,), "14": ("a-token-nobody-issued",)}
HOLDER = _principal(PrincipalKind.COUNTER, "13")


def _held(principal: Principal) -> Collection[str]:
    return HELD.get(principal.id, ())


OWNER = owned_by(letters.c.owner_id)
ORGANISATION = owned_by_organisation(letters.c.organisation)
ADDRESSED = assigned_to_department(letters.c.department)
CHECKING = assigned_to_department(checks.c.department, via=checks.c.letter_id == letters.c.id)
TOKEN = token_holder(letters.c.token_sha256, held=_held)


@pytest.fixture(scope="module", params=["sqlite", "postgres", "mariadb"])
async def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[AsyncEngine]:
    server: ServerDatabases | None = None
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("rows") / "letters.sqlite3"
        url = f"sqlite+aiosqlite:///{path}"
    else:
        admin = SERVER_URLS[request.param]
        if not admin:
            pytest.skip(f"{request.param}: set GATEWAY_TEST_{request.param.upper()}_URL")
        server = ServerDatabases(admin)
        url = (await server.create(f"gwrows_{uuid.uuid4().hex[:10]}"))["gateway"]
    made = create_async_engine(url)
    async with made.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
        letter_columns = ("id", "owner_id", "organisation", "department", "token_sha256")
        await connection.execute(
            insert(Letter), [dict(zip(letter_columns, row, strict=True)) for row in LETTERS]
        )
        check_columns = ("id", "letter_id", "department")
        await connection.execute(
            insert(LetterCheck), [dict(zip(check_columns, row, strict=True)) for row in CHECKS]
        )
    yield made
    await made.dispose()
    if server is not None:
        await server.drop_all()


async def _seen(engine: AsyncEngine, predicate: Predicate, principal: Principal) -> set[int]:
    statement = select(letters.c.id).where(predicate(principal))
    async with engine.connect() as connection:
        return set((await connection.scalars(statement)).all())


@pytest.mark.parametrize(
    ("predicate", "principal", "expected"),
    [
        pytest.param(OWNER, NOTARY, {1}, id="owned_by: the caller's own"),
        pytest.param(OWNER, JWT_BANK, {3}, id="owned_by: exactly, not by collation"),
        pytest.param(OWNER, ANONYMOUS, set(), id="owned_by: the public owns nothing"),
        pytest.param(ORGANISATION, BANK, {1}, id="owned_by_organisation: the bank's own"),
        pytest.param(ORGANISATION, NOTARY, set(), id="owned_by_organisation: none without one"),
        pytest.param(ADDRESSED, REVENUE, {2}, id="assigned_to_department: on the record"),
        pytest.param(CHECKING, REVENUE, {3}, id="assigned_to_department: via its checks"),
        pytest.param(CHECKING, PLANNING, {2}, id="assigned_to_department: another department"),
        pytest.param(ADDRESSED, NOT_A_DEPARTMENT, set(), id="assigned_to_department: no dept"),
        pytest.param(TOKEN, HOLDER, {1}, id="token_holder: the token's letter"),
        pytest.param(TOKEN, NOT_A_DEPARTMENT, set(), id="token_holder: a token issued to none"),
        pytest.param(TOKEN, NOTARY, set(), id="token_holder: no token, no letter"),
        pytest.param(holding(Scope.AUDIT_READ), INSPECTION, {1, 2, 3, 4, 5}, id="holding: all"),
        pytest.param(holding(Scope.AUDIT_READ), REVENUE, set(), id="holding: none"),
        pytest.param(nobody, INSPECTION, set(), id="nobody"),
        pytest.param(any_of(OWNER, CHECKING, TOKEN), REVENUE, {3}, id="any_of: one reason"),
        pytest.param(any_of(OWNER, ADDRESSED, TOKEN), HOLDER, {1, 2}, id="any_of: two reasons"),
        pytest.param(
            any_of(OWNER, holding(Scope.AUDIT_READ)), INSPECTION, {1, 2, 3, 4, 5}, id="any_of: all"
        ),
        pytest.param(any_of(), NOTARY, set(), id="any_of: no reason"),
        pytest.param(all_of(ORGANISATION, TOKEN), BANK, set(), id="all_of: one of two"),
        pytest.param(all_of(OWNER, ORGANISATION), NOTARY, set(), id="all_of: none of two"),
        pytest.param(
            all_of(ORGANISATION, holding(Scope.AUDIT_READ)),
            _principal(PrincipalKind.BANK, "21", organisation="017", scopes=[Scope.AUDIT_READ]),
            {1},
            id="all_of: both",
        ),
    ],
)
async def test_a_predicate_admits_the_records_its_reason_names(
    engine: AsyncEngine, predicate: Predicate, principal: Principal, expected: set[int]
) -> None:
    assert await _seen(engine, predicate, principal) == expected


async def test_one_statement_reused_across_principals_binds_each_ones_values(
    engine: AsyncEngine,
) -> None:
    """The compiled form is cached by the statement's shape: the values must still be each
    principal's own, never the first one's (the exact comparison included)."""
    rule = any_of(OWNER, ORGANISATION)
    answers = [
        await _seen(engine, rule, principal)
        for principal in (JWT_BANK, NOTARY, _principal(PrincipalKind.BANK, "jwt:bank-1 "), BANK)
    ]
    assert answers == [{3}, {1}, {4}, {1}]


def test_a_condition_that_admits_nothing_is_known_before_it_runs() -> None:
    assert sees_none(OWNER(ANONYMOUS))
    assert sees_none(any_of(OWNER, TOKEN)(ANONYMOUS))
    assert not sees_none(any_of(OWNER, TOKEN)(HOLDER))


def test_rules_are_keyed_by_the_record_class() -> None:
    rules = RowRules({Letter: any_of(OWNER, CHECKING)})
    assert list(rules) == [Letter]
    assert str(rules.condition(Letter, NOTARY).compile()) == str(OWNER(NOTARY).compile())
    with pytest.raises(KeyError):
        rules.condition(LetterCheck, NOTARY)  # no rule: not silently everything
    assert set(RULES) == {
        ApiKey,
        AuditRecord,
        InquiryRecord,
        InquiryCheckRecord,
        WebhookDelivery,
        CitizenRequestRecord,
    }


def test_tokens_are_compared_by_their_digest_only() -> None:
    condition = TOKEN(HOLDER).compile(compile_kwargs={"literal_binds": True})
    assert ANSWER_TOKEN not in str(condition)
    assert token_digest(ANSWER_TOKEN) in str(condition)
