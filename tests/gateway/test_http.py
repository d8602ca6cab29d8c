"""GraphQL over HTTP as the spec says, hardening limits, and the documented error codes."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from gateway.edge.app import create_app
from gateway.errors import ERROR_CODES
from tests.conftest import Backend, settings_for

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
    assert "data" not in body or body["data"] is None


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
    app: Starlette = create_app(settings_for(backend))
    (tmp_path / "missing" / "dir").rmdir()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["planning"]
