"""The hardened endpoint: what is refused before any resolver runs, with its documented code,
and what nothing runs for (no SQL statement, no resolver); trusted documents and persisted
queries; introspection by kind of caller; security headers and CORS."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from starlette.applications import Starlette

from db.engines import Databases
from gateway import parcels
from gateway.access.audit import AuditTrail
from gateway.access.principals import PrincipalKind
from gateway.cli.operations import operations
from gateway.edge.app import create_app
from gateway.errors import ERROR_CODES
from gateway.guards.cost import TYPICAL_SIZE
from gateway.schema.planning import Parcel
from tests.conftest import (
    Backend,
    cli_env,
    make_backend,
    mint_key,
    redis_url,
    settings_for,
    statements_sent,
)

# Generous rate limits: these tests are about what GraphQL refuses, not about the limits.
UNLIMITED = {
    "rate_limit_public": "100000/minute",
    "rate_limit_partner": "100000/minute",
    "rate_limit_internal": "100000/minute",
}
PAGE = "query Page { parcels(first: 2) { edges { node { renewalCode } } } }"
# 11 levels of data (the limit is 12), each person owning about three parcels of three owners.
NESTED = (
    "{ parcels(first: 100) { edges { node { owners { person { parcels { owners { person {"
    " parcels { owners { person { id } } } } } } } } } } } }"
)


@pytest.fixture(scope="module", params=["sqlite", "postgres", "mariadb"])
async def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Backend]:
    """A small city of its own on each database (the registered documents, the key cache
    and the statement counts differ by database); skipped where no server is configured."""
    folder = tmp_path_factory.mktemp(f"hardening-{request.param}")
    made, server = await make_backend(request.param, folder, parcels=30)
    yield made
    if server is not None:
        await server.drop_all()


@pytest.fixture(scope="module")
async def keys(backend: Backend) -> dict[str, str]:
    databases = Databases(backend.urls)
    try:
        return {
            "bank": (await mint_key(databases, PrincipalKind.BANK, "Hardening bank"))[1],
            "operator": (await mint_key(databases, PrincipalKind.OPERATOR, "Hardening ops"))[1],
            "department": (
                await mint_key(databases, PrincipalKind.DEPARTMENT, "Hardening dept", "revenue")
            )[1],
        }
    finally:
        await databases.dispose()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@contextlib.asynccontextmanager
async def serve(backend: Backend, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings_for(backend, **{**UNLIMITED, **overrides}))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        client.app = app  # type: ignore[attr-defined]
        yield client


@pytest.fixture(scope="module")
async def dev(backend: Backend, keys: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    # Token and length limits high enough for the depth, alias and cost checks to be the ones
    # that act.
    async with serve(backend, max_query_tokens=50_000, max_query_length=1_000_000) as client:
        for key in keys.values():  # authenticate once: the key cache keeps SQL out of the counts
            await client.post("/graphql", json={"query": "{ __typename }"}, headers=bearer(key))
        yield client


class Spy:
    """Counts SQL statements on every database of an app, and calls of the parcel list."""

    def __init__(self, app: Starlette, monkeypatch: pytest.MonkeyPatch) -> None:
        self.resolved = 0
        self.watching = contextlib.ExitStack()
        self.sent = [
            self.watching.enter_context(statements_sent(engine))
            for engine in app.state.databases.engines.values()
        ]
        for name in ("find_parcels", "count_parcels"):
            monkeypatch.setattr(parcels, name, self._counting(getattr(parcels, name)))

    @property
    def statements(self) -> int:
        return sum(map(len, self.sent))

    def _counting(self, function: Any) -> Any:
        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.resolved += 1
            return await function(*args, **kwargs)

        return counted

    def close(self) -> None:
        self.watching.close()

    def assert_nothing_ran(self, body: dict[str, Any] | None = None) -> None:
        assert (self.statements, self.resolved) == (0, 0)
        if body is not None and "extensions" in body:
            assert body["extensions"]["cost"]["sqlStatements"] == 0


@contextlib.contextmanager
def spying(client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> Iterator[Spy]:
    spy = Spy(client.app, monkeypatch)  # type: ignore[attr-defined]
    try:
        yield spy
    finally:
        spy.close()


async def post(
    client: httpx.AsyncClient, body: Any, key: str | None = None, status: int = 200
) -> dict[str, Any]:
    headers = {"X-Gateway-Debug": "cost", **(bearer(key) if key else {})}
    response = await client.post("/graphql", json=body, headers=headers)
    assert response.status_code == status, response.text
    answer: dict[str, Any] = response.json()
    return answer


def refusal(body: dict[str, Any], code: str) -> dict[str, Any]:
    """The single error of a request that never ran, after checking its code is documented."""
    assert body.get("data") is None, body
    (error,) = body["errors"]
    assert error["extensions"]["code"] == code, error
    assert code in ERROR_CODES
    extensions: dict[str, Any] = error["extensions"]
    return extensions


# --- limits on the operation ---------------------------------------------------------------


async def test_the_spy_sees_an_operation_that_runs(
    dev: httpx.AsyncClient, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with spying(dev, monkeypatch) as spy:
        body = await post(dev, {"query": PAGE}, keys["operator"])
    assert len(body["data"]["parcels"]["edges"]) == 2
    assert spy.resolved == 1
    assert spy.statements > 0
    assert body["extensions"]["cost"]["sqlStatements"] > 0


async def test_fifty_levels_deep_is_refused_before_anything_runs(
    dev: httpx.AsyncClient, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    inner = "fullName"
    for _ in range(16):
        inner = f"person {{ parcels {{ owners {{ {inner} }} }} }}"
    query = "{ parcels(first: 1) { edges { node { owners { " + inner + " } } } } }"
    with spying(dev, monkeypatch) as spy:
        body = await post(dev, {"query": query}, keys["operator"])
    assert refusal(body, "QUERY_TOO_COMPLEX")["limit"] == "depth"
    spy.assert_nothing_ran(body)


async def test_a_thousand_aliases_are_refused_before_anything_runs(
    dev: httpx.AsyncClient, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    query = "{ " + " ".join(f"a{i}: parcels(first: 1) {{ totalCount }}" for i in range(1000)) + " }"
    with spying(dev, monkeypatch) as spy:
        body = await post(dev, {"query": query}, keys["operator"])
    assert "data" not in body  # refused before it ran
    assert body["errors"][0]["extensions"] == {
        "code": "QUERY_TOO_COMPLEX",
        "limit": "aliases",
        "max": 30,
    }
    spy.assert_nothing_ran(body)


async def test_too_many_root_fields_are_refused(
    dev: httpx.AsyncClient, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fields = " ".join(f"p{i}: parcels(first: 1) {{ totalCount }}" for i in range(11))
    with spying(dev, monkeypatch) as spy:
        body = await post(dev, {"query": "{ " + fields + " }"}, keys["operator"])
    assert refusal(body, "QUERY_TOO_COMPLEX") == {
        "code": "QUERY_TOO_COMPLEX",
        "limit": "rootFields",
        "max": 10,
    }
    spy.assert_nothing_ran(body)
    # The same field asked for twice under one key is one field.
    same = "{ " + "parcels(first: 1) { totalCount } " * 11 + "}"
    assert "errors" not in await post(dev, {"query": same}, keys["operator"])


async def test_a_list_of_lists_is_refused_by_its_estimated_cost(
    dev: httpx.AsyncClient, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with spying(dev, monkeypatch) as spy:
        body = await post(dev, {"query": NESTED}, keys["bank"])
    extensions = refusal(body, "QUERY_TOO_COMPLEX")
    assert extensions["limit"] == "cost"
    assert extensions["budget"] == 20_000
    assert extensions["cost"] > 20_000
    spy.assert_nothing_ran(body)
    # The same shape through fragments costs the same.
    fragments = (
        "{ parcels(first: 100) { ...Page } }"
        "fragment Page on ParcelConnection { edges { node { ...P } } }"
        "fragment P on Parcel { owners { person { parcels { owners { person { ...Q } } } } } }"
        "fragment Q on Person { parcels { owners { person { id } } } }"
    )
    again = await post(dev, {"query": fragments}, keys["bank"])
    assert refusal(again, "QUERY_TOO_COMPLEX")["cost"] == extensions["cost"]


async def test_a_page_over_the_cap_is_refused_before_any_sibling_runs(
    dev: httpx.AsyncClient, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    literal = "{ a: parcels(first: 5) { totalCount } b: parcels(first: 1000) { totalCount } }"
    variable = (
        "query($n: Int!) { a: parcels(first: 5) { totalCount }"
        " b: parcels { edges { node { owners { person { parcels { id } } } } } }"
        " c: parcels(first: $n) { edges { node { id } } } }"
    )
    with spying(dev, monkeypatch) as spy:
        first = await post(dev, {"query": literal}, keys["operator"])
        second = await post(
            dev, {"query": variable, "variables": {"n": 1_000_000}}, keys["operator"]
        )
    for body in (first, second):
        assert refusal(body, "QUERY_TOO_COMPLEX") == {
            "code": "QUERY_TOO_COMPLEX",
            "field": "first",
            "max": 100,
            "limit": "pageSize",
        }
        spy.assert_nothing_ran(body)


async def test_first_from_a_variable_sets_the_estimate(
    dev: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    query = "query($n: Int = 7) { parcels(first: $n) { edges { node { owners { fullName } } } } }"
    owners = Parcel.__strawberry_definition__.get_field("owners").metadata[TYPICAL_SIZE]
    # parcels (1) + n edges × (edge 1 + node 1 + owners × 1)
    for variables, n in (({}, 7), ({"n": 3}, 3)):
        body = await post(dev, {"query": query, "variables": variables}, keys["operator"])
        assert body["extensions"]["cost"]["estimated"] == 1 + n * (2 + owners)
    # Without `first` the schema's default page (20) counts.
    body = await post(dev, {"query": "{ parcels { edges { node { id } } } }"}, keys["operator"])
    assert body["extensions"]["cost"]["estimated"] == 1 + 20 * 2


async def test_a_remembered_estimate_follows_the_variables_it_depends_on(
    dev: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    """Estimates are remembered per document and the shapes of the variables the estimate
    reads: the same document with another page size is estimated (or refused) afresh, and a
    variable the estimate does not read (a renewal code) changes nothing."""
    query = (
        "query($n: Int, $code: RenewalCode) { parcels(first: $n) { edges { node { id } } }"
        " parcel(renewalCode: $code) { id } }"
    )
    estimates = []
    for variables in (
        {"n": 3, "code": "1-1-1-1"},
        {"n": 5, "code": "1-1-1-1"},
        {"n": 3, "code": "1-1-1-2"},
        {"code": "1-1-1-1"},
        {"n": 5, "code": "1-1-1-3"},
    ):
        body = await post(dev, {"query": query, "variables": variables}, keys["operator"])
        assert "errors" not in body, body
        estimates.append(body["extensions"]["cost"]["estimated"])
    assert estimates == [8, 12, 8, 42, 12]
    over = await post(
        dev, {"query": query, "variables": {"n": 101, "code": "1-1-1-1"}}, keys["operator"]
    )
    assert refusal(over, "QUERY_TOO_COMPLEX")["limit"] == "pageSize"


async def test_budgets_follow_the_kind_of_caller(
    dev: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    # 5,601: over the public budget, within a partner's.
    query = (
        "{ parcels(first: 100) { edges { node { region { name } district { name }"
        " owners { person { parcels { owners { fullName } } } } buildings { floors }"
        " permits { number } certificates { number } violations { kind } } } } }"
    )
    public = await post(dev, {"query": query})
    assert refusal(public, "QUERY_TOO_COMPLEX")["budget"] == 5_000
    partner = await post(dev, {"query": query}, keys["bank"])
    assert "errors" not in partner, partner["errors"]
    assert partner["extensions"]["cost"]["estimated"] == 5_601


async def test_fragments_spread_exponentially_are_refused_by_their_size(
    dev: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    n = 30  # 2**30 fields once spread: refused by counting, without spreading them
    fragments = "".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(n))
    query = (
        "{ ...F0 }" + fragments + f"fragment F{n} on Query {{ parcels(first: 1) {{ totalCount }} }}"
    )
    body = await post(dev, {"query": query}, keys["operator"])
    assert refusal(body, "QUERY_TOO_COMPLEX")["limit"] == "fields"


async def test_a_long_document_is_refused_before_it_is_parsed(backend: Backend) -> None:
    # A comment is no token and a string literal one, so the token limit let near-megabyte
    # documents through, and the parser and validation caches kept every one: each distinct
    # such request, anonymous, held about 5 MB of the worker for good, up to 512 of them.
    padding = "x" * 900_000
    long_documents = [
        "{ parcels(first: 1) { totalCount } } # " + padding,
        '{ parcel(renewalCode: "' + padding + '") { id } }',
    ]
    async with serve(backend) as client:
        for document in long_documents:
            for response in (
                await client.post("/graphql", json={"query": document}),
                await client.get("/graphql", params={"query": document[:60_000]}),
            ):
                assert response.status_code == 200
                extensions = refusal(response.json(), "QUERY_TOO_COMPLEX")
                assert extensions["limit"] == "length"
                assert extensions["max"] == 20_000
                assert padding[:100] not in response.text
        # A document within the limit, comment and all, runs as before.
        short = "{ parcels(first: 1) { totalCount } } # " + "x" * 19_000
        response = await client.post("/graphql", json={"query": short})
        assert response.json() == {"data": {"parcels": {"totalCount": 30}}}


async def test_ten_megabytes_are_refused_unread(
    dev: httpx.AsyncClient, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    body = b'{"query": "{ parcels(first: 1) { totalCount } }", "x": "' + b"x" * 10_000_000 + b'"}'

    async def streamed() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for start in range(0, len(body), 1_000_000):
            yield body[start : start + 1_000_000]

    headers = {"Content-Type": "application/json", **bearer(keys["operator"])}
    with spying(dev, monkeypatch) as spy:
        for content in (body, streamed()):
            response = await dev.post("/graphql", content=content, headers=headers)
            assert response.status_code == 413
            assert refusal(response.json(), "QUERY_TOO_COMPLEX")["limit"] == "body"
    spy.assert_nothing_ran()


async def test_a_hundred_batched_operations_are_refused_before_any_runs(
    dev: httpx.AsyncClient, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with spying(dev, monkeypatch) as spy:
        response = await dev.post(
            "/graphql", json=[{"query": PAGE}] * 100, headers=bearer(keys["operator"])
        )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["x-request-id"]
    assert refusal(response.json(), "QUERY_TOO_COMPLEX") == {
        "code": "QUERY_TOO_COMPLEX",
        "limit": "batch",
        "max": 10,
    }
    spy.assert_nothing_ran()
    # Up to the limit, a batch runs, one answer per operation.
    answers = await post(dev, [{"query": PAGE}] * 10, keys["operator"])
    assert [len(a["data"]["parcels"]["edges"]) for a in answers] == [2] * 10  # type: ignore[index]


# --- trusted documents and persisted queries ----------------------------------------------


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def persisted(text: str) -> dict[str, Any]:
    return {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256(text)}}}


async def run_cli(backend: Backend, *args: str) -> str:
    env = cli_env(backend)
    # The command runs its own event loop: give it a thread.
    result = await asyncio.to_thread(CliRunner().invoke, operations, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.output


REGISTERED = "query Registered { parcels(first: 3) { totalCount edges { cursor } } }"
INTROSPECTION = "query Types { __schema { queryType { name } } }"


@pytest.fixture(scope="module")
async def prod(
    backend: Backend, keys: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    folder = tmp_path_factory.mktemp("operations")
    for name, text in (("registered", REGISTERED), ("types", INTROSPECTION)):
        (folder / f"{name}.graphql").write_text(text)
        output = await run_cli(backend, "register", str(folder / f"{name}.graphql"))
        assert output.startswith(f"registered: {sha256(text)} ")
    async with serve(backend, env="production") as client:
        for key in keys.values():  # warm the key cache and the registered documents
            await client.post("/graphql", json={"query": REGISTERED}, headers=bearer(key))
        yield client


async def test_the_operations_command_registers_once_and_lists(
    backend: Backend, tmp_path: Path
) -> None:
    path = tmp_path / "page.graphql"
    path.write_text(PAGE)
    first = await run_cli(backend, "register", str(path), "--name", "First page")
    again = await run_cli(backend, "register", str(path))
    assert first == f"registered: {sha256(PAGE)} First page\n"
    assert again == f"already registered: {sha256(PAGE)} First page\n"
    listed = await run_cli(backend, "list")
    (line,) = [line for line in listed.splitlines() if line.startswith(f"{sha256(PAGE)}  ")]
    assert line.endswith("  First page"), line
    # The registration is a change in the audit trail (once: the second was no change).
    databases = Databases({"gateway": backend.urls["gateway"]})
    try:
        records, _ = await AuditTrail(databases).query(subject_id=sha256(PAGE))
    finally:
        await databases.dispose()
    assert [(r.action, r.operation, r.subject_type) for r in records] == [
        ("change", "operations.register", "RegisteredOperation")
    ]
    invalid = tmp_path / "invalid.graphql"
    invalid.write_text("{ nope }")
    env = cli_env(backend)
    result = await asyncio.to_thread(
        CliRunner().invoke, operations, ["register", str(invalid)], env=env
    )
    assert result.exit_code != 0
    assert "does not match the schema" in result.output


async def test_a_partner_in_production_may_send_only_registered_documents(
    prod: httpx.AsyncClient, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with spying(prod, monkeypatch) as spy:
        unregistered = await post(prod, {"query": PAGE + " "}, keys["bank"])
        unknown_hash = await post(prod, persisted("{ parcels { totalCount } }"), keys["bank"])
        mismatch = await post(prod, {"query": PAGE, **persisted(REGISTERED)}, keys["bank"])
    assert refusal(unregistered, "PERSISTED_QUERY_NOT_FOUND")["sha256"] == sha256(PAGE + " ")
    assert unknown_hash["errors"][0]["message"] == "PersistedQueryNotFound"
    refusal(unknown_hash, "PERSISTED_QUERY_NOT_FOUND")
    assert refusal(mismatch, "BAD_USER_INPUT")["field"] == "sha256Hash"
    spy.assert_nothing_ran()
    by_text = await post(prod, {"query": REGISTERED}, keys["bank"])
    by_hash = await post(prod, persisted(REGISTERED), keys["bank"])
    assert by_text == by_hash
    assert by_text["data"]["parcels"]["totalCount"] == 30
    # Internal callers and the public are not held to the registered documents.
    for key in (keys["operator"], None):
        assert "errors" not in await post(prod, {"query": PAGE}, key)


async def test_automatic_persisted_queries_round_trip_for_internal_callers(
    prod: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    text = "query Apq { parcels(first: 4) { edges { node { renewalCode } } } }"
    for key in (keys["bank"], None):  # others cannot store a document by hash
        await post(prod, {"query": text, **persisted(text)}, key)
    missing = await post(prod, persisted(text), keys["department"])
    assert missing["errors"][0]["message"] == "PersistedQueryNotFound"
    refusal(missing, "PERSISTED_QUERY_NOT_FOUND")
    stored = await post(prod, {"query": text, **persisted(text)}, keys["department"])
    assert len(stored["data"]["parcels"]["edges"]) == 4
    by_hash = await post(prod, persisted(text), keys["operator"])
    assert by_hash["data"] == stored["data"]  # (the cost each reports differs)
    for key in (keys["bank"], None):
        refusal(await post(prod, persisted(text), key), "PERSISTED_QUERY_NOT_FOUND")
    version_two = {"extensions": {"persistedQuery": {"version": 2, "sha256Hash": sha256(text)}}}
    assert refusal(await post(prod, version_two, keys["operator"]), "BAD_USER_INPUT")


async def test_persisted_queries_are_shared_through_redis(
    backend: Backend, keys: dict[str, str]
) -> None:
    url = redis_url()
    if url is None:
        pytest.skip("no Redis on 127.0.0.1:6379")
    text = f"query Shared{uuid.uuid4().hex[:8]} {{ parcels(first: 1) {{ totalCount }} }}"
    shared = {"redis_url": url, "redis_key_prefix": f"gwtest:{uuid.uuid4().hex}:", "apq_ttl_s": 60}
    async with serve(backend, **shared) as one, serve(backend, **shared) as two:
        await post(one, {"query": text, **persisted(text)}, keys["operator"])
        body = await post(two, persisted(text), keys["operator"])
    assert body["data"]["parcels"]["totalCount"] == 30


# --- introspection and suggestions --------------------------------------------------------


async def test_introspection_is_for_internal_callers_in_production(
    prod: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    operator = await post(prod, {"query": INTROSPECTION}, keys["operator"])
    assert operator["data"]["__schema"]["queryType"]["name"] == "Query"
    by_type = '{ __type(name: "Parcel") { name } }'
    for body in (
        await post(prod, {"query": INTROSPECTION}, keys["bank"]),  # registered, still refused
        await post(prod, {"query": INTROSPECTION}),
        await post(prod, {"query": by_type}),
    ):
        assert "data" not in body  # refused before it ran
        for error in body["errors"]:  # one for __schema, and one for each field inside it
            assert error["extensions"] == {
                "code": "GRAPHQL_VALIDATION_FAILED",
                "reason": "introspection",
            }
    assert (await post(prod, {"query": "{ __typename }"}))["data"] == {"__typename": "Query"}


async def test_introspection_is_open_in_development(dev: httpx.AsyncClient) -> None:
    body = await post(dev, {"query": INTROSPECTION})
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"


async def test_suggestions_are_only_for_internal_callers_in_production(
    prod: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    typo = "{ parcels(firts: 1) { totalCount } }"
    enum = "query($u: LandUse) { parcels(filter: {landUse: $u}) { totalCount } }"
    requests = [{"query": typo}, {"query": enum, "variables": {"u": "COMERCIAL"}}]
    for request in requests:
        public = await post(prod, request)
        internal = await post(prod, request, keys["operator"])
        assert "Did you mean" in internal["errors"][0]["message"]
        assert "Did you mean" not in public["errors"][0]["message"]
        assert public["errors"][0]["message"]
    # The validation cache is shared: asking again keeps the suggestions for internal callers.
    assert (
        "Did you mean" in (await post(prod, requests[0], keys["operator"]))["errors"][0]["message"]
    )


# --- headers ----------------------------------------------------------------------------------


async def test_security_headers_on_every_response(
    dev: httpx.AsyncClient, prod: httpx.AsyncClient
) -> None:
    for client in (dev, prod):
        for response in (
            await client.get("/healthz"),
            await client.post("/graphql", json={"query": "{ __typename }"}),
            await client.post("/graphql", content=b"[" * 10),
        ):
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["referrer-policy"] == "no-referrer"
            assert response.headers["x-frame-options"] == "DENY"
            assert "default-src 'none'" in response.headers["content-security-policy"]
        graphql = await client.post("/graphql", json={"query": "{ __typename }"})
        assert graphql.headers["cache-control"] == "no-store"
    assert "strict-transport-security" in (await prod.get("/healthz")).headers
    # GraphiQL, in development only, loads its files from the gateway alone (test_graphiql.py).
    page = await dev.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "script-src 'self';" in page.headers["content-security-policy"]
    assert (await prod.get("/graphql", headers={"Accept": "text/html"})).status_code == 404


async def test_cors_only_for_configured_origins(backend: Backend) -> None:
    allowed = "https://portal.urmia.ir"
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization",
    }
    async with serve(backend, cors_allowed_origins=[allowed]) as client:
        ok = await client.options("/graphql", headers={"Origin": allowed, **preflight})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == allowed
        other = await client.options(
            "/graphql", headers={"Origin": "https://evil.example", **preflight}
        )
        assert other.status_code == 400
        assert "access-control-allow-origin" not in other.headers
        simple = await client.post(
            "/graphql", json={"query": "{ __typename }"}, headers={"Origin": allowed}
        )
        assert simple.headers["access-control-allow-origin"] == allowed
    async with serve(backend) as client:  # none by default
        response = await client.post(
            "/graphql", json={"query": "{ __typename }"}, headers={"Origin": allowed}
        )
        assert "access-control-allow-origin" not in response.headers
