"""API keys on every backend: issue, list, revoke, expire, verify; no secret at rest; a bank's
bank code; the `keys` command's organisation option."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import re
import secrets
import uuid
from collections.abc import AsyncIterator

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text

from db.engines import Databases
from gateway.access.keys import (
    DEMO_PRINCIPALS,
    KeyInfo,
    kind_label,
    list_keys,
    parse_kind,
    revoke_key,
    verify_key,
)
from gateway.access.principals import DEPARTMENTS, PrincipalKind, Scope, scopes_for
from gateway.cli.keys import keys as keys_command
from gateway.errors import BadUserInput, NotFound
from tests.conftest import Backend, cli_env, mint_demo_keys, mint_key, register_key

KEY = re.compile(r"^gw_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


@pytest.fixture(scope="module")
async def databases(backend: Backend) -> AsyncIterator[Databases]:
    databases = Databases({"gateway": backend.urls["gateway"]})
    yield databases
    await databases.dispose()


def _name(label: str) -> str:
    # The backend's databases are shared by the session: every test names its own principals.
    return f"{label} {uuid.uuid4().hex[:8]}"


def _secret_of(key: str) -> str:
    match = KEY.match(key)
    assert match, key
    return match.group(2)


async def test_a_key_is_issued_listed_expires_and_is_revoked(databases: Databases) -> None:
    name = _name("دفتر اسناد رسمی ۱۲ ارومیه")
    info, key = await mint_key(databases, PrincipalKind.NOTARY, name)
    match = KEY.match(key)
    assert match
    assert match.group(1) == info.prefix
    assert info.state == "active"
    assert info.principal_kind is PrincipalKind.NOTARY
    assert info.principal_name == name
    assert info.kind_label == "notary"
    assert info.expires_at == info.created_at + dt.timedelta(days=365)

    principal = await verify_key(databases, key)
    assert principal is not None
    assert principal.kind is PrincipalKind.NOTARY
    assert principal.id == str(info.principal_id)
    assert principal.name == name
    assert principal.scopes == scopes_for(PrincipalKind.NOTARY)

    # The same principal may hold several keys; the list reads back what creation said.
    other, other_key = await mint_key(databases, PrincipalKind.NOTARY, name)
    assert other.principal_id == info.principal_id
    assert other.prefix != info.prefix
    assert await list_keys(databases, info.principal_id) == [info, other]

    # A year and a day later both have expired.
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=366)
    assert {k.state for k in await list_keys(databases, info.principal_id, now=later)} == {
        "expired"
    }
    assert await verify_key(databases, key, now=later) is None

    revoked = await revoke_key(databases, info.prefix)
    assert revoked.state == "revoked"
    assert revoked.revoked_at is not None
    assert await verify_key(databases, key) is None
    assert await verify_key(databases, other_key) is not None
    # Revoking again changes nothing; a key may also be named by its id.
    assert await revoke_key(databases, info.prefix) == revoked
    await revoke_key(databases, other.id)
    assert [k.state for k in await list_keys(databases, info.principal_id)] == [
        "revoked",
        "revoked",
    ]


async def test_the_database_holds_no_key_and_no_secret(databases: Databases) -> None:
    info, key = await mint_key(databases, PrincipalKind.BANK, _name("بانک ملی"))
    secret = _secret_of(key)
    async with databases.gateway.connect() as connection:
        keys = (await connection.execute(text("SELECT * FROM api_keys"))).all()
        principals = (await connection.execute(text("SELECT * FROM principals"))).all()
        stored_hash = (
            await connection.execute(
                text("SELECT secret_hash FROM api_keys WHERE prefix = :p"), {"p": info.prefix}
            )
        ).scalar_one()
    everything = repr(keys) + repr(principals)
    assert info.prefix in everything
    assert key not in everything
    assert secret not in everything
    assert stored_hash == hashlib.sha256(secret.encode()).hexdigest()
    # What the listing exposes has no room for either.
    fields = {f.name for f in dataclasses.fields(KeyInfo)}
    assert not fields & {"secret", "secret_hash", "key", "hash"}
    assert secret not in repr(await list_keys(databases, info.principal_id))


async def test_verify_refuses_wrong_unknown_and_malformed_keys(databases: Databases) -> None:
    info, key = await mint_key(databases, PrincipalKind.COUNTER, _name("پیشخوان"))
    wrong_secret = f"gw_{info.prefix}_{secrets.token_urlsafe(32)}"
    unknown_prefix = f"gw_{'0' * 12}_{_secret_of(key)}"
    refused = [wrong_secret, unknown_prefix, key[:-1], key + "A", "GW" + key[2:], "", "gw_"]
    refused.append(f"Bearer {key}")
    if info.prefix != info.prefix.upper():  # prefixes are lowercase; MariaDB compares without case
        refused.append(f"gw_{info.prefix.upper()}_{_secret_of(key)}")
    for token in refused:
        assert await verify_key(databases, token) is None, token
    assert await verify_key(databases, key) is not None


async def test_an_already_expired_key_never_verifies(databases: Databases) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=10)
    info, key = await mint_key(
        databases,
        PrincipalKind.OPERATOR,
        _name("operator"),
        expires_in=dt.timedelta(days=1),
        now=past,
    )
    assert (await list_keys(databases, info.principal_id))[0].state == "expired"
    assert await verify_key(databases, key) is None


async def test_a_key_without_expiry_stays_valid(databases: Databases) -> None:
    info, key = await mint_key(databases, PrincipalKind.BANK, _name("bank"), expires_in=None)
    assert info.expires_at is None
    far = dt.datetime.now(dt.UTC) + dt.timedelta(days=3650)
    assert await verify_key(databases, key, now=far) is not None


async def test_department_keys_carry_the_department_and_its_scopes(databases: Databases) -> None:
    info, key = await mint_key(
        databases, PrincipalKind.DEPARTMENT, _name("اداره بازرسی"), "inspection"
    )
    assert info.kind_label == "department:inspection"
    principal = await verify_key(databases, key)
    assert principal is not None
    assert principal.department == "inspection"
    assert principal.has(Scope.AUDIT_READ)
    assert principal.label == f"department:inspection:{info.principal_id}"


async def test_bad_principals_and_lifetimes_are_refused(databases: Databases) -> None:
    name = _name("x")
    cases: list[tuple[PrincipalKind, str, str | None, dt.timedelta | None, str]] = [
        (PrincipalKind.PUBLIC, name, None, None, "kind"),
        (PrincipalKind.DEPARTMENT, name, None, None, "department"),
        (PrincipalKind.DEPARTMENT, name, "nowhere", None, "department"),
        (PrincipalKind.NOTARY, name, "planning", None, "department"),
        (PrincipalKind.NOTARY, "   ", None, None, "name"),
        (PrincipalKind.NOTARY, "x" * 201, None, None, "name"),
        (PrincipalKind.NOTARY, name, None, dt.timedelta(seconds=-1), "expires_in"),
    ]
    for kind, principal_name, department, expires_in, field in cases:
        with pytest.raises(BadUserInput) as raised:
            await mint_key(databases, kind, principal_name, department, expires_in)
        assert raised.value.extensions["field"] == field
    # One (kind, name) is one principal: it cannot change department.
    await mint_key(databases, PrincipalKind.DEPARTMENT, name, "planning")
    with pytest.raises(BadUserInput):
        await mint_key(databases, PrincipalKind.DEPARTMENT, name, "revenue")


async def test_concurrent_issuers_share_one_new_principal(databases: Databases) -> None:
    name = _name("counter")
    issued = await asyncio.gather(
        *(mint_key(databases, PrincipalKind.COUNTER, name) for _ in range(5))
    )
    assert len({info.principal_id for info, _ in issued}) == 1
    assert len({info.prefix for info, _ in issued}) == 5


async def test_revoking_an_unknown_key_says_so_without_repeating_it(
    databases: Databases,
) -> None:
    pasted = f"gw_{'f' * 12}_{secrets.token_urlsafe(32)}"
    for given in ("abcdefabcdef", pasted, "999999999", 999999999):
        with pytest.raises(NotFound) as raised:
            await revoke_key(databases, given)
        assert str(given) not in str(raised.value)


async def test_revoking_accepts_the_visible_start_of_a_key(databases: Databases) -> None:
    info, key = await mint_key(databases, PrincipalKind.NOTARY, _name("notary"))
    assert (await revoke_key(databases, f"gw_{info.prefix}")).state == "revoked"
    assert await verify_key(databases, key) is None


async def test_demo_principals_get_fresh_keys_on_every_run(databases: Databases) -> None:
    first = await mint_demo_keys(databases)
    assert set(first) == {
        "notary",
        "bank",
        "counter",
        "operator",
        *(f"department:{d}" for d in DEPARTMENTS),
    }
    principals = {}
    for label, key in first.items():
        principal = await verify_key(databases, key)
        assert principal is not None, label
        assert kind_label(principal.kind, principal.department) == label
        principals[label] = principal
    names = {kind_label(kind, department): name for kind, name, department, _ in DEMO_PRINCIPALS}
    assert principals["notary"].name == names["notary"] == "دفتر اسناد رسمی ۱۲ ارومیه"
    assert principals["bank"].name == "بانک ملی شعبه مرکزی"
    # Bank Melli verifies the payments whose references start with its code.
    assert principals["bank"].organisation == "017"
    assert {p.organisation for label, p in principals.items() if label != "bank"} == {None}

    second = await mint_demo_keys(databases)
    for label in first:
        assert await verify_key(databases, first[label]) is None, label
        again = await verify_key(databases, second[label])
        assert again is not None
        assert again.id == principals[label].id  # the same principal, a new key


def test_kind_strings_parse_and_print_back() -> None:
    for text_kind in ("notary", "bank", "counter", "operator", "department:planning"):
        assert kind_label(*parse_kind(text_kind)) == text_kind
    assert parse_kind("department:inspection") == (PrincipalKind.DEPARTMENT, "inspection")
    for bad in ("public", "department", "department:nowhere", "notary:x", "", "Notary"):
        with pytest.raises(BadUserInput):
            parse_kind(bad)


# --- A bank's organisation: its bank code ------------------------------------------------


async def _organisation_of(databases: Databases, key: str) -> str | None:
    principal = await verify_key(databases, key)
    assert principal is not None
    return principal.organisation


async def test_a_bank_key_carries_its_bank_code(databases: Databases) -> None:
    info, key = await mint_key(databases, PrincipalKind.BANK, _name("بانک ملت"), organisation="۰۱۲")
    assert info.organisation == "012"
    principal = await verify_key(databases, key)
    assert principal is not None
    assert principal.organisation == "012"
    # Another key for the same bank keeps the code; it can be given again, not changed.
    name = info.principal_name
    _, again = await mint_key(databases, PrincipalKind.BANK, name)
    assert await _organisation_of(databases, again) == "012"
    await mint_key(databases, PrincipalKind.BANK, name, organisation="012")
    with pytest.raises(BadUserInput) as raised:
        await mint_key(databases, PrincipalKind.BANK, name, organisation="017")
    assert raised.value.extensions["field"] == "organisation"


async def test_a_bank_recorded_without_a_code_gets_one_later(databases: Databases) -> None:
    info, before = await mint_key(databases, PrincipalKind.BANK, _name("bank"))
    assert info.organisation is None
    assert await _organisation_of(databases, before) is None
    await mint_key(databases, PrincipalKind.BANK, info.principal_name, organisation="018")
    # Every key of the principal now carries it, the earlier one too.
    assert await _organisation_of(databases, before) == "018"


async def test_organisations_are_for_banks_and_are_three_digits(databases: Databases) -> None:
    cases: list[tuple[PrincipalKind, str | None, str]] = [
        (PrincipalKind.NOTARY, "017", "organisation"),
        (PrincipalKind.DEPARTMENT, "017", "organisation"),
        (PrincipalKind.BANK, "17", "organisation"),
        (PrincipalKind.BANK, "0170", "organisation"),
        (PrincipalKind.BANK, "Melli", "organisation"),
        (PrincipalKind.BANK, "０１７", "organisation"),  # fullwidth digits
    ]
    for kind, organisation, field in cases:
        department = "revenue" if kind is PrincipalKind.DEPARTMENT else None
        with pytest.raises(BadUserInput) as raised:
            await mint_key(databases, kind, _name("x"), department, organisation=organisation)
        assert raised.value.extensions["field"] == field, (kind, organisation)


async def _keys_cli(backend: Backend, *args: str) -> Result:
    env = cli_env(backend)
    result = await asyncio.to_thread(CliRunner().invoke, keys_command, list(args), env=env)
    if args[0] == "create" and result.exit_code == 0:  # the new key, alone on the last line
        register_key(result.output.strip().splitlines()[-1])
    return result


async def test_keys_command_issues_a_bank_key_with_its_bank_code(
    backend: Backend, databases: Databases
) -> None:
    created = await _keys_cli(
        backend, "create", "--kind", "bank", "--organisation", "017", "--name", _name("ملی")
    )
    assert created.exit_code == 0, created.output
    assert "bank code:    017" in created.output
    principal = await verify_key(databases, created.output.strip().splitlines()[-1])
    assert principal is not None
    assert (principal.kind, principal.organisation) == (PrincipalKind.BANK, "017")


@pytest.mark.parametrize(
    "args",
    [
        ("--kind", "bank"),  # a bank without its code could verify no payment
        ("--kind", "bank", "--organisation", "17"),
        ("--kind", "bank", "--organisation", "IR017"),
        ("--kind", "notary", "--organisation", "017"),
        ("--kind", "department:revenue", "--organisation", "017"),
    ],
)
async def test_keys_command_refuses_a_bank_without_a_code_and_a_code_for_others(
    backend: Backend, args: tuple[str, ...]
) -> None:
    result = await _keys_cli(backend, "create", *args, "--name", _name("refused"))
    assert result.exit_code == 2, result.output  # click's usage error, naming the option
    assert "--organisation" in result.output
    assert "Traceback" not in result.output
    assert "gw_" not in result.output
