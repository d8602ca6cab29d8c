"""The HTTP edge (issue 7): whose address a request comes from, malformed requests answered
as documented JSON errors with every header, request ids on every response, a connection
that outlives an error, and no secret on `make run`'s command lines."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Generator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from gateway.edge import serve
from gateway.edge import view as gateway_view
from gateway.edge.app import create_app
from gateway.errors import ERROR_CODES
from gateway.settings import Settings
from tests.conftest import Backend, make_backend, settings_for

ROOT = Path(__file__).resolve().parents[2]
TYPENAME = {"query": "{ __typename }"}
GATEWAY_ID = re.compile(r"[0-9a-f]{32}")
SECURITY_HEADERS = ("x-content-type-options", "referrer-policy", "x-frame-options")


@pytest.fixture(scope="module")
async def backend(tmp_path_factory: pytest.TempPathFactory) -> Backend:
    made, _ = await make_backend("sqlite", tmp_path_factory.mktemp("edge"), parcels=0)
    return made


@contextlib.asynccontextmanager
async def gateway(
    backend: Backend, peer: str = "127.0.0.1", **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """The real app in process; `peer` is the address its connections come from."""
    app = create_app(settings_for(backend, **overrides))
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as client,
    ):
        client.app = app  # type: ignore[attr-defined]
        yield client


def assert_edge_headers(response: httpx.Response) -> None:
    """What every answer carries, refusals included: the security headers and our request id."""
    for name in SECURITY_HEADERS:
        assert name in response.headers, (name, response.status_code, response.headers)
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    assert GATEWAY_ID.fullmatch(response.headers["x-request-id"]), response.headers


def documented_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    assert_edge_headers(response)
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == code, error
    assert code in ERROR_CODES
    assert isinstance(error["message"], str)
    assert error["message"]
    extensions: dict[str, Any] = error["extensions"]
    return extensions


# --- item 4: client addresses -----------------------------------------------------------------


def rotating(count: int) -> list[dict[str, str]]:
    return [{"X-Forwarded-For": f"203.0.113.{n % 250}, 198.51.100.{n % 7}"} for n in range(count)]


async def statuses(
    client: httpx.AsyncClient, headers: list[dict[str, str]], body: Any = TYPENAME
) -> Counter[int]:
    counted: Counter[int] = Counter()
    for start in range(0, len(headers), 50):
        responses = await asyncio.gather(
            *(client.post("/graphql", json=body, headers=h) for h in headers[start : start + 50])
        )
        counted.update(response.status_code for response in responses)
    return counted


async def test_forwarded_for_from_an_untrusted_peer_is_ignored_by_the_rate_limit(
    backend: Backend,
) -> None:
    # Loopback, which uvicorn trusted by default, and no trusted proxies configured.
    async with gateway(backend, peer="127.0.0.1", rate_limit_public="60/minute") as client:
        assert await statuses(client, rotating(150)) == {200: 60, 429: 90}


async def test_forwarded_for_from_an_untrusted_peer_is_ignored_by_the_auth_throttle(
    backend: Backend,
) -> None:
    async with gateway(backend, auth_failures_per_ip="5/minute") as client:
        guesses = [{**h, "Authorization": "Bearer gw_000000000000_guess"} for h in rotating(20)]
        assert await statuses(client, guesses) == {401: 5, 429: 15}


async def test_a_trusted_proxys_forwarded_address_is_the_client(backend: Backend) -> None:
    async with gateway(
        backend, peer="10.0.0.7", rate_limit_public="5/minute", trusted_proxies=["10.0.0.0/24"]
    ) as proxy:
        # The proxy appends the address it saw to whatever the client sent: the last
        # untrusted address counts, so a client cannot pick its own by writing the header.
        spoofed = [{"X-Forwarded-For": f"198.51.100.{n}, 203.0.113.9"} for n in range(8)]
        assert await statuses(proxy, spoofed) == {200: 5, 429: 3}
        # Other clients behind the same proxy each have their own window.
        others = [{"X-Forwarded-For": f"203.0.113.{n}"} for n in range(10, 40)]
        assert await statuses(proxy, others) == {200: 30}
        # Without the header the proxy itself is the client.
        assert await statuses(proxy, [{}] * 6) == {200: 5, 429: 1}
    async with gateway(
        backend, peer="10.0.0.7", auth_failures_per_ip="3/minute", trusted_proxies=["10.0.0.7"]
    ) as proxy:
        bad = {"Authorization": "Bearer gw_000000000000_guess"}
        one = [{**bad, "X-Forwarded-For": "203.0.113.50"}] * 4
        assert await statuses(proxy, one) == {401: 3, 429: 1}
        another = [{**bad, "X-Forwarded-For": "203.0.113.51"}]
        assert await statuses(proxy, another) == {401: 1}


async def test_unhandled_errors_are_logged_with_the_forwarded_address(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    failing(monkeypatch, 1)
    async with gateway(backend, peer="10.0.0.7", trusted_proxies=["10.0.0.7"]) as proxy:
        response = await proxy.post(
            "/graphql", json=TYPENAME, headers={"X-Forwarded-For": "203.0.113.77"}
        )
    assert response.status_code == 500
    line = next(r for r in caplog.records if r.name == "gateway.edge")
    assert "203.0.113.77" in line.getMessage()
    assert response.headers["x-request-id"] in line.getMessage()


def test_trusted_proxies_must_be_addresses_or_networks(backend: Backend) -> None:
    for proxies in (["*"], ["localhost"], ["10.0.0.0/33"]):
        with pytest.raises(ValueError, match="GATEWAY_TRUSTED_PROXIES") as raised:
            create_app(settings_for(backend, trusted_proxies=proxies))
        assert proxies[0] not in str(raised.value)


def test_uvicorn_is_told_to_leave_forwarded_headers_to_the_app() -> None:
    assert serve._config(Settings()).proxy_headers is False


def test_idle_connections_outlive_the_callers_own_expiry(monkeypatch: pytest.MonkeyPatch) -> None:
    """The caller, not the gateway, closes an idle connection: with uvicorn's 5 s, the same
    as httpx's expiry, a request sent on a connection as the server closed it was lost
    (httpx.ReadError in a burst after a pause)."""
    config = serve._config(Settings())
    assert config.timeout_keep_alive == 15
    assert config.timeout_keep_alive > httpx.Limits().keepalive_expiry  # type: ignore[operator]
    monkeypatch.setenv("GATEWAY_KEEP_ALIVE_S", "75")  # behind a load balancer's 60 s
    assert serve._config(Settings()).timeout_keep_alive == 75


# --- item 5 (counting): see tests/gateway/test_ratelimit.py ------------------------------------
# --- item 7: malformed requests -------------------------------------------------------------------

DEEP = "[" * 1000 + "]" * 1000
MALFORMED_POSTS: dict[str, tuple[str | None, bytes]] = {
    "not JSON": ("application/json", b"{nope"),
    "not UTF-8": ("application/json", b'{"query": "\xff"}'),
    "a wrong content type": ("text/plain", json.dumps(TYPENAME).encode()),
    "a form": ("application/x-www-form-urlencoded", b"query=%7B__typename%7D"),
    "no content type": (None, json.dumps(TYPENAME).encode()),
    "a query that is a number": ("application/json", b'{"query": 1}'),
    "a query that is an object": ("application/json", b'{"query": {"a": 1}}'),
    "variables that are a string": (
        "application/json",
        b'{"query": "{ __typename }", "variables": "{}"}',
    ),
    "extensions that are a list": (
        "application/json",
        b'{"query": "{ __typename }", "extensions": []}',
    ),
    "an operation name that is a number": (
        "application/json",
        b'{"query": "{ __typename }", "operationName": 7}',
    ),
    "a body that is a number": ("application/json", b"1"),
    "a body that is a string": ("application/json", b'"{ __typename }"'),
    "a body that is null": ("application/json", b"null"),
    "an empty batch": ("application/json", b"[]"),
    "a batch of numbers": ("application/json", b"[1, 2]"),
    "a batch item with string variables": (
        "application/json",
        b'[{"query": "{ __typename }", "variables": "x"}]',
    ),
    "variables nested 1,000 deep": (
        "application/json",
        b'{"query": "query($v: String) { __typename }", "variables": {"v": '
        + DEEP.encode()
        + b"}}",
    ),
    "a body nested 5,000 deep": ("application/json", b"[" * 5000 + b"]" * 5000),
    "variables nested 40 deep": (
        "application/json",
        b'{"query": "{ __typename }", "variables": {"v": ' + b"[" * 40 + b"]" * 40 + b"}}",
    ),
    "a 4,400-digit number": (
        "application/json",
        b'{"query": "query($n: Int) { __typename }", "variables": {"n": ' + b"9" * 4400 + b"}}",
    ),
    "no query": ("application/json", b'{"variables": {}}'),
}


@pytest.fixture(scope="module")
async def client(backend: Backend) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway(backend, rate_limit_public="100000/minute") as made:
        yield made


@pytest.mark.parametrize("case", MALFORMED_POSTS)
async def test_a_malformed_post_is_a_documented_bad_request(
    client: httpx.AsyncClient, case: str
) -> None:
    content_type, body = MALFORMED_POSTS[case]
    headers = {"Content-Type": content_type} if content_type else {}
    response = await client.post("/graphql", content=body, headers=headers)
    documented_error(response, 400, "BAD_REQUEST")
    # The next request is answered as usual.
    assert (await client.post("/graphql", json=TYPENAME)).json() == {
        "data": {"__typename": "Query"}
    }


MALFORMED_GETS: dict[str, dict[str, str]] = {
    "variables that are not JSON": {"query": "{ __typename }", "variables": "nope"},
    "variables that are a list": {"query": "{ __typename }", "variables": "[1]"},
    "variables nested 1,000 deep": {
        "query": "query($v: String) { __typename }",
        "variables": '{"v": ' + DEEP + "}",
    },
    "extensions that are a number": {"query": "{ __typename }", "extensions": "3"},
    "no query": {"variables": "{}"},
    "a mutation": {"query": "mutation { __typename }"},
}


@pytest.mark.parametrize("case", MALFORMED_GETS)
async def test_a_malformed_get_is_a_documented_bad_request(
    client: httpx.AsyncClient, case: str
) -> None:
    # Accept names JSON: a GET without a query that accepts anything is GraphiQL's page.
    response = await client.get(
        "/graphql", params=MALFORMED_GETS[case], headers={"Accept": "application/json"}
    )
    documented_error(response, 400, "BAD_REQUEST")


async def test_variables_a_few_levels_deep_are_still_accepted(client: httpx.AsyncClient) -> None:
    nested: Any = "x"
    for _ in range(14):  # 28 levels, within the body's 32
        nested = {"a": [nested]}
    response = await client.post("/graphql", json={**TYPENAME, "variables": {"v": nested}})
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_the_batch_limit_is_still_query_too_complex(client: httpx.AsyncClient) -> None:
    response = await client.post("/graphql", json=[TYPENAME] * 11)
    assert documented_error(response, 400, "QUERY_TOO_COMPLEX") == {
        "code": "QUERY_TOO_COMPLEX",
        "limit": "batch",
        "max": 10,
    }


async def test_other_methods_and_unknown_paths_are_documented_errors(
    client: httpx.AsyncClient,
) -> None:
    documented_error(await client.put("/graphql", json=TYPENAME), 405, "BAD_REQUEST")
    documented_error(await client.get("/nowhere"), 404, "NOT_FOUND")
    documented_error(await client.post("/healthz"), 405, "BAD_REQUEST")


async def test_graphiql_is_not_found_in_production(backend: Backend) -> None:
    async with gateway(backend, env="production", audit_key="k" * 32) as production:
        response = await production.get("/graphql", headers={"Accept": "text/html"})
    documented_error(response, 404, "NOT_FOUND")


class Failing:
    """Raises an error nothing handles (as the deep variables once did) the next `count`
    times the view builds a request's loaders; then builds them as usual."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.real = gateway_view.Loaders

    def __call__(self, *args: Any) -> Any:
        if self.count > 0:
            self.count -= 1
            raise RecursionError("maximum recursion depth exceeded")
        return self.real(*args)


