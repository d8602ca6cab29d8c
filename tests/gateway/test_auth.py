"""Authentication before GraphQL: anonymous, API keys and JWTs from a real issuer's JWKS on
loopback; 401s that say nothing; the key cache; the `keys` command."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import socket
import time
import uuid
from collections.abc import AsyncIterator, Generator
from typing import Any

import httpx
import jwt
import pytest
import uvicorn
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from db.engines import Databases
from gateway.access.audit import AuditTrail
from gateway.access.authentication import (
    AuthenticationFailed,
    AuthenticationUnavailable,
    Authenticator,
)
from gateway.access.keys import revoke_key
from gateway.access.principals import ANONYMOUS, PrincipalKind, Scope, scopes_for
from gateway.cli.keys import keys
from gateway.edge.app import create_app
from sandbox.run import Agencies as SandboxAgencies
from tests.conftest import (
    Backend,
    cli_env,
    mint_key,
    register_key,
    register_secret,
    settings_for,
)

ISSUER = "https://sso.urmia.test/realms/partners"
AUDIENCE = "municipality-gateway"
PUBLIC_QUERY = {"query": "{ parcels(first: 1) { totalCount } }"}


class Issuer:
    """An OAuth 2 issuer's signing keys, published as a JWKS by a real server on loopback."""

    def __init__(self) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        rsa_jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.rsa.public_key(), as_dict=True)
        ec_jwk = jwt.algorithms.ECAlgorithm.to_jwk(self.ec.public_key(), as_dict=True)
        self.jwks = {
            "keys": [
                {**rsa_jwk, "kid": "rsa-1", "use": "sig", "alg": "RS256"},
                {**ec_jwk, "kid": "ec-1", "use": "sig", "alg": "ES256"},
            ]
        }
        self.fetches = 0
        self.url = ""

    def token(
        self,
        gateway_kind: str | None = "notary",
        *,
        kid: str = "rsa-1",
        drop: tuple[str, ...] = (),
        **claims: Any,
    ) -> str:
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "client-notary-12",
            "client_id": "notary-12",
            "iat": now,
            "exp": now + 300,
            "gateway_kind": gateway_kind,
        }
        payload.update(claims)
        for name in (*drop, *(k for k, v in payload.items() if v is None)):
            payload.pop(name, None)
        if kid.startswith("ec"):
            token = jwt.encode(payload, self.ec, algorithm="ES256", headers={"kid": kid})
        else:
            key = self.stranger if kid == "stranger" else self.rsa
            token = jwt.encode(payload, key, algorithm="RS256", headers={"kid": kid})
        # A bearer credential like an API key: the secret scan must never meet it again.
        register_secret(token)
        return token


