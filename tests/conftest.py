"""Fixtures: real databases (SQLite files, and PostgreSQL/MariaDB when their URLs are set),
seeded with the demo data, and the real app behind an HTTP client."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import logging
import os
import secrets
import socket
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from db import migrate, raw_reads, registry
from db.engines import Databases
from gateway.access import audit_key
from gateway.access import keys as access_keys
from gateway.access.keys import (
    DEFAULT_LIFETIME,
    KeyInfo,
    create_key,
    ensure_demo_principals,
    parse_kind,
)
from gateway.access.principals import PrincipalKind
from gateway.edge.app import create_app
from gateway.inquiries import keys as signing_keys
from gateway.inquiries import webhooks
from gateway.settings import Settings
from sandbox.run import Agencies as SandboxAgencies
from sandbox.run import run_agencies
from sandbox.wsse import Credentials

SERVER_URLS = {
    "postgres": os.environ.get("GATEWAY_TEST_POSTGRES_URL"),
    "mariadb": os.environ.get("GATEWAY_TEST_MARIADB_URL"),
}
DEMO_PARCELS = 120


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # In CI every backend must run: a missing server URL there is a failure, not a skip.
    if os.environ.get("CI") == "true":
        missing = [name for name, url in SERVER_URLS.items() if not url]
        if missing:
            raise pytest.UsageError(f"CI needs GATEWAY_TEST_{missing[0].upper()}_URL")


def redis_url() -> str | None:
    """The test Redis, when it answers; CI must have one (see .ci/run)."""
    url = os.environ.get("GATEWAY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    host, port = url.removeprefix("redis://").split("/")[0].split(":")
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except OSError:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs Redis at {url}")
        return None
    return url


@dataclass
class Backend:
    name: str
    urls: dict[str, str]  # every database of the registry (db/registry.py) by name


class ServerDatabases:
    """Creates throwaway databases on a PostgreSQL or MariaDB server, and drops them."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = make_url(admin_url)
        self.names: list[str] = []

    async def _execute(self, *statements: str) -> None:
        engine = create_async_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as connection:
                for statement in statements:
                    await connection.execute(text(statement))
        finally:
            await engine.dispose()

    async def create(self, prefix: str) -> dict[str, str]:
        urls = {}
        mysql = self.admin_url.get_backend_name() == "mysql"
        suffix = " CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci" if mysql else ""
        for name in registry.DATABASES.names:
            database = f"{prefix}_{name}"
            await self._execute(f"CREATE DATABASE {database}{suffix}")
            self.names.append(database)
            urls[name] = self.admin_url.set(database=database).render_as_string(hide_password=False)
        return urls

    async def drop_all(self) -> None:
        await self._execute(*(f"DROP DATABASE IF EXISTS {name}" for name in self.names))


async def make_backend(
    name: str, tmp: Path, *, parcels: int = DEMO_PARCELS
) -> tuple[Backend, ServerDatabases | None]:
    """Every database of the registry, as it stands, on one backend: migrated, and seeded
    (those with a seeder) unless `parcels` is 0."""
    server: ServerDatabases | None = None
    if name == "sqlite":
        urls = {n: f"sqlite+aiosqlite:///{tmp / f'{n}.sqlite3'}" for n in registry.DATABASES.names}
    else:
        admin = SERVER_URLS[name]
        if not admin:
            pytest.skip(f"{name}: set GATEWAY_TEST_{name.upper()}_URL to run against it")
        server = ServerDatabases(admin)
        urls = await server.create(f"gwtest_{uuid.uuid4().hex[:10]}")
    databases = Databases(urls)
    try:
        await migrate.upgrade(databases)
        if parcels:
            await registry.seed_empty(databases, parcels=parcels)
    finally:
        await databases.dispose()
    return Backend(name, urls), server


@pytest.fixture(scope="session", params=["sqlite", "postgres", "mariadb"])
async def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Backend]:
    made, server = await make_backend(request.param, tmp_path_factory.mktemp(request.param))
    yield made
    if server is not None:
        await server.drop_all()


# Distinctive secrets, so a scan can prove they never leak into responses or logs.
AGENCY_SECRETS = {
    "land_registry": Credentials("gw-test-land", "land-secret-7f3a9c"),
    "civil_registry": Credentials("gw-test-civil", "civil-secret-2b8e41"),
    "bank": Credentials("gw-test-bank", "bank-secret-c94d07"),
}

