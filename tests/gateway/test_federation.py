"""The gateway as a federation subgraph, under a real router.

Two `gateway run` processes serve two municipalities (urmia and tabriz: different codes and
different data) and a small node subgraph (federation/heritage.mjs) extends Parcel; Apollo's
gateway (federation/router.mjs) composes the three from their `_service { sdl }` and answers
one query that spans them. Callers authenticate with a province-wide issuer's JWTs, which both
gateways trust; the router forwards each caller's token, and reads the SDL on its own.

Needs node: skipped, saying so, where it is absent (CI has it; see .ci/run).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from db.engines import Databases
from gateway.schema import build_schema
from gateway.schema.federation import federated_sdl, municipality_field_name
from gateway.settings import Settings
from tests.conftest import Backend, gateway_process, make_backend
from tests.gateway.test_auth import AUDIENCE, ISSUER, Issuer, serve

FEDERATION = Path(__file__).resolve().parents[2] / "federation"
NODE = shutil.which("node")

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not installed: no federation router to run"),
    pytest.mark.parametrize("backend", ["sqlite"], indirect=True),
]

TABRIZ_ADDRESS = "تبریز، خیابان امام، کوچه ۱۲"
STARTUP_S = 120  # a safety net against a silent hang, never a measure


@contextlib.asynccontextmanager
async def node_process(script: str, env: dict[str, str]) -> AsyncIterator[str]:
    """`node federation/<script>` on a free port; yields its URL once it says "ready"."""
    assert NODE is not None
    process = await asyncio.create_subprocess_exec(
        NODE,
        str(FEDERATION / script),
        env={**os.environ, "PORT": "0", **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    drain: asyncio.Task[bytes] | None = None
    try:
        said: list[bytes] = []
        async with asyncio.timeout(STARTUP_S):
            while not said or not said[-1].startswith(b"ready "):
                line = await process.stdout.readline()
                assert line, f"{script} stopped:\n" + b"".join(said).decode(errors="replace")
                said.append(line)
        drain = asyncio.create_task(process.stdout.read())
        yield said[-1].decode().split()[1].rstrip("/")
    finally:
        process.terminate()
        await process.wait()
        if drain is not None:
            await drain


FIRST_PARCEL = "{ parcels(first: 1) { edges { node { renewalCode registryPlate address } } } }"


async def _first_parcel(url: str, token: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(
            f"http://{url}/graphql",
            json={"query": FIRST_PARCEL},
            headers={"Authorization": f"Bearer {token}"},
        )
    node: dict[str, Any] = response.json()["data"]["parcels"]["edges"][0]["node"]
    return node


class Province:
    def __init__(self, issuer: Issuer) -> None:
        self.issuer = issuer
        self.gateways: dict[str, str] = {}  # municipality → host:port
        self.parcels: dict[str, dict[str, Any]] = {}  # municipality → its first parcel
        self.router = ""

    def token(self, kind: str, sub: str) -> str:
        return self.issuer.token(kind, sub=sub, client_id=sub)


@pytest.fixture(scope="module")
async def province(
    backend: Backend, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Province]:
    if not (FEDERATION / "node_modules").is_dir():  # as .ci/run installs it
        npm = await asyncio.create_subprocess_exec(
            "npm", "ci", "--no-audit", "--no-fund", cwd=FEDERATION
        )
        assert await npm.wait() == 0, "npm ci failed in federation/"
    issuer = Issuer()

    async def jwks(_request: Request) -> Response:
        return JSONResponse(issuer.jwks)

    tabriz, server = await make_backend("sqlite", tmp_path_factory.mktemp("tabriz"), parcels=12)
    assert server is None
    databases = Databases(tabriz.urls)
    try:  # Tabriz's data is its own: another address on its first parcel
        async with databases.engine("planning").begin() as connection:
            first = (await connection.execute(text("SELECT min(id) FROM parcels"))).scalar_one()
            await connection.execute(
                text("UPDATE parcels SET address = :address WHERE id = :id"),
                {"address": TABRIZ_ADDRESS, "id": first},
            )
    finally:
        await databases.dispose()

    async with contextlib.AsyncExitStack() as stack:
        issuer_url = await stack.enter_async_context(
            serve(Starlette(routes=[Route("/jwks.json", jwks)]))
        )
        issuer.url = f"{issuer_url}/jwks.json"
        made = Province(issuer)
        jwt_env = {
            "GATEWAY_JWT_ISSUER": ISSUER,
            "GATEWAY_JWT_AUDIENCE": AUDIENCE,
            "GATEWAY_JWT_JWKS_URL": issuer.url,
        }
        operator = made.token("operator", "province-operator")
        for code, its_backend in (("urmia", backend), ("tabriz", tabriz)):
            made.gateways[code] = await stack.enter_async_context(
                gateway_process(its_backend, {**jwt_env, "GATEWAY_MUNICIPALITY_CODE": code})
            )
            made.parcels[code] = await _first_parcel(made.gateways[code], operator)
        listings = {
            f"{code}|{parcel['renewalCode']}": {
                "registrationNumber": f"{number}",
                "title": f"خانهٔ تاریخی {code}",
            }
            for number, (code, parcel) in enumerate(made.parcels.items(), start=1000)
        }
        heritage = await stack.enter_async_context(
            node_process("heritage.mjs", {"LISTINGS": json.dumps(listings)})
        )
        subgraphs = [
            {"name": code, "url": f"http://{url}/graphql"} for code, url in made.gateways.items()
        ]
        subgraphs.append({"name": "heritage", "url": heritage})
        made.router = await stack.enter_async_context(
            node_process(
                "router.mjs",
                {
                    "SUBGRAPHS": json.dumps(subgraphs),
                    "ROUTER_KEY": made.token("router", "province-router"),
                },
            )
        )
        yield made


async def _post(url: str, query: str, token: str | None, **variables: Any) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(timeout=60) as http:
        response = await http.post(
            url, json={"query": query, "variables": variables}, headers=headers
        )
    body: dict[str, Any] = response.json()
    return body


def _spanning_query(province: Province) -> str:
    parts = []
    for code, parcel in province.parcels.items():
        parts.append(
            f"{municipality_field_name(code)} {{ code "
            f'parcel(renewalCode: "{parcel["renewalCode"]}") {{ municipality renewalCode '
            "address landUse heritage { registrationNumber title } } }"
        )
    return "{ " + " ".join(parts) + " }"


async def test_one_query_through_the_router_spans_both_municipalities_and_the_heritage_subgraph(
    province: Province,
) -> None:
    department = province.token("department:planning", "province-planning")
    body = await _post(province.router, _spanning_query(province), department)
    assert "errors" not in body, body
    urmia = body["data"]["municipality_urmia"]["parcel"]
    tabriz = body["data"]["municipality_tabriz"]["parcel"]
    assert urmia["municipality"] == "urmia"
    assert tabriz["municipality"] == "tabriz"
    # Each municipality answered from its own data...
    assert urmia["address"] == province.parcels["urmia"]["address"] != TABRIZ_ADDRESS
    assert tabriz["address"] == TABRIZ_ADDRESS
    # ...and the heritage subgraph joined each by the key (municipality, renewalCode).
    assert urmia["heritage"]["title"] == "خانهٔ تاریخی urmia"
    assert tabriz["heritage"]["title"] == "خانهٔ تاریخی tabriz"
    assert urmia["heritage"]["registrationNumber"] != tabriz["heritage"]["registrationNumber"]


ENTITIES = """query ($representations: [_Any!]!) {
  _entities(representations: $representations) { ... on Person { nationalCode fullName } }
}"""
PERSON = "query ($code: NationalCode!) { person(nationalCode: $code) { nationalCode fullName } }"


async def _a_national_code(province: Province) -> str:
    operator = province.token("operator", "province-operator")
    body = await _post(
        f"http://{province.gateways['urmia']}/graphql",
        "{ parcels(first: 1) { edges { node { owners { person { nationalCode } } } } } }",
        operator,
    )
    code: str = body["data"]["parcels"]["edges"][0]["node"]["owners"][0]["person"]["nationalCode"]
    return code


def _refusal(body: dict[str, Any]) -> tuple[Any, ...]:
    (error,) = body["errors"]
    extensions = error.get("extensions", {})
    return (error["message"], extensions.get("code"), extensions.get("scope"))


async def test_an_unauthorised_entity_fetch_is_refused_exactly_as_the_direct_query(
    province: Province,
) -> None:
    code = await _a_national_code(province)
    gateway = f"http://{province.gateways['urmia']}/graphql"
    representation = [{"__typename": "Person", "nationalCode": code}]
    # A counter (دفتر پیشخوان) may not read personal data, nor may the public.
    for token in (province.token("counter", "counter-7"), None):
        direct = await _post(gateway, PERSON, token, code=code)
        entities = await _post(gateway, ENTITIES, token, representations=representation)
        assert direct["data"] == {"person": None}
        assert entities["data"] == {"_entities": [None]}
        assert _refusal(entities) == _refusal(direct)
        assert _refusal(direct)[1:] == ("FORBIDDEN", "personal:read")
    # The router's own key composes, and reads nothing.
    router = province.token("router", "province-router")
    assert _refusal(await _post(gateway, ENTITIES, router, representations=representation))[1:] == (
        "FORBIDDEN",
        "personal:read",
    )
    # One allowed to read it gets the person either way.
    notary = province.token("notary", "notary-3")
    direct = await _post(gateway, PERSON, notary, code=code)
    entities = await _post(gateway, ENTITIES, notary, representations=representation)
    assert entities["data"]["_entities"] == [direct["data"]["person"]]
    assert direct["data"]["person"]["nationalCode"] == code
    # Each read is in the audit trail under its own request, whichever way it came.
    trail = await _post(
        gateway,
        "{ auditTrail(last: 20) { edges { node { action subjectType subjectId requestId } } } }",
        notary,
    )
    reads = [
        edge["node"]
        for edge in trail["data"]["auditTrail"]["edges"]
        if edge["node"]["subjectId"] == code and edge["node"]["action"] == "read"
    ]
    assert len({read["requestId"] for read in reads}) == 2, trail


async def test_through_the_router_the_caller_is_the_end_caller(province: Province) -> None:
    code = await _a_national_code(province)
    query = f'{{ municipality_urmia {{ person(nationalCode: "{code}") {{ fullName }} }} }}'
    refused = await _post(province.router, query, province.token("counter", "counter-7"))
    assert refused["data"]["municipality_urmia"]["person"] is None
    assert [e["extensions"]["code"] for e in refused["errors"]] == ["FORBIDDEN"]
    allowed = await _post(province.router, query, province.token("notary", "notary-3"))
    assert allowed["data"]["municipality_urmia"]["person"]["fullName"]
    # Without a credential of its own the caller is the public, not the router: it reads a
    # parcel (which the router's own key may not) and no person.
    public = await _post(province.router, query, None)
    assert public["data"]["municipality_urmia"]["person"] is None
    renewal = province.parcels["urmia"]["renewalCode"]
    parcel = f'{{ municipality_urmia {{ parcel(renewalCode: "{renewal}") {{ address }} }} }}'
    public = await _post(province.router, parcel, None)
    assert public["data"]["municipality_urmia"]["parcel"] is not None, public
    assert (await _post(province.router, parcel, province.token("router", "r")))["data"][
        "municipality_urmia"
    ]["parcel"] is None


async def test_a_parcel_entity_of_another_municipality_is_null(province: Province) -> None:
    query = """query ($representations: [_Any!]!) {
      _entities(representations: $representations) { ... on Parcel { municipality address } }
    }"""
    renewal = province.parcels["tabriz"]["renewalCode"]
    plate = province.parcels["tabriz"]["registryPlate"]
    body = await _post(
        f"http://{province.gateways['tabriz']}/graphql",
        query,
        province.token("counter", "counter-7"),
        representations=[
            {"__typename": "Parcel", "municipality": "tabriz", "renewalCode": renewal},
            {"__typename": "Parcel", "municipality": "urmia", "renewalCode": renewal},
            {"__typename": "Parcel", "municipality": "tabriz", "registryPlate": plate},
            {"__typename": "Parcel", "municipality": "tabriz", "renewalCode": "9-9-9-999"},
        ],
    )
    assert body["data"]["_entities"] == [
        {"municipality": "tabriz", "address": TABRIZ_ADDRESS},
        None,  # another municipality's
        {"municipality": "tabriz", "address": TABRIZ_ADDRESS},  # by its other key
        None,  # none such
    ]


async def test_service_sdl_answers_internal_callers_and_the_router_only(
    province: Province,
) -> None:
    gateway = f"http://{province.gateways['tabriz']}/graphql"
    query = "{ _service { sdl } }"
    for kind in ("router", "operator", "department:planning"):
        body = await _post(gateway, query, province.token(kind, f"sdl-{kind}"))
        sdl = body["data"]["_service"]["sdl"]
        assert '@key(fields: "municipality renewalCode")' in sdl
        assert "municipality_tabriz: Municipality!" in sdl
        assert "type Mutation" not in sdl
    for token in (None, province.token("notary", "notary-3"), province.token("bank", "bank-1")):
        body = await _post(gateway, query, token)
        assert body.get("data") in (None, {"_service": None}) or body["data"]["_service"] is None
        assert any(e.get("extensions", {}).get("code") == "FORBIDDEN" for e in body["errors"])


async def _compose(*subgraphs: tuple[str, Path]) -> tuple[int, str]:
    assert NODE is not None
    process = await asyncio.create_subprocess_exec(
        NODE,
        str(FEDERATION / "compose.mjs"),
        *(f"{name}={path}" for name, path in subgraphs),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_two_municipalities_compose_and_the_whole_schema_would_not(
    province: Province, tmp_path: Path
) -> None:
    """What CI checks (.ci/run), and why the router reads a federated view of the schema:
    two municipalities' full schemas, mutations and subscriptions included, do not compose."""
    for code in ("urmia", "tabriz"):
        settings = Settings(municipality_code=code)
        schema = build_schema(settings)
        (tmp_path / f"{code}.graphql").write_text(federated_sdl(schema))
        (tmp_path / f"{code}-whole.graphql").write_text(schema.as_str())
    heritage = FEDERATION / "heritage.graphql"
    status, said = await _compose(
        ("urmia", tmp_path / "urmia.graphql"),
        ("tabriz", tmp_path / "tabriz.graphql"),
        ("heritage", heritage),
    )
    assert status == 0, said
    status, said = await _compose(
        ("urmia", tmp_path / "urmia-whole.graphql"),
        ("tabriz", tmp_path / "tabriz-whole.graphql"),
    )
    assert status == 1
    assert "INVALID_FIELD_SHARING" in said


async def test_representations_are_checked_and_bounded(province: Province) -> None:
    gateway = f"http://{province.gateways['urmia']}/graphql"
    operator = province.token("operator", "province-operator")
    for representation in ({"__typename": "Region", "id": "1"}, {"nationalCode": "1"}, "x"):
        body = await _post(gateway, ENTITIES, operator, representations=[representation])
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body
    many = [{"__typename": "Person", "nationalCode": "0084575948"}] * 1001  # 100 × 10
    body = await _post(gateway, ENTITIES, operator, representations=many)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body
    assert "1000" in body["errors"][0]["message"]