def failing(monkeypatch: pytest.MonkeyPatch, count: int) -> Failing:
    made = Failing(count)
    monkeypatch.setattr(gateway_view, "Loaders", made)
    return made


async def test_an_unexpected_error_is_json_internal_with_every_header(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    failing(monkeypatch, 1)
    response = await client.post("/graphql", json=TYPENAME)
    extensions = documented_error(response, 500, "INTERNAL")
    assert extensions["requestId"] == response.headers["x-request-id"]
    assert "recursion" not in response.text
    assert extensions["requestId"] in caplog.text
    assert (await client.post("/graphql", json=TYPENAME)).status_code == 200


# --- item 7: request ids on every answer -------------------------------------------------------


async def test_every_answer_carries_its_own_request_id(backend: Backend) -> None:
    async with gateway(
        backend,
        rate_limit_public="2/minute",
        auth_failures_per_ip="1/minute",
        max_body_bytes=2048,
    ) as limited:
        answers = {
            "400": await limited.post("/graphql", content=b"{", headers={"X-Request-Id": "a"}),
            "graphql": await limited.post("/graphql", json=TYPENAME),
            "429 rate limit": await limited.post("/graphql", json=TYPENAME),
            "401": await limited.post(
                "/graphql", json=TYPENAME, headers={"Authorization": "Bearer gw_0_guess"}
            ),
            "429 auth throttle": await limited.post(
                "/graphql", json=TYPENAME, headers={"Authorization": "Bearer gw_1_guess"}
            ),
            "413": await limited.post("/graphql", content=b"x" * 4096),
            "404": await limited.get("/nowhere"),
            "healthz": await limited.get("/healthz"),
            "readyz": await limited.get("/readyz"),
        }
    expected = {
        "graphql": 200,
        "429 rate limit": 429,
        "401": 401,
        "429 auth throttle": 429,
        "413": 413,
        "400": 400,
        "404": 404,
        "healthz": 200,
        "readyz": 200,
    }
    assert {name: r.status_code for name, r in answers.items()} == expected
    for response in answers.values():
        assert_edge_headers(response)
    ids = {response.headers["x-request-id"] for response in answers.values()}
    assert len(ids) == len(answers)


async def test_the_request_id_is_the_gateways_and_the_callers_is_kept_beside_it(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, str | None]] = []
    view_context = gateway_view.GatewayGraphQL.get_context

    async def recording(self: Any, request: Any, response: Any) -> Any:
        context = await view_context(self, request, response)
        seen.append((context.request_id, context.caller_request_id))
        return context

    monkeypatch.setattr(gateway_view.GatewayGraphQL, "get_context", recording)
    sent: list[list[tuple[str, str]]] = [
        [("X-Request-Id", "case-1403:000123")],
        [("X-Request-Id", "case-1403:000123")],
        [("X-Request-Id", "<script>")],
        [("X-Request-Id", "a"), ("X-Request-Id", "b")],
        [],
    ]
    answered = [
        (await client.post("/graphql", json=TYPENAME, headers=headers)).headers["x-request-id"]
        for headers in sent
    ]
    assert [caller for _, caller in seen] == [
        "case-1403:000123",
        "case-1403:000123",
        None,
        None,
        None,
    ]
    # One id per request, the gateway's, whatever the caller sent: the same in the context.
    assert [own for own, _ in seen] == answered
    assert len(set(answered)) == len(answered)
    assert all(GATEWAY_ID.fullmatch(own) for own in answered)


