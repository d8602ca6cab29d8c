"""The mutation pattern, through revokeApiKey on every backend: a principal revokes its own
key in one transaction, audited and announced after the commit; another's key reads as absent
(NOT_FOUND), a revoked one is a CONFLICT, a malformed prefix BAD_USER_INPUT naming the field;
mutations count against the rate limit, need registered documents from partners in
production, and are refused over GET."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from types import MethodType, SimpleNamespace
from typing import Any

import httpx
import pytest

from db.engines import Databases
from gateway.access import keys as api_keys
from gateway.access.audit import AuditTrail, open_audit_trail
from gateway.access.principals import Principal, PrincipalKind, scopes_for
from gateway.context import Context
from gateway.edge.app import create_app
from gateway.errors import ERROR_CODES
from gateway.events import Events, listening
from gateway.guards.documents import register_operation
from gateway.schema import build_schema
from gateway.schema.mutation import change
from tests.conftest import Backend, GraphQLClient, mint_key, settings_for

REVOKE = """
mutation Revoke($prefix: String!) {
  revokeApiKey(prefix: $prefix) { id prefix state revokedAt holderName }
}
"""
FIXED_NOW = dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC)


def _name(label: str) -> str:
    # The backend's databases are shared by the session: every test names its own principals.
    return f"{label} {uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
async def databases(backend: Backend) -> AsyncIterator[Databases]:
    databases = Databases({"gateway": backend.urls["gateway"]})
    yield databases
    await databases.dispose()


@pytest.fixture(scope="module")
async def http(backend: Backend) -> AsyncIterator[httpx.AsyncClient]:
    """The app with no cache of verified keys, so that a revocation takes effect at once."""
    app = create_app(settings_for(backend, auth_cache_s=0))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        yield client


async def _notary(databases: Databases, keys: int = 2) -> list[tuple[api_keys.KeyInfo, str]]:
    """`keys` keys of one new notary office."""
    name = _name("Notary office")
    return [await mint_key(databases, PrincipalKind.NOTARY, name) for _ in range(keys)]


async def _audited(databases: Databases, key_id: int) -> list[Any]:
    records, _ = await AuditTrail(databases).query(
        subject_type="ApiKey", subject_id=str(key_id), first=100
    )
    return [r for r in records if r.operation == api_keys.KEYS_REVOKE]


async def _revoke(http: httpx.AsyncClient, key: str | None, prefix: str) -> dict[str, Any]:
    body: dict[str, Any] = await GraphQLClient(http, key)(REVOKE, {"prefix": prefix})
    return body


async def test_a_principal_revokes_its_own_key_in_one_audited_change(
    http: httpx.AsyncClient, databases: Databases
) -> None:
    (holder, key), (spare, spare_key) = await _notary(databases)
    viewer = GraphQLClient(http, spare_key)
    assert (await viewer("{ viewer { name } }"))["data"]["viewer"]["name"] == holder.principal_name

    response = await GraphQLClient(http, key).post(
        REVOKE,
        {"prefix": f"gw_{spare.prefix}"},  # the key's visible start works as well
        headers={"X-Road-Issue": "incident-1403-77", "X-Request-Id": "caller-42"},
    )
    body = response.json()
    assert "errors" not in body, body
    revoked = body["data"]["revokeApiKey"]
    assert revoked["prefix"] == spare.prefix
    assert revoked["state"] == "REVOKED"
    assert revoked["holderName"] == holder.principal_name
    assert dt.datetime.fromisoformat(revoked["revokedAt"]).tzinfo is not None
    # Committed: the revoked key no longer authenticates; the other still does.
    assert (await viewer.post("{ viewer { name } }")).status_code == 401
    assert (await GraphQLClient(http, key).post("{ viewer { name } }")).status_code == 200
    # Audited once, under the caller, with the request's ids and purpose.
    (record,) = await _audited(databases, spare.id)
    assert record.action == "change"
    assert record.principal_kind == "notary"
    assert record.principal_id == str(holder.principal_id)
    assert record.purpose == "incident-1403-77"
    assert record.request_id == response.headers["x-request-id"]
    assert record.caller_request_id == "caller-42"


async def test_revoking_a_revoked_key_is_a_conflict_and_changes_nothing(
    http: httpx.AsyncClient, databases: Databases
) -> None:
    (_, key), (spare, _) = await _notary(databases)
    first = await _revoke(http, key, spare.prefix)
    assert first["data"]["revokeApiKey"]["state"] == "REVOKED"
    again = await _revoke(http, key, spare.prefix)
    assert again["data"] == {"revokeApiKey": None}
    (error,) = again["errors"]
    assert error["extensions"]["code"] == "CONFLICT"
    assert error["path"] == ["revokeApiKey"]
    assert "CONFLICT" in ERROR_CODES
    (listed,) = [k for k in await api_keys.list_keys(databases) if k.id == spare.id]
    assert listed.revoked_at is not None
    assert (
        dt.datetime.fromisoformat(first["data"]["revokeApiKey"]["revokedAt"]) == listed.revoked_at
    )
    assert len(await _audited(databases, spare.id)) == 1


async def test_another_principals_key_reads_as_absent(
    http: httpx.AsyncClient, databases: Databases
) -> None:
    ((_, key),) = await _notary(databases, keys=1)
    ((other, other_key),) = await _notary(databases, keys=1)
    theirs = await _revoke(http, key, other.prefix)
    unknown = await _revoke(http, key, "0123456789ab")
    assert theirs["data"] == unknown["data"] == {"revokeApiKey": None}
    # The same answer as for a key that does not exist: nothing says it does.
    assert theirs["errors"] == unknown["errors"]
    assert theirs["errors"][0]["extensions"] == {"code": "NOT_FOUND"}
    assert "NOT_FOUND" in ERROR_CODES
    assert (await GraphQLClient(http, other_key).post("{ viewer { name } }")).status_code == 200
    assert await _audited(databases, other.id) == []


async def test_an_operator_revokes_only_its_own_keys_through_graphql(
    http: httpx.AsyncClient, databases: Databases
) -> None:
    ((_, operator_key),) = [await mint_key(databases, PrincipalKind.OPERATOR, _name("Operator"))]
    ((partner, _),) = await _notary(databases, keys=1)
    refused = await _revoke(http, operator_key, partner.prefix)
    assert refused["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_a_malformed_prefix_is_bad_user_input_naming_the_field(
    http: httpx.AsyncClient, databases: Databases
) -> None:
    ((_, key),) = await _notary(databases, keys=1)
    for given in ("xyz", "0123456789abcdefg", "۰۱۲۳۴۵۶۷۸۹ab", "", "gw_"):
        body = await _revoke(http, key, given)
        assert body["data"] == {"revokeApiKey": None}, given
        (error,) = body["errors"]
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "prefix"}, given
        if len(given) > 3:
            assert given not in error["message"]
    # A variable of the wrong type is refused before anything runs, naming it.
    body = await GraphQLClient(http, key)(REVOKE, {"prefix": 12})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert body["errors"][0]["extensions"]["field"] == "prefix"


async def test_the_public_may_not_revoke_anything(
    http: httpx.AsyncClient, databases: Databases
) -> None:
    ((info, key),) = await _notary(databases, keys=1)
    body = await _revoke(http, None, info.prefix)
    assert body["data"] == {"revokeApiKey": None}
    assert body["errors"][0]["extensions"] == {"code": "FORBIDDEN", "scope": "keys:read"}
    assert (await GraphQLClient(http, key).post("{ viewer { name } }")).status_code == 200


async def test_a_key_may_revoke_itself(http: httpx.AsyncClient, databases: Databases) -> None:
    ((info, key),) = await _notary(databases, keys=1)
    body = await _revoke(http, key, info.prefix)
    assert body["data"]["revokeApiKey"]["state"] == "REVOKED"
    assert (await GraphQLClient(http, key).post("{ viewer { name } }")).status_code == 401


async def test_mutations_over_get_are_refused_with_a_documented_code(
    http: httpx.AsyncClient, databases: Databases
) -> None:
    (_, key), (spare, spare_key) = await _notary(databases)
    document = f'mutation {{ revokeApiKey(prefix: "{spare.prefix}") {{ state }} }}'
    response = await http.get(
        "/graphql", params={"query": document}, headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert error["extensions"]["code"] in ERROR_CODES
    assert (await GraphQLClient(http, spare_key).post("{ viewer { name } }")).status_code == 200


async def test_mutations_count_against_the_rate_limit(
    backend: Backend, databases: Databases
) -> None:
    ((_, key),) = await _notary(databases, keys=1)
    app = create_app(
        settings_for(backend, rate_limit_partner="3/minute"), wall_clock=lambda: FIXED_NOW
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        caller = GraphQLClient(client, key)
        statuses = [
            (await caller.post(REVOKE, {"prefix": "0123456789ab"})).status_code for _ in range(3)
        ]
        assert statuses == [200, 200, 200]
        refused = await caller.post(REVOKE, {"prefix": "0123456789ab"})
        assert refused.status_code == 429
        assert refused.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"


async def test_partners_in_production_send_only_registered_mutations(
    backend: Backend, databases: Databases
) -> None:
    (_, key), (spare, _) = await _notary(databases)
    settings = settings_for(backend, env="production", registered_operations_refresh_s=0)
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        caller = GraphQLClient(client, key)
        refused = await caller(REVOKE, {"prefix": spare.prefix})
        assert refused["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
        listed = {k.id: k for k in await api_keys.list_keys(databases)}
        assert listed[spare.id].state == "active"
        await register_operation(databases, build_schema(settings)._schema, REVOKE)
        ran = await caller(REVOKE, {"prefix": spare.prefix})
        assert ran["data"]["revokeApiKey"]["state"] == "REVOKED"


async def test_a_failing_mutation_rolls_back_and_records_nothing(
    backend: Backend, databases: Databases
) -> None:
    """The pattern itself: an error inside the unit of work undoes its writes; nothing is
    audited or announced."""
    ((holder, _), (spare, _)) = await _notary(databases)
    principal = Principal(
        kind=PrincipalKind.NOTARY,
        id=str(holder.principal_id),
        name=holder.principal_name,
        scopes=scopes_for(PrincipalKind.NOTARY),
    )
    events = Events()
    heard = events.listen(*api_keys.revocation_notice(spare)[:2])
    trail = open_audit_trail(settings_for(backend), databases)
    context = SimpleNamespace(
        databases=databases,
        audit_trail=trail,
        events=events,
        principal=principal,
        purpose=None,
        request_id=uuid.uuid4().hex,
        caller_request_id=None,
    )
    # The real way a Context writes its audit entries, on this stand-in.
    context.audit_entry = MethodType(Context.audit_entry, context)
    info: Any = SimpleNamespace(context=context)

    class Abandoned(Exception):
        pass

    async def abandoned_revocation() -> None:
        async with change(info) as unit:
            await api_keys.revoke_own_key(unit.session, principal, spare.prefix)
            unit.audit(api_keys.KEYS_REVOKE, "ApiKey", spare.id)
            unit.announce(*api_keys.revocation_notice(spare))
            raise Abandoned

    with pytest.raises(Abandoned):
        await abandoned_revocation()
    (listed,) = [k for k in await api_keys.list_keys(databases) if k.id == spare.id]
    assert listed.state == "active"
    assert await _audited(databases, spare.id) == []

    # The same unit of work, completed: committed, audited, announced.
    started = asyncio.Event()
    token = listening.set(started)
    waiting = asyncio.ensure_future(anext(heard))
    listening.reset(token)
    await started.wait()  # the listener is registered
    async with change(info) as unit:
        revoked = await api_keys.revoke_own_key(unit.session, principal, spare.prefix)
        unit.audit(api_keys.KEYS_REVOKE, "ApiKey", revoked.id)
        unit.announce(*api_keys.revocation_notice(revoked))
    assert (await waiting) == api_keys.KeyRevoked(key_id=spare.id, prefix=spare.prefix)
    assert len(await _audited(databases, spare.id)) == 1
    await heard.aclose()
    await trail.close()
