"""GraphQL over HTTP as the spec says, hardening limits, and the documented error codes."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from db.demo import KNOWN_NATIONAL_CODE
from db.engines import Databases
from db.revenue import Payment
from gateway.access.principals import PrincipalKind
from gateway.edge.app import create_app
from gateway.edge.errors import client_error
from gateway.errors import ERROR_CODES
from tests.conftest import Backend, GraphQLClient, make_backend, mint_key, settings_for

GRAPHQL_RESPONSE = "application/graphql-response+json"


@pytest.fixture(scope="module")
async def sqlite_client(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from tests.conftest import make_backend

    backend, _ = await make_backend("sqlite", tmp_path_factory.mktemp("http"), parcels=30)
    app = create_app(settings_for(backend, max_body_bytes=50_000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        client.app = app  # type: ignore[attr-defined]
        yield client


async def test_plain_json_answers_200_even_for_request_errors(sqlite_client: Any) -> None:
    response = await sqlite_client.post("/graphql", json={"query": "{ nope }"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_graphql_response_media_type_when_asked(sqlite_client: Any) -> None:
    headers = {"Accept": GRAPHQL_RESPONSE}
    ok = await sqlite_client.post(
        "/graphql", json={"query": "{ parcels(first: 1) { totalCount } }"}, headers=headers
    )
    assert ok.status_code == 200
    assert ok.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    invalid = await sqlite_client.post("/graphql", json={"query": "{ nope }"}, headers=headers)
    assert invalid.status_code == 400
    assert invalid.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    syntax = await sqlite_client.post("/graphql", json={"query": "{ parcels("}, headers=headers)
    assert syntax.status_code == 400
    assert syntax.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"


async def test_queries_over_get(sqlite_client: Any) -> None:
    response = await sqlite_client.get(
        "/graphql", params={"query": "{ parcels(first: 2) { totalCount } }"}
    )
    assert response.status_code == 200
    assert response.json()["data"]["parcels"]["totalCount"] == 30


async def test_every_request_gets_the_gateways_own_request_id(sqlite_client: Any) -> None:
    query = {"query": "{ parcels(first: 1) { totalCount } }"}
    # A caller's id is kept beside the gateway's (Context.caller_request_id), never in its
    # place: two requests naming the same id are still two requests in the logs.
    answered = [
        (await sqlite_client.post("/graphql", json=query, headers=headers)).headers["x-request-id"]
        for headers in ({"X-Request-Id": "abc-123"}, {"X-Request-Id": "abc-123"}, {})
    ]
    assert "abc-123" not in answered
    assert len(set(answered)) == 3
    assert all(re.fullmatch(r"[0-9a-f]{32}", request_id) for request_id in answered)


def _deep(levels: int) -> str:
    inner = "id"
    for _ in range(levels):
        inner = f"person {{ parcels {{ owners {{ {inner} }} }} }}"
    return "{ parcels(first: 1) { edges { node { owners { " + inner + " } } } } }"


async def test_deep_query_is_refused_before_running(sqlite_client: Any) -> None:
    body = (
        await sqlite_client.post(
            "/graphql", json={"query": _deep(17)}, headers={"X-Gateway-Debug": "cost"}
        )
    ).json()
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert body["errors"][0]["extensions"]["limit"] == "depth"
    assert "data" not in body  # it never executed


async def test_depth_counts_through_fragments(sqlite_client: Any) -> None:
    fragments = "".join(
        f"fragment F{i} on Person {{ parcels {{ owners {{ person {{ ...F{i + 1} }} }} }} }}"
        for i in range(6)
    )
    query = '{ person(nationalCode: "0084575948") { ...F0 } }' + fragments
    query += "fragment F6 on Person { id }"
    body = (await sqlite_client.post("/graphql", json={"query": query})).json()
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"


async def test_many_aliases_are_refused(sqlite_client: Any) -> None:
    query = "{ " + " ".join(f"a{i}: parcels(first: 1) {{ totalCount }}" for i in range(31)) + " }"
    body = (await sqlite_client.post("/graphql", json={"query": query})).json()
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert body["errors"][0]["extensions"]["limit"] == "aliases"


async def test_too_many_tokens_are_refused(sqlite_client: Any) -> None:
    query = "{ parcels(first: 1) { " + "n " * 2500 + "} }"  # under the length limit
    body = (await sqlite_client.post("/graphql", json={"query": query})).json()
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert body["errors"][0]["extensions"]["limit"] == "tokens"


async def test_oversized_body_is_refused(sqlite_client: Any) -> None:
    query = "{ parcels(first: 1) { totalCount } }" + " " * 60_000
    response = await sqlite_client.post("/graphql", json={"query": query})
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"


async def test_bad_enum_and_wrong_type_are_bad_user_input(sqlite_client: Any) -> None:
    literal = (
        await sqlite_client.post(
            "/graphql", json={"query": "{ parcels(filter: {landUse: CASTLE}) { totalCount } }"}
        )
    ).json()
    assert literal["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "landUse"}
    variable = (
        await sqlite_client.post(
            "/graphql",
            json={
                "query": "query($n: Int!) { parcels(first: $n) { totalCount } }",
                "variables": {"n": "many"},
            },
        )
    ).json()
    assert variable["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "n"}


async def test_unexpected_errors_are_masked_with_a_request_id(
    sqlite_client: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from gateway import parcels

    async def broken(*_args: Any, **_kwargs: Any) -> int:
        raise RuntimeError("secret detail from deep inside")

    monkeypatch.setattr(parcels, "count_parcels", broken)
    response = await sqlite_client.post(
        "/graphql", json={"query": "{ parcels(first: 1) { totalCount edges { cursor } } }"}
    )
    body = response.json()
    (error,) = body["errors"]
    assert error["message"] == "Internal error."
    assert error["extensions"]["code"] == "INTERNAL"
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]
    assert "secret detail" not in response.text
    assert error["extensions"]["requestId"] in caplog.text


async def test_every_code_a_client_sees_is_documented(sqlite_client: Any) -> None:
    queries = [
        "{ nope }",
        "{ parcels(",
        '{ person(nationalCode: "1") { id } }',
        "{ parcels(first: 1000) { totalCount } }",
    ]
    for query in queries:
        body = (await sqlite_client.post("/graphql", json={"query": query})).json()
        for error in body["errors"]:
            assert error["extensions"]["code"] in ERROR_CODES


async def test_health_and_readiness(sqlite_client: Any) -> None:
    assert (await sqlite_client.get("/healthz")).json() == {"status": "ok"}
    ready = await sqlite_client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"


async def test_readiness_fails_when_a_database_is_gone(tmp_path: Any) -> None:
    backend = Backend(
        "sqlite",
        {
            "planning": f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'dir' / 'x.sqlite3'}",
            "revenue": f"sqlite+aiosqlite:///{tmp_path / 'r.sqlite3'}",
            "gateway": f"sqlite+aiosqlite:///{tmp_path / 'g.sqlite3'}",
        },
    )
    (tmp_path / "r.sqlite3").touch()  # empty files are empty databases; a missing one is not
    (tmp_path / "g.sqlite3").touch()
    app: Starlette = create_app(settings_for(backend))
    (tmp_path / "missing" / "dir").rmdir()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.get("/readyz")
    assert response.status_code == 503
    # The empty files are reachable databases, but not at their newest migration.
    states = response.json()["databases"]
    assert states["planning"] == "unavailable"
    assert states["revenue"] == states["gateway"] == "not migrated"


# --- request errors, refusals and the one error body ---------------------------------------

REQUEST_ERRORS = {
    "GRAPHQL_PARSE_FAILED": {"query": "{ parcels("},
    "GRAPHQL_VALIDATION_FAILED": {"query": "{ nope }"},
    "BAD_USER_INPUT": {
        "query": "query($n: Int!) { parcels(first: $n) { totalCount } }",
        "variables": {"n": "many"},
    },
}


@pytest.mark.parametrize("accept", ["application/json", GRAPHQL_RESPONSE])
async def test_a_request_that_never_executed_answers_without_data(
    sqlite_client: Any, accept: str
) -> None:
    for code, request in REQUEST_ERRORS.items():
        response = await sqlite_client.post("/graphql", json=request, headers={"Accept": accept})
        assert response.status_code == (400 if accept == GRAPHQL_RESPONSE else 200)
        body = response.json()
        assert "data" not in body, (code, body)
        assert [e["extensions"]["code"] for e in body["errors"]] == [code]


async def test_an_operation_that_ran_keeps_its_data_beside_its_errors(sqlite_client: Any) -> None:
    query = (
        "query($c: NationalCode!) { parcels(first: 1) { totalCount }"
        " person(nationalCode: $c) { id } }"
    )
    request = {"query": query, "variables": {"c": KNOWN_NATIONAL_CODE}}
    body = (await sqlite_client.post("/graphql", json=request)).json()
    assert body["data"] == {"parcels": {"totalCount": 30}, "person": None}
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]


async def test_every_refusal_has_the_one_error_body(sqlite_client: Any) -> None:
    refusals = {
        "UNAUTHENTICATED": await sqlite_client.post(
            "/graphql", json={"query": "{ __typename }"}, headers={"Authorization": "Bearer x"}
        ),
        "QUERY_TOO_COMPLEX": await sqlite_client.post(
            "/graphql", json={"query": "{ __typename }" + " " * 60_000}
        ),
        "BAD_REQUEST": await sqlite_client.post("/graphql", content=b"{", headers=JSON),
        "NOT_FOUND": await sqlite_client.get("/nowhere"),
    }
    batch = [{"query": "{ __typename }"}] * 11
    refusals["QUERY_TOO_COMPLEX (batch)"] = await sqlite_client.post("/graphql", json=batch)
    for what, response in refusals.items():
        body = response.json()
        assert response.headers["content-type"] == "application/json", what
        assert list(body) == ["errors"], what
        ((error),) = body["errors"]
        assert list(error) == ["message", "extensions"], what
        assert error["extensions"]["code"] == what.split()[0], what


def test_an_error_body_cannot_carry_an_undocumented_code() -> None:
    assert client_error("Gone.", "NOT_FOUND") == {
        "message": "Gone.",
        "extensions": {"code": "NOT_FOUND"},
    }
    with pytest.raises(ValueError, match="not a documented error code"):
        client_error("Teapot.", "I_AM_A_TEAPOT")


JSON = {"Content-Type": "application/json"}


# --- DateTime values carry their zone -----------------------------------------------------


def _aware(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert moment.tzinfo is not None, text
    return moment


async def test_date_times_carry_their_time_zone(
    client: httpx.AsyncClient, keys: dict[str, str], backend: Backend
) -> None:
    operator = GraphQLClient(client, keys["operator"])
    notary = GraphQLClient(client, keys["notary_a"])
    await notary(
        "query($c: NationalCode!) { person(nationalCode: $c) { fullName } }",
        {"c": KNOWN_NATIONAL_CODE},
    )
    databases = Databases({"revenue": backend.urls["revenue"]})
    try:
        async with databases.revenue.connect() as connection:
            reference = await connection.scalar(
                Payment.__table__.select().with_only_columns(Payment.bank_reference).limit(1)
            )
    finally:
        await databases.dispose()
    body = await operator(
        """query($r: String!) {
          viewer { apiKeys { createdAt expiresAt } }
          auditTrail(first: 1, filter: {subjectType: "Person"}) { edges { node { recordedAt } } }
          verifyPayment(reference: $r) { recorded { paidAt } }
        }""",
        {"r": reference},
    )
    key = body["data"]["viewer"]["apiKeys"][0]
    # The gateway's own records are UTC; revenue's payment times are Iran's clocks.
    for utc in (
        key["createdAt"],
        key["expiresAt"],
        body["data"]["auditTrail"]["edges"][0]["node"]["recordedAt"],
    ):
        assert _aware(utc).utcoffset() == dt.timedelta(0), utc
    paid_at = _aware(body["data"]["verifyPayment"]["recorded"]["paidAt"])
    assert paid_at.utcoffset() in (
        dt.timedelta(hours=3, minutes=30),
        dt.timedelta(hours=4, minutes=30),
    )


async def test_the_injected_wall_clock_dates_records_and_expires_keys(tmp_path: Any) -> None:
    backend, _ = await make_backend("sqlite", tmp_path, parcels=2)
    databases = Databases({"gateway": backend.urls["gateway"]})
    try:
        _, key = await mint_key(databases, PrincipalKind.NOTARY, "Notary office 77")
    finally:
        await databases.dispose()
    now = [dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=200)]
    # No cache of verified keys: each request asks the clock whether the key has expired.
    app = create_app(settings_for(backend, auth_cache_s=0), wall_clock=lambda: now[0])
    person = "query($c: NationalCode!) { person(nationalCode: $c) { fullName } }"
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        notary = GraphQLClient(http, key)
        assert (await notary(person, {"c": KNOWN_NATIONAL_CODE}))["data"]["person"] is not None
        trail = await notary("{ auditTrail(first: 5) { edges { node { recordedAt } } } }")
        (edge,) = trail["data"]["auditTrail"]["edges"]
        assert _aware(edge["node"]["recordedAt"]) == now[0]
        now[0] += dt.timedelta(days=200)  # past the key's year
        refused = await notary.post(person, {"c": KNOWN_NATIONAL_CODE})
        assert refused.status_code == 401