class _Server(uvicorn.Server):
    """uvicorn on the test's loop, telling the test when it listens."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.listening.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the test runner keeps its signals


@contextlib.asynccontextmanager
async def serve(app: Starlette) -> AsyncIterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, lifespan="off", log_config=None, access_log=False)
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        listening = asyncio.create_task(server.listening.wait())
        await asyncio.wait({task, listening}, return_when=asyncio.FIRST_COMPLETED)
        listening.cancel()
        assert not task.done(), task.result()  # a server that stopped says why
        assert server.started
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest.fixture(scope="module")
async def issuer() -> AsyncIterator[Issuer]:
    made = Issuer()

    async def jwks(_request: Request) -> Response:
        made.fetches += 1
        return JSONResponse(made.jwks)

    async with serve(Starlette(routes=[Route("/jwks.json", jwks)])) as url:
        made.url = f"{url}/jwks.json"
        yield made


def _jwt_settings(issuer: Issuer) -> dict[str, Any]:
    return {"jwt_issuer": ISSUER, "jwt_audience": AUDIENCE, "jwt_jwks_url": issuer.url}


@pytest.fixture(scope="module")
async def http(
    backend: Backend, sandbox: SandboxAgencies, issuer: Issuer
) -> AsyncIterator[httpx.AsyncClient]:
    # No cache here, so that a revocation shows at once (the cache has its own test).
    settings = settings_for(backend, sandbox, auth_cache_s=0, **_jwt_settings(issuer))
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        yield client


@pytest.fixture(scope="module")
async def databases(backend: Backend) -> AsyncIterator[Databases]:
    databases = Databases({"gateway": backend.urls["gateway"]})
    yield databases
    await databases.dispose()


@pytest.fixture
async def authenticator(backend: Backend, databases: Databases, issuer: Issuer) -> Authenticator:
    return Authenticator(settings_for(backend, **_jwt_settings(issuer)), databases)


def _name(label: str) -> str:
    return f"{label} {uuid.uuid4().hex[:8]}"


async def _post(http: httpx.AsyncClient, token: str | None) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return await http.post("/graphql", json=PUBLIC_QUERY, headers=headers)


def _assert_refused(response: httpx.Response, token: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json() == {
        "errors": [{"message": "Authentication failed.", "extensions": {"code": "UNAUTHENTICATED"}}]
    }
    assert token not in response.text
    assert not any(token in value for value in response.headers.values())


async def test_no_credential_is_the_public(http: httpx.AsyncClient) -> None:
    response = await _post(http, None)
    assert response.status_code == 200
    assert response.json()["data"]["parcels"]["totalCount"] > 0


async def test_a_valid_key_is_let_in(http: httpx.AsyncClient, databases: Databases) -> None:
    _, key = await mint_key(databases, PrincipalKind.BANK, _name("بانک ملی"))
    response = await _post(http, key)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["parcels"]["totalCount"] > 0
    lowercase = await http.post(
        "/graphql", json=PUBLIC_QUERY, headers={"Authorization": f"bearer {key}"}
    )
    assert lowercase.status_code == 200


async def test_bad_revoked_and_expired_keys_are_refused_alike(
    http: httpx.AsyncClient, databases: Databases
) -> None:
    info, revoked = await mint_key(databases, PrincipalKind.NOTARY, _name("notary"))
    assert (await _post(http, revoked)).status_code == 200
    await revoke_key(databases, info.prefix)
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    _, expired = await mint_key(
        databases, PrincipalKind.NOTARY, _name("notary"), expires_in=dt.timedelta(days=1), now=past
    )
    wrong = revoked[:-4] + ("AAAA" if not revoked.endswith("AAAA") else "BBBB")
    for token in (revoked, expired, wrong, "gw_nonsense", "not-a-key-at-all", "a.b.c"):
        _assert_refused(await _post(http, token), token)


async def test_malformed_headers_are_refused(http: httpx.AsyncClient) -> None:
    for value in ("Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "gw_abc", "Bearer " + "x" * 9000):
        response = await http.post("/graphql", json=PUBLIC_QUERY, headers={"Authorization": value})
        assert response.status_code == 401, value
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    twice = await http.post(
        "/graphql",
        json=PUBLIC_QUERY,
        headers=[("Authorization", "Bearer a"), ("Authorization", "Bearer b")],
    )
    assert twice.status_code == 401


async def test_health_and_readiness_ignore_credentials(http: httpx.AsyncClient) -> None:
    headers = {"Authorization": "Bearer gw_not_valid"}
    assert (await http.get("/healthz", headers=headers)).status_code == 200
    assert (await http.get("/readyz", headers=headers)).status_code == 200


async def test_get_requests_are_authenticated_too(http: httpx.AsyncClient) -> None:
    response = await http.get(
        "/graphql", params=PUBLIC_QUERY, headers={"Authorization": "Bearer gw_bad"}
    )
    assert response.status_code == 401


async def _websocket_refusal(app: Starlette, extensions: dict[str, Any]) -> list[Any]:
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"authorization", b"Bearer gw_bad")],
        "subprotocols": ["graphql-transport-ws"],
        "extensions": extensions,
    }
    sent: list[Any] = []

    async def receive() -> Any:
        return {"type": "websocket.connect"}

    async def send(message: Any) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def test_a_websocket_with_a_bad_credential_is_refused(backend: Backend) -> None:
    app = create_app(settings_for(backend))
    denied = await _websocket_refusal(app, {"websocket.http.response": {}})
    assert denied[0]["type"] == "websocket.http.response.start"
    assert denied[0]["status"] == 401
    assert b"UNAUTHENTICATED" in b"".join(m.get("body", b"") for m in denied[1:])
    # Servers without the denial extension can only close it, before accepting.
    closed = await _websocket_refusal(app, {})
    assert [m["type"] for m in closed] == ["websocket.close"]
    assert closed[0]["code"] == 1008


async def test_a_valid_jwt_is_let_in(http: httpx.AsyncClient, issuer: Issuer) -> None:
    response = await _post(http, issuer.token())
    assert response.status_code == 200, response.text
    assert response.json()["data"]["parcels"]["totalCount"] > 0


async def test_jwt_claims_make_the_principal(authenticator: Authenticator, issuer: Issuer) -> None:
    notary = await authenticator.authenticate(f"Bearer {issuer.token(name='دفتر ۱۲')}")
    assert notary.kind is PrincipalKind.NOTARY
    assert notary.id == "jwt:client-notary-12"
    assert notary.name == "دفتر ۱۲"
    assert notary.scopes == scopes_for(PrincipalKind.NOTARY)

    token = issuer.token("department:inspection", kid="ec-1", sub="insp", drop=("client_id",))
    inspection = await authenticator.authenticate(f"Bearer {token}")
    assert inspection.kind is PrincipalKind.DEPARTMENT
    assert inspection.department == "inspection"
    assert inspection.name == "insp"  # no name, no client_id: the subject
    assert inspection.has(Scope.AUDIT_READ)

    bank = await authenticator.authenticate(f"Bearer {issuer.token('bank', sub='b')}")
    assert (bank.kind, bank.name) == (PrincipalKind.BANK, "notary-12")  # client_id


async def test_a_jwt_scope_narrows_and_never_widens(
    authenticator: Authenticator, issuer: Issuer
) -> None:
    asked = f"{Scope.PARCELS_READ} {Scope.AUDIT_READ} {Scope.AGENCIES_READ}"
    counter = await authenticator.authenticate(f"Bearer {issuer.token('counter', scope=asked)}")
    assert counter.scopes == frozenset({Scope.PARCELS_READ})
    listed = await authenticator.authenticate(
        f"Bearer {issuer.token('operator', sub='op', scope=[Scope.AUDIT_READ])}"
    )
    assert listed.scopes == frozenset({Scope.AUDIT_READ})
    nothing = await authenticator.authenticate(f"Bearer {issuer.token('bank', sub='x', scope='')}")
    assert nothing.scopes == frozenset()


def _bad_tokens(issuer: Issuer) -> dict[str, str]:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "s",
        "exp": now + 300,
        "gateway_kind": "operator",
    }
    unsigned = jwt.encode(claims, "", algorithm="none", headers={"kid": "rsa-1"})
    hmac_signed = jwt.encode(
        claims,
        "a-shared-secret-of-thirty-two-bytes!",
        algorithm="HS256",
        headers={"kid": "rsa-1"},
    )
    return {
        "expired": issuer.token(exp=now - 120, iat=now - 600),
        "wrong audience": issuer.token(aud="another-service"),
        "wrong issuer": issuer.token(iss="https://evil.test/"),
        "HS256": hmac_signed,
        "alg none": unsigned,
        "unknown kid": issuer.token(kid="stranger"),
        "signed with another key than its kid's": jwt.encode(
            jwt.decode(issuer.token(), options={"verify_signature": False}),
            issuer.rsa,
            algorithm="RS256",
            headers={"kid": "ec-1"},
        ),
        "no exp": issuer.token(drop=("exp",)),
        "no sub": issuer.token(drop=("sub",)),
        "no aud": issuer.token(drop=("aud",)),
        "no kind": issuer.token(None),
        "public kind": issuer.token("public"),
        "unknown kind": issuer.token("mayor"),
        "unknown department": issuer.token("department:nowhere"),
        "scope not a string": issuer.token(scope=7),
        "tampered": issuer.token()[:-10] + "x" * 10,
    }


async def test_bad_jwts_are_refused(
    http: httpx.AsyncClient, authenticator: Authenticator, issuer: Issuer
) -> None:
    for reason, token in _bad_tokens(issuer).items():
        with pytest.raises(AuthenticationFailed):  # noqa: PT012 - says which case failed
            await authenticator.authenticate(f"Bearer {token}")
            pytest.fail(reason)
        _assert_refused(await _post(http, token), token)


async def test_jwts_are_refused_when_no_issuer_is_configured(
    backend: Backend, databases: Databases, issuer: Issuer
) -> None:
    authenticator = Authenticator(settings_for(backend), databases)
    with pytest.raises(AuthenticationFailed):
        await authenticator.authenticate(f"Bearer {issuer.token()}")


def test_a_partial_jwt_configuration_fails_at_start(backend: Backend) -> None:
    settings = settings_for(backend, jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
    with pytest.raises(ValueError, match="GATEWAY_JWT_JWKS_URL"):
        Authenticator(settings, Databases({}))


async def test_the_issuer_keys_are_fetched_once_and_refetched_for_a_new_kid(
    backend: Backend, databases: Databases, issuer: Issuer
) -> None:
    clock = [1000.0]
    settings = settings_for(backend, auth_cache_s=0, **_jwt_settings(issuer))
    authenticator = Authenticator(settings, databases, clock=lambda: clock[0])
    before = issuer.fetches
    for n in range(20):
        await authenticator.authenticate(f"Bearer {issuer.token(sub=f'c{n}')}")
    assert issuer.fetches == before + 1
    # Unknown key ids refetch at most once per jwt_jwks_min_refresh_s (30 s by default).
    for _ in range(5):
        with pytest.raises(AuthenticationFailed):
            await authenticator.authenticate(f"Bearer {issuer.token(kid='stranger')}")
    assert issuer.fetches == before + 1
    clock[0] += 31
    with pytest.raises(AuthenticationFailed):
        await authenticator.authenticate(f"Bearer {issuer.token(kid='stranger')}")
    assert issuer.fetches == before + 2
    # The issuer rotates: its new key works once published and fetched.
    rotated = {**issuer.jwks}
    try:
        stranger = jwt.algorithms.RSAAlgorithm.to_jwk(issuer.stranger.public_key(), as_dict=True)
        issuer.jwks = {"keys": [*rotated["keys"], {**stranger, "kid": "stranger"}]}
        clock[0] += 31
        principal = await authenticator.authenticate(f"Bearer {issuer.token(kid='stranger')}")
        assert principal.kind is PrincipalKind.NOTARY
    finally:
        issuer.jwks = rotated


async def test_an_unreachable_issuer_is_unavailable_not_a_bad_token(
    backend: Backend, databases: Databases, issuer: Issuer
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    settings = settings_for(
        backend,
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        jwt_jwks_url=f"http://127.0.0.1:{port}/jwks.json",
    )
    authenticator = Authenticator(settings, databases)
    with pytest.raises(AuthenticationUnavailable):
        await authenticator.authenticate(f"Bearer {issuer.token()}")


async def test_a_revocation_takes_effect_within_the_cache_time(
    backend: Backend, databases: Databases
) -> None:
    clock = [0.0]
    settings = settings_for(backend, auth_cache_s=10)
    authenticator = Authenticator(settings, databases, clock=lambda: clock[0])
    info, key = await mint_key(databases, PrincipalKind.COUNTER, _name("counter"))
    assert (await authenticator.authenticate(f"Bearer {key}")).kind is PrincipalKind.COUNTER
    await revoke_key(databases, info.prefix)
    clock[0] += 9
    assert (await authenticator.authenticate(f"Bearer {key}")).kind is PrincipalKind.COUNTER
    clock[0] += 2
    with pytest.raises(AuthenticationFailed):
        await authenticator.authenticate(f"Bearer {key}")


async def test_a_cached_key_sent_under_another_scheme_is_refused(
    backend: Backend, sandbox: SandboxAgencies, databases: Databases
) -> None:
    _, key = await mint_key(databases, PrincipalKind.NOTARY, _name("دفتر"))
    app = create_app(settings_for(backend, sandbox, auth_cache_s=600))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        assert (await _post(client, key)).status_code == 200  # verified, now cached
        for scheme in ("Basic", "Token", "Bearer:", "bearerx"):
            response = await client.post(
                "/graphql", json=PUBLIC_QUERY, headers={"Authorization": f"{scheme} {key}"}
            )
            _assert_refused(response, key)
        assert (await _post(client, key)).status_code == 200


async def test_the_cache_answers_for_bearer_credentials_only(
    backend: Backend, databases: Databases
) -> None:
    authenticator = Authenticator(settings_for(backend, auth_cache_s=600), databases)
    _, key = await mint_key(databases, PrincipalKind.BANK, _name("بانک"))
    assert (await authenticator.authenticate(f"Bearer {key}")).kind is PrincipalKind.BANK
    with pytest.raises(AuthenticationFailed):
        await authenticator.authenticate(f"Basic {key}")


async def test_no_header_is_anonymous(authenticator: Authenticator) -> None:
    assert await authenticator.authenticate(None) is ANONYMOUS


# The `keys` command, as an operator runs it (in a thread: it runs its own event loop).


async def _keys_command(backend: Backend, *args: str) -> Result:
    env = cli_env(backend)
    result = await asyncio.to_thread(CliRunner().invoke, keys, list(args), env=env)
    assert result.exit_code == 0, result.output
    if args[0] == "create":  # the new key, alone on the last line
        register_key(result.output.strip().splitlines()[-1])
    return result


async def test_keys_command_issues_lists_and_revokes(
    backend: Backend, http: httpx.AsyncClient
) -> None:
    name = _name("دفتر اسناد رسمی")
    created = await _keys_command(backend, "create", "--kind", "notary", "--name", name)
    key = created.output.strip().splitlines()[-1]
    assert key.startswith("gw_")
    assert " " not in key
    assert created.output.count(key) == 1
    assert (await _post(http, key)).status_code == 200

    prefix = key.split("_")[1]
    listed = await _keys_command(backend, "list")
    line = next(row for row in listed.output.splitlines() if row.startswith(prefix))
    assert "notary" in line
    assert name in line
    assert "active" in line
    assert key not in listed.output
    assert key.split("_", 2)[2] not in listed.output

    revoked = await _keys_command(backend, "revoke", prefix)
    assert "revoked" in revoked.output
    _assert_refused(await _post(http, key), key)
    # Both changes are in the audit trail, as changes to that key.
    databases = Databases({"gateway": backend.urls["gateway"]})
    try:
        records, _ = await AuditTrail(databases).query(subject_type="ApiKey", first=1000)
    finally:
        await databases.dispose()
    key_id = next(
        r.subject_id
        for r in records
        if r.operation == "keys.create"
        and r.subject_id in {x.subject_id for x in records if x.operation == "keys.revoke"}
    )
    assert {(r.operation, r.action) for r in records if r.subject_id == key_id} == {
        ("keys.create", "change"),
        ("keys.revoke", "change"),
    }
    listed = await _keys_command(backend, "list")
    line = next(row for row in listed.output.splitlines() if row.startswith(prefix))
    assert "revoked" in line


async def test_keys_command_refuses_bad_input(backend: Backend) -> None:
    env = cli_env(backend)
    runner = CliRunner()
    for args in (
        ["create", "--kind", "mayor", "--name", "x"],
        ["create", "--kind", "department:nowhere", "--name", "x"],
        ["revoke", "000000000000"],
    ):
        result = await asyncio.to_thread(runner.invoke, keys, args, env=env)
        assert result.exit_code != 0, args
        assert "Traceback" not in result.output
    department = await _keys_command(
        backend,
        "create",
        "--kind",
        "department:revenue",
        "--name",
        _name("درآمد"),
        "--expires-days",
        "0",
    )
    assert "never" in department.output


async def test_an_address_that_keeps_failing_is_throttled_before_any_lookup(
    backend: Backend, sandbox: SandboxAgencies, databases: Databases
) -> None:
    _, good = await mint_key(databases, PrincipalKind.NOTARY, _name("دفتر"))
    _, fresh = await mint_key(databases, PrincipalKind.BANK, _name("بانک"))
    app = create_app(settings_for(backend, sandbox, auth_failures_per_ip="5/minute"))

    def client_from(ip: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(ip, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://t")

    async with (
        app.router.lifespan_context(app),
        client_from("10.9.9.9") as attacker,
        client_from("10.1.1.1") as other,
    ):
        assert (await _post(attacker, good)).status_code == 200  # now cached
        for _ in range(5):
            _assert_refused(await _post(attacker, "gw_000000000000_guess"), "gw_0")
        throttled = await _post(attacker, "gw_000000000000_guess")
        assert throttled.status_code == 429
        assert int(throttled.headers["retry-after"]) >= 1
        assert throttled.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        # A key not yet known is not looked up from there either; one already
        # verified still works, and so does every other address.
        assert (await _post(attacker, fresh)).status_code == 429
        assert (await _post(attacker, good)).status_code == 200
        assert (await _post(attacker, None)).status_code == 200
        assert (await _post(other, fresh)).status_code == 200


async def test_a_jwt_whose_subject_the_audit_trail_cannot_hold_is_refused(
    http: httpx.AsyncClient, issuer: Issuer
) -> None:
    # Its id ("jwt:" and the subject) must fit the trail's principal_id (200 characters):
    # one that did not was let in, and each of its personal reads then failed the audit
    # append, as INTERNAL, together with every other request's reads written with it.
    person = {"query": '{ person(nationalCode: "0084575948") { fullName } }'}
    fits = issuer.token(sub="s" * 196)
    response = await http.post("/graphql", json=person, headers={"Authorization": f"Bearer {fits}"})
    assert response.json()["data"]["person"] is not None, response.text
    too_long = issuer.token(sub="s" * 197)
    _assert_refused(await _post(http, too_long), too_long)