# The key of every test app's audit trail (never in a database).
AUDIT_KEY = "gw-test-audit-key-5e1d93c07a4b46f2a8b1"

# Every secret of the test configuration (agency passwords, the audit key, API keys, their
# secrets and hashes). Every response any test receives and every log line the suite writes
# is scanned for them; a hit fails the whole run (see pytest_sessionfinish).
SECRETS: set[str] = {credentials.password for credentials in AGENCY_SECRETS.values()}
SECRETS.add(AUDIT_KEY)
LEAKS: list[str] = []


def register_key(key: str) -> str:
    """Puts an API key a test holds, its secret and the secret's hash on the scan's list."""
    secret = key.split("_", 2)[2]
    SECRETS.update({key, secret, hashlib.sha256(secret.encode()).hexdigest()})
    return key


def register_secret(*texts: str) -> None:
    """Puts secrets a test or the gateway mints (a signed token, a webhook secret) on the
    scan's list."""
    SECRETS.update(text for text in texts if text)


def register_private_pem(pem: str) -> str:
    """Puts a private signing key on the scan's list: its PEM body, and its private part as
    a JWK carries it ("d", base64url), the two forms in which it could leak."""
    body = "".join(line for line in pem.strip().splitlines() if not line.startswith("-----"))
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if isinstance(key, Ed25519PrivateKey):
        raw = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        register_secret(base64.urlsafe_b64encode(raw).rstrip(b"=").decode())
    register_secret(body)
    return pem


class _RegisteringSecrets:
    """The `secrets` module as a minting module of the gateway sees it under test: each
    secret it draws goes on the scan's list, whoever asked for it (a test, a mutation, a
    command run in-process). Only the draws named in `registered` are secrets there."""

    def __init__(self, *registered: str) -> None:
        self.registered = frozenset(registered)

    def __getattr__(self, name: str) -> Any:
        draw = getattr(secrets, name)
        if name not in self.registered:
            return draw

        def registering(*args: Any) -> Any:
            drawn = draw(*args)
            register_secret(drawn, hashlib.sha256(drawn.encode()).hexdigest())
            return drawn

        return registering


def _registering_pem(make: Callable[[], str]) -> Callable[[], str]:
    def minting() -> str:
        return register_private_pem(make())

    return minting


# Where the gateway mints a secret, registered at the source (tests/test_secret_scan.py
# checks that this covers every place in gateway/ that draws one): API keys' secrets, the
# development audit key, webhook secrets (drawn in webhooks.new_secret), signing keys.
MINTING_SOURCES = {
    "gateway/access/keys.py": "secrets.token_urlsafe",
    "gateway/access/audit_key.py": "secrets.token_hex",
    "gateway/inquiries/webhooks.py": "secrets.token_urlsafe",
    "gateway/inquiries/keys.py": "Ed25519PrivateKey.generate",
}
for _module, _draw in (
    (access_keys, "token_urlsafe"),
    (audit_key, "token_hex"),
    (webhooks, "token_urlsafe"),
):
    vars(_module)["secrets"] = _RegisteringSecrets(_draw)
signing_keys.generate_private_pem = _registering_pem(signing_keys.generate_private_pem)


async def mint_key(
    databases: Databases,
    kind: PrincipalKind,
    name: str,
    department: str | None = None,
    expires_in: dt.timedelta | None = DEFAULT_LIFETIME,
    *,
    organisation: str | None = None,
    now: dt.datetime | None = None,
) -> tuple[KeyInfo, str]:
    """`create_key`, with the new key registered for the secret scan. Every key a test mints
    goes through here (or, for keys a command prints, through register_key):
    tests/test_secret_scan.py fails on a call of create_key anywhere else in tests/."""
    info, key = await create_key(
        databases, kind, name, department, expires_in, organisation=organisation, now=now
    )
    register_key(key)
    return info, key


async def mint_demo_keys(databases: Databases) -> dict[str, str]:
    """`ensure_demo_principals`, with the fresh demo keys registered for the secret scan."""
    issued = await ensure_demo_principals(databases)
    for key in issued.values():
        register_key(key)
    return issued