# --- item 7 over a real server: the connection outlives the error --------------------------------


class _Server(uvicorn.Server):
    """uvicorn as `gateway run` configures it, in the test's loop, announcing when it listens."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the test runner keeps its signals

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.listening.set()


@contextlib.asynccontextmanager
async def real_gateway(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, data_dir: Path, **env: str
) -> AsyncIterator[tuple[str, int]]:
    """The app as `gateway run` serves it (gateway/edge/serve.py's uvicorn configuration)."""
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(data_dir))
    for name, url in backend.urls.items():
        monkeypatch.setenv(f"GATEWAY_{name.upper()}_DATABASE_URL", url)
    for name, value in env.items():
        monkeypatch.setenv(f"GATEWAY_{name.upper()}", value)
    server = _Server(serve._config(Settings()))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    listening = asyncio.create_task(server.listening.wait())
    try:
        await asyncio.wait({task, listening}, return_when=asyncio.FIRST_COMPLETED)
        assert not task.done(), "the gateway did not start"
        yield sock.getsockname()
    finally:
        listening.cancel()
        server.should_exit = True
        await task
        sock.close()


class Connection:
    """One HTTP/1.1 connection, kept open across requests (what a reset would break)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def post(
        self, body: bytes, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], Any]:
        lines = [
            "POST /graphql HTTP/1.1",
            "Host: gateway.test",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            *(f"{name}: {value}" for name, value in (headers or {}).items()),
        ]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await self.writer.drain()
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        status_line, *header_lines = head.strip().split("\r\n")
        answered = {
            name.lower(): value.strip()
            for name, value in (line.split(":", 1) for line in header_lines)
        }
        content = await self.reader.readexactly(int(answered["content-length"]))
        return int(status_line.split()[1]), answered, json.loads(content)


@contextlib.asynccontextmanager
async def connection(address: tuple[str, int]) -> AsyncIterator[Connection]:
    reader, writer = await asyncio.open_connection(*address)
    try:
        yield Connection(reader, writer)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def test_deep_variables_and_internal_errors_leave_the_connection_serving(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    deep = b'{"query": "query($v: String) { __typename }", "variables": {"v": ' + DEEP.encode()
    deep += b"}}"
    async with (
        real_gateway(backend, monkeypatch, tmp_path) as address,
        connection(address) as http,
    ):
        status, headers, body = await http.post(deep)
        assert status == 400
        assert headers["content-type"].startswith("application/json")
        assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
        assert GATEWAY_ID.fullmatch(headers["x-request-id"])
        assert all(name in headers for name in SECURITY_HEADERS)
        assert headers.get("connection") != "close"
        # The same connection answers the next request.
        status, _, body = await http.post(json.dumps(TYPENAME).encode())
        assert (status, body) == (200, {"data": {"__typename": "Query"}})

        failing(monkeypatch, 1)
        status, headers, body = await http.post(json.dumps(TYPENAME).encode())
        assert status == 500
        assert body["errors"][0]["extensions"]["code"] == "INTERNAL"
        assert body["errors"][0]["extensions"]["requestId"] == headers["x-request-id"]
        assert all(name in headers for name in SECURITY_HEADERS)
        status, _, body = await http.post(json.dumps(TYPENAME).encode())
        assert (status, body) == (200, {"data": {"__typename": "Query"}})


async def test_the_served_gateway_ignores_forwarded_for_from_loopback(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    async with (
        real_gateway(backend, monkeypatch, tmp_path, rate_limit_public="5/minute") as address,
        connection(address) as http,
    ):
        answered: Counter[int] = Counter()
        for n in range(8):
            status, _, _ = await http.post(
                json.dumps(TYPENAME).encode(), {"X-Forwarded-For": f"203.0.113.{n}"}
            )
            answered[status] += 1
        assert answered == {200: 5, 429: 3}


# --- item 10: no secret on a command line ------------------------------------------------------

DEMO_SECRETS = ("demo-land-registry-secret", "demo-civil-registry-secret", "demo-bank-secret")

# Stands in for `gateway run`: reports its environment, and the command line of itself and of
# every process above it (the shell and make that started it), as `ps` would show them.
FAKE_GATEWAY = """\
import json, os, sys

