"""Log lines: every HTTP request, 401s, 429s and refused operations included, leaves exactly
one line with its request id and trace id, read here from a real `gateway run` in JSON; and
the text format of development."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from db.engines import Databases
from gateway.access.principals import PrincipalKind
from gateway.observe.logs import configure_logging, fields
from gateway.settings import Settings
from tests.conftest import Backend, make_backend, mint_key
from tests.gateway.operations import running_gateway

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
DEEP = "query Deep { parcels(first: 1) { edges { node { owners { person { fullName } } } } } }"


@pytest.fixture(scope="module")
async def city(tmp_path_factory: pytest.TempPathFactory) -> Backend:
    backend, _ = await make_backend("sqlite", tmp_path_factory.mktemp("logs"), parcels=12)
    return backend


def _one_line(lines: list[dict[str, Any]], response: httpx.Response) -> dict[str, Any]:
    request_id = response.headers["x-request-id"]
    found = [line for line in lines if line["request_id"] == request_id]
    assert len(found) == 1, found
    line = found[0]
    assert re.fullmatch(r"[0-9a-f]{32}", line["trace_id"])
    assert line["status"] == response.status_code
    assert line["path"] == "/graphql"
    assert line["method"] == "POST"
    assert line["duration_ms"] >= 0
    return line


async def test_every_request_leaves_one_line_with_its_ids(city: Backend, tmp_path: Path) -> None:
    databases = Databases({"gateway": city.urls["gateway"]})
    try:
        info, notary = await mint_key(databases, PrincipalKind.NOTARY, "Logged notary")
    finally:
        await databases.dispose()
    env = {
        # Counted per hour, so that no pause of a loaded machine empties the window.
        # Three: the lookup, the WebSocket's opening (charged to its address) and the deep
        # query; the fourth request is throttled.
        "GATEWAY_RATE_LIMIT_PUBLIC": "3/hour",
        "GATEWAY_MAX_QUERY_DEPTH": "4",
    }
    async with (
        running_gateway(city, tmp_path / "stderr.log", env) as gateway,
        httpx.AsyncClient(base_url=gateway.url) as http,
    ):

        async def post(query: str, **headers: str) -> httpx.Response:
            return await http.post("/graphql", json={"query": query}, headers=headers)

        ok = await post(
            "query Lookup { parcels(first: 1) { totalCount } }", traceparent=TRACEPARENT
        )
        address = gateway.url.removeprefix("http://")
        async with connect(f"ws://{address}/graphql", subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
            init = {"Authorization": "Bearer gw_000000000000_nope"}
            await ws.send(json.dumps({"type": "connection_init", "payload": init}))
            with contextlib.suppress(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 60)
        refused = await post(DEEP)
        throttled = await post("{ __typename }")
        denied = await post("{ __typename }", Authorization="Bearer gw_000000000000_nope")
        partner = await post("mutation { __typename }", Authorization=f"Bearer {notary}")
        assert [r.status_code for r in (ok, refused, throttled, denied, partner)] == [
            200,
            200,
            429,
            401,
            200,
        ]
    # The process has stopped: every line it wrote is in the file.
    lines = gateway.lines()
    assert all("request_id" in line and "trace_id" in line for line in lines)
    assert all("status" in line for line in gateway.access_lines())

    line = _one_line(lines, ok)
    assert line["trace_id"] == TRACE_ID  # the caller's W3C trace context is kept
    assert (line["operation_name"], line["operation_type"], line["codes"]) == (
        "Lookup",
        "query",
        [],
    )
    assert (line["principal_kind"], line["principal_id"]) == ("public", "anonymous")

    line = _one_line(lines, refused)
    assert line["codes"] == ["QUERY_TOO_COMPLEX"]
    assert (line["operation_name"], line["operation_type"]) == ("Deep", "query")

    line = _one_line(lines, throttled)
    assert line["codes"] == ["RATE_LIMITED"]
    assert line["operation_name"] is None  # refused before GraphQL

    line = _one_line(lines, denied)
    assert line["codes"] == ["UNAUTHENTICATED"]
    assert (line["principal_kind"], line["principal_id"]) == ("unauthenticated", None)

    line = _one_line(lines, partner)
    assert (line["principal_kind"], line["principal_id"]) == ("notary", str(info.principal_id))
    assert line["operation_type"] == "mutation"
    # A WebSocket connection leaves one line when it ends, with its close code.
    (line,) = [line for line in gateway.access_lines() if line["method"] == "WEBSOCKET"]
    assert re.fullmatch(r"[0-9a-f]{32}", line["request_id"])
    assert (line["method"], line["path"], line["status"]) == ("WEBSOCKET", "/graphql", 101)
    assert line["close_code"] == 4403
    # Never a key, nor any part of it.
    assert all(notary.split("_", 2)[2] not in str(line) for line in lines)


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restored_logging")
def test_text_lines_in_development_carry_the_same_fields() -> None:
    stream = io.StringIO()
    configure_logging("info", "text", stream)
    logging.getLogger("gateway.access").info(
        "POST /graphql 200", extra=fields(status=200, request_id="r-1", codes=[])
    )
    logging.getLogger("gateway.access").debug("not at info")
    text = stream.getvalue()
    assert "POST /graphql 200" in text
    assert "status=200" in text
    assert "request_id=r-1" in text
    assert "not at info" not in text
    assert not text.lstrip().startswith("{")


@pytest.mark.usefixtures("restored_logging")
def test_json_lines_outside_a_request_name_no_request() -> None:
    stream = io.StringIO()
    configure_logging("warning", "json", stream)
    logging.getLogger("gateway.jobs").warning("jobs: took over %d jobs", 3)
    logging.getLogger("gateway.jobs").info("quiet")
    (line,) = [written for written in stream.getvalue().splitlines() if written]
    parsed = json.loads(line)
    assert parsed["event"] == "jobs: took over 3 jobs"
    assert parsed["request_id"] is None
    assert parsed["level"] == "warning"


def test_the_format_is_json_in_production_and_text_in_development_unless_named() -> None:
    def effective(env: str, log_format: str | None = None) -> str:
        settings = Settings.model_construct(env=env, log_format=log_format)
        return settings.effective_log_format

    assert effective(env="production") == "json"
    assert effective(env="development") == "text"
    assert effective(env="development", log_format="json") == "json"
    assert effective(env="production", log_format="text") == "text"