def scan_for_secrets(text: str, where: str) -> None:
    for secret in SECRETS:
        if secret in text:
            LEAKS.append(f"{where} holds a secret starting {secret[:6]!r}")


class _SecretScan(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a malformed record is not ours to judge
            text = str(record.msg)
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        scan_for_secrets(text, f"log record of {record.name}")


@pytest.fixture(scope="session", autouse=True)
def secret_scan() -> Iterator[None]:
    """Scans every log line and every HTTP response of the suite for test secrets."""
    handler = _SecretScan(level=logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(handler)
    previous_level = root.level
    root.setLevel(logging.INFO)
    original_send = httpx.AsyncClient.send

    async def send(
        self: httpx.AsyncClient, request: httpx.Request, **kwargs: Any
    ) -> httpx.Response:
        response = await original_send(self, request, **kwargs)
        if not kwargs.get("stream"):
            scan_for_secrets(response.text, f"response to {request.method} {request.url.path}")
            scan_for_secrets(str(response.headers), f"headers of {request.url.path}")
        return response

    httpx.AsyncClient.send = send  # type: ignore[method-assign]
    yield
    httpx.AsyncClient.send = original_send  # type: ignore[method-assign]
    root.removeHandler(handler)
    root.setLevel(previous_level)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if LEAKS:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = ["secret scan: secrets leaked into responses or logs:", *sorted(set(LEAKS))]
        if reporter is not None:
            reporter.write_line("\n".join(lines), red=True)


# Audit checkpoints, one directory per gateway database, so that no test writes under .data.
_CHECKPOINTS = Path(tempfile.mkdtemp(prefix="gateway-test-checkpoints-"))
# Nor do the CLI and `gateway run` processes that tests start without a data folder of their
# own (a development audit key, checkpoints): they inherit this one.
os.environ.setdefault("GATEWAY_DATA_DIR", tempfile.mkdtemp(prefix="gateway-test-data-"))


def _checkpoint_dir(backend: Backend) -> Path:
    return _CHECKPOINTS / hashlib.sha256(backend.urls["gateway"].encode()).hexdigest()[:16]


def cli_env(backend: Backend) -> dict[str, str]:
    """The environment of a `gateway` command run against this backend: its databases, and
    the test apps' audit key and checkpoints, so that what the command records chains under
    the same key (the gateway refuses to build on a record another key wrote)."""
    env = {registry.DATABASES[name].url_variable: url for name, url in backend.urls.items()}
    env["GATEWAY_AUDIT_KEY"] = AUDIT_KEY
    env["GATEWAY_AUDIT_CHECKPOINT_DIR"] = str(_checkpoint_dir(backend))
    return env


def settings_for(
    backend: Backend, agencies: SandboxAgencies | None = None, **overrides: Any
) -> Settings:
    audit_settings = {"audit_key": AUDIT_KEY, "audit_checkpoint_dir": _checkpoint_dir(backend)}
    agency_settings: dict[str, Any] = {}
    if agencies is not None:
        for name in ("land_registry", "civil_registry", "bank", "postal"):
            agency_settings[f"{name}_url"] = agencies.url(name)
        for name, credentials in AGENCY_SECRETS.items():
            agency_settings[f"{name}_username"] = credentials.username
            agency_settings[f"{name}_password"] = credentials.password
    database_settings = {
        registry.DATABASES[name].url_setting: url for name, url in backend.urls.items()
    }
    # One job engine runs per process (DBOS), and test apps are many: a test that needs the
    # app to run its jobs says so (jobs_in_app=True); the others only queue them.
    job_settings: dict[str, Any] = {"jobs_in_app": False}
    return Settings(
        **{**database_settings, **audit_settings, **agency_settings, **job_settings, **overrides}
    )


@pytest.fixture(scope="session")
async def sandbox(backend: Backend) -> AsyncIterator[SandboxAgencies]:
    """The simulated agencies, on loopback, answering from this backend's demo data."""
    async with run_agencies(
        planning_url=backend.urls["planning"],
        revenue_url=backend.urls["revenue"],
        credentials=AGENCY_SECRETS,
    ) as agencies:
        yield agencies


@pytest.fixture(scope="session")
async def client(backend: Backend, sandbox: SandboxAgencies) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings_for(backend, sandbox))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway.test"
        ) as http,
    ):
        yield http