def parent(pid):
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])

def command_line(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
        return cmdline.read().replace(b"\\0", b" ").decode(errors="replace")

lines, pid = [], os.getpid()
while pid > 1:
    lines.append(command_line(pid))
    pid = parent(pid)
env = {k: v for k, v in os.environ.items() if k.startswith("GATEWAY_")}
with open(os.environ["FAKE_REPORT"], "w") as report:
    json.dump({"argv": sys.argv, "command_lines": lines, "env": env}, report)
"""


def _make(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=True,
    )


@pytest.mark.skipif(
    shutil.which("make") is None or not Path("/proc/self/cmdline").exists(),
    reason="needs make and /proc",
)
def test_make_run_passes_the_demo_credentials_in_the_environment_only(tmp_path: Path) -> None:
    stamp = tmp_path / "installed"  # newer than pyproject.toml: nothing to install
    stamp.touch()
    # What make runs, as `make -n` prints it.
    dry = _make("-n", "run", f"STAMP={stamp}").stdout
    assert "gateway run" in dry
    assert not [secret for secret in DEMO_SECRETS if secret in dry], dry

    # And what the processes' command lines say, with stand-ins for the programs.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").write_text("#!/bin/sh\nexec sleep 60\n")  # the sandbox
    (bin_dir / "gateway").write_text(f"#!{sys.executable}\n{FAKE_GATEWAY}")
    for program in bin_dir.iterdir():
        program.chmod(program.stat().st_mode | stat.S_IXUSR)
    report_path = tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_") and k != "MAKEFLAGS"}
    _make("run", f"BIN={bin_dir}", f"STAMP={stamp}", env={**env, "FAKE_REPORT": str(report_path)})
    report = json.loads(report_path.read_text())
    assert report["argv"][1:] == ["run"]
    assert any("make" in line for line in report["command_lines"])  # the walk reached make
    for line in report["command_lines"]:
        assert not [secret for secret in DEMO_SECRETS if secret in line], line
    assert report["env"]["GATEWAY_LAND_REGISTRY_PASSWORD"] == "demo-land-registry-secret"
    assert report["env"]["GATEWAY_CIVIL_REGISTRY_PASSWORD"] == "demo-civil-registry-secret"
    assert report["env"]["GATEWAY_BANK_PASSWORD"] == "demo-bank-secret"
    assert report["env"]["GATEWAY_BANK_USERNAME"] == "urmia-municipality"