class GraphQLClient:
    """POSTs GraphQL as one principal: `key` is its API key, None for the public."""

    def __init__(self, http: httpx.AsyncClient, key: str | None = None) -> None:
        self.http = http
        self.key = key

    def as_key(self, key: str | None) -> GraphQLClient:
        return GraphQLClient(self.http, key)

    async def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        cost: bool = False,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        all_headers = {"X-Gateway-Debug": "cost"} if cost else {}
        if self.key is not None:
            all_headers["Authorization"] = f"Bearer {self.key}"
        all_headers.update(headers or {})
        return await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=all_headers
        )

    async def __call__(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        cost: bool = False,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        response = await self.post(query, variables, cost=cost, headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


# The principals the tests act as: label → (kind, name). Two notaries, to show that one
# partner never sees another's records.
PRINCIPALS = {
    "operator": ("operator", "Gateway operations"),
    "notary_a": ("notary", "Notary office 12"),
    "notary_b": ("notary", "Notary office 31"),
    "bank": ("bank", "Bank Melli, central branch"),
    "counter": ("counter", "Government counter 7"),
    "revenue": ("department:revenue", "Revenue department"),
    "inspection": ("department:inspection", "Inspection department"),
}
# A bank's organisation is its bank code: the test bank verifies only references starting 017.
BANK_CODES = {"bank": "017"}


@pytest.fixture(scope="session")
async def keys(backend: Backend) -> dict[str, str]:
    """A real API key for each test principal, in this backend's gateway database."""
    databases = Databases({"gateway": backend.urls["gateway"]})
    made = {}
    try:
        for label, (kind, name) in PRINCIPALS.items():
            principal_kind, department = parse_kind(kind)
            _, key = await mint_key(
                databases, principal_kind, name, department, organisation=BANK_CODES.get(label)
            )
            made[label] = key
    finally:
        await databases.dispose()
    return made


@pytest.fixture(scope="session")
def gql(client: httpx.AsyncClient, keys: dict[str, str]) -> GraphQLClient:
    """GraphQL as the operator, who may read everything."""
    return GraphQLClient(client, keys["operator"])


@contextlib.asynccontextmanager
async def gateway_process(backend: Backend, env: dict[str, str]) -> AsyncIterator[str]:
    """A real `gateway run` process against this backend on a free port of loopback; yields
    host:port once its application has started (its socket listens before that, so a request
    sent meanwhile waits in the backlog)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = {
        **cli_env(backend),
        "GATEWAY_PORT": str(port),
        "GATEWAY_SEED_PARCELS": "0",
        "GATEWAY_LOG_LEVEL": "info",  # uvicorn says when the application has started
        "GATEWAY_JOBS_IN_APP": "false",  # processes that run jobs say so (their own data dir)
        **env,
    }
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "gateway"),
        "run",
        env={**os.environ, **settings},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    drain: asyncio.Task[bytes] | None = None
    try:
        said: list[bytes] = []
        # A safety net against a silent hang, never a measure: the wait ends on the line.
        async with asyncio.timeout(120):
            while not said or b"Application startup complete" not in said[-1]:
                line = await process.stderr.readline()
                assert line, b"the gateway stopped before it started:\n" + b"".join(said)
                said.append(line)
        drain = asyncio.create_task(process.stderr.read())  # the pipe must never fill up
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        await process.wait()
        if drain is not None:
            await drain


@contextlib.contextmanager
def statements_sent(engine: Any) -> Iterator[list[tuple[str, Any]]]:
    """The SQL and parameters of each statement run on this (async) engine meanwhile, as
    SQLAlchemy's cursor events see them: its reads take SQLAlchemy's path for the time
    being, as with statement tracing on (the raw path fires no event), and the same SQL."""
    sync_engine = engine.sync_engine
    sent: list[tuple[str, Any]] = []

    def record(_c: Any, _cursor: Any, statement: str, parameters: Any, *_rest: Any) -> None:
        sent.append((statement, parameters))

    traced = sync_engine in raw_reads._EVENTFUL
    raw_reads.keep_events(engine)
    event.listen(sync_engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(sync_engine, "before_cursor_execute", record)
        if not traced:
            raw_reads._EVENTFUL.discard(sync_engine)
