"""The response cache (gateway/guards/response_cache.py), through GraphQL over HTTP: a hit is
the same JSON with no SQL statement, PRIVATE entries are per principal and PUBLIC ones per
visibility, audited reads and errors are never kept, entries expire by the (injected) clock,
and two app instances share entries through Redis. Then the policy read from documents."""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import GraphQLObjectType, parse

from db.engines import Databases
from gateway.access.principals import PrincipalKind
from gateway.edge.app import create_app
from gateway.guards.response_cache import (
    CachePolicy,
    CacheScope,
    Entry,
    Freshness,
    MemoryResponseStore,
    field_hint,
    operation_policy,
)
from gateway.schema import build_schema
from gateway.settings import Settings
from tests.conftest import Backend, make_backend, mint_key, redis_url, settings_for

AGES = {Freshness.PLANNING: 300, Freshness.DUES: 10, Freshness.CATALOGUE: 600}
OVERRIDES: dict[str, Any] = {
    "response_cache": True,
    "response_cache_planning_max_age_s": AGES[Freshness.PLANNING],
    "response_cache_dues_max_age_s": AGES[Freshness.DUES],
    "response_cache_catalogue_max_age_s": AGES[Freshness.CATALOGUE],
    "rate_limit_public": "100000/minute",
    "rate_limit_partner": "100000/minute",
    "rate_limit_internal": "100000/minute",
}

LOOKUP = """query Lookup($code: RenewalCode!) {
  parcel(renewalCode: $code) {
    renewalCode address landUse
    region { name } district { number region { number } }
    dues { total outstanding items { kind amount } }
  }
}"""
PLANNING_ONLY = """query Where($code: RenewalCode!) {
  parcel(renewalCode: $code) { renewalCode region { name } }
}"""
OWNERS = """query Owners($code: RenewalCode!) {
  parcel(renewalCode: $code) { renewalCode owners { nationalCode } }
}"""
OWNERS_WITH_SHARES = """query Shares($code: RenewalCode!) {
  parcel(renewalCode: $code) { renewalCode owners { nationalCode share } }
}"""


class Wall:
    """The app's wall clock, moved by the test."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture(scope="module")
async def backend(tmp_path_factory: pytest.TempPathFactory) -> Backend:
    folder: Path = tmp_path_factory.mktemp("response-cache")
    made, _ = await make_backend("sqlite", folder, parcels=12)
    return made


@pytest.fixture(scope="module")
async def keys(backend: Backend) -> dict[str, str]:
    databases = Databases(backend.urls)
    try:
        return {
            name: (await mint_key(databases, kind, f"Response cache {name}"))[1]
            for name, kind in (
                ("counter_a", PrincipalKind.COUNTER),
                ("counter_b", PrincipalKind.COUNTER),
                ("notary", PrincipalKind.NOTARY),
                ("operator", PrincipalKind.OPERATOR),
            )
        }
    finally:
        await databases.dispose()


@contextlib.asynccontextmanager
async def serve(backend: Backend, wall: Wall, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings_for(backend, **{**OVERRIDES, **overrides}), wall_clock=wall)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway.test"
        ) as http,
    ):
        yield http


async def ask(
    http: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any],
    key: str | None = None,
    *,
    cost: bool = True,
) -> httpx.Response:
    headers = {"X-Gateway-Debug": "cost"} if cost else {}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    response = await http.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response


def statements(response: httpx.Response) -> int:
    count: int = response.json()["extensions"]["cost"]["sqlStatements"]
    return count


@pytest.fixture(scope="module")
async def codes(backend: Backend) -> list[str]:
    async with serve(backend, Wall(), response_cache=False) as http:
        body = (
            await ask(http, "{ parcels(first: 5) { edges { node { renewalCode } } } }", {})
        ).json()
    found = [edge["node"]["renewalCode"] for edge in body["data"]["parcels"]["edges"]]
    assert len(found) == 5
    return found


async def test_a_hit_is_the_same_json_without_a_statement(
    backend: Backend, keys: dict[str, str], codes: list[str]
) -> None:
    wall = Wall()
    async with serve(backend, wall) as http:
        variables = {"code": codes[0]}
        first = await ask(http, LOOKUP, variables, keys["operator"])
        assert statements(first) > 0
        # Dues are the freshest data it selects: their max age is the answer's.
        assert first.headers["cache-control"] == f"private, max-age={AGES[Freshness.DUES]}"
        second = await ask(http, LOOKUP, variables, keys["operator"])
        assert statements(second) == 0
        assert second.json()["data"] == first.json()["data"]
        assert second.json()["data"]["parcel"]["dues"]["items"]
        # Without the cost report, the bytes of the whole answer are the same too.
        plain = [await ask(http, LOOKUP, variables, keys["operator"], cost=False) for _ in "ab"]
        assert plain[0].content == plain[1].content
        assert plain[0].json()["data"] == first.json()["data"]
        # Other variables are another entry.
        other = await ask(http, LOOKUP, {"code": codes[1]}, keys["operator"])
        assert statements(other) > 0
        assert other.json()["data"]["parcel"]["renewalCode"] == codes[1]


async def test_an_anonymous_public_answer_is_public_for_http_caches(
    backend: Backend, codes: list[str]
) -> None:
    async with serve(backend, Wall()) as http:
        first = await ask(http, PLANNING_ONLY, {"code": codes[0]})
        assert first.headers["cache-control"] == f"public, max-age={AGES[Freshness.PLANNING]}"
        assert statements(first) > 0
        second = await ask(http, PLANNING_ONLY, {"code": codes[0]})
        assert statements(second) == 0


async def test_private_entries_are_the_principals_own(
    backend: Backend, keys: dict[str, str], codes: list[str]
) -> None:
    async with serve(backend, Wall()) as http:
        variables = {"code": codes[2]}
        a1 = await ask(http, OWNERS, variables, keys["counter_a"])
        assert a1.headers["cache-control"] == f"private, max-age={AGES[Freshness.PLANNING]}"
        assert a1.json()["data"]["parcel"]["owners"]  # masked national IDs: not audited
        assert a1.json()["extensions"]["cost"]["auditRecords"] == 0
        a2 = await ask(http, OWNERS, variables, keys["counter_a"])
        assert statements(a1) > 0
        assert statements(a2) == 0
        # Another counter, with the same scopes, never gets counter A's PRIVATE entry.
        b1 = await ask(http, OWNERS, variables, keys["counter_b"])
        assert statements(b1) > 0
        assert b1.json()["data"] == a1.json()["data"]


async def test_public_entries_are_shared_only_by_callers_who_see_the_same(
    backend: Backend, keys: dict[str, str], codes: list[str]
) -> None:
    async with serve(backend, Wall()) as http:
        variables = {"code": codes[3]}
        a = await ask(http, PLANNING_ONLY, variables, keys["counter_a"])
        assert statements(a) > 0
        assert a.headers["cache-control"] == f"private, max-age={AGES[Freshness.PLANNING]}"
        # Same kind and scopes: counter B is answered from counter A's PUBLIC entry.
        b = await ask(http, PLANNING_ONLY, variables, keys["counter_b"])
        assert statements(b) == 0
        # The public and a notary have other scopes: their own entries.
        anonymous = await ask(http, PLANNING_ONLY, variables)
        notary = await ask(http, PLANNING_ONLY, variables, keys["notary"])
        assert statements(anonymous) > 0
        assert statements(notary) > 0
        assert a.json()["data"] == b.json()["data"] == anonymous.json()["data"]


async def test_audited_reads_are_never_cached(
    backend: Backend, keys: dict[str, str], codes: list[str]
) -> None:
    async with serve(backend, Wall()) as http:
        variables = {"code": codes[4]}
        for _ in range(2):
            response = await ask(http, OWNERS_WITH_SHARES, variables, keys["notary"])
            cost = response.json()["extensions"]["cost"]
            # Each answer wrote its audit records and read the database again.
            assert cost["auditRecords"] > 0
            assert cost["sqlStatements"] > 0
            assert response.headers["cache-control"] == "no-store"


async def test_errors_are_never_cached(backend: Backend) -> None:
    async with serve(backend, Wall()) as http:
        # A cacheable shape with a refused argument: an error, so no-store, both times.
        bad = '{ parcel(renewalCode: "1-1-1-1", registryPlate: "1-1/1") { address } }'
        for _ in range(2):
            response = await ask(http, bad, {})
            assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
            assert response.headers["cache-control"] == "no-store"


async def test_entries_expire_by_the_clock(backend: Backend, codes: list[str]) -> None:
    wall = Wall()
    age = AGES[Freshness.PLANNING]
    async with serve(backend, wall) as http:
        variables = {"code": codes[1]}
        assert statements(await ask(http, PLANNING_ONLY, variables)) > 0
        wall.advance(age - 1)
        still = await ask(http, PLANNING_ONLY, variables)
        assert statements(still) == 0
        assert still.headers["cache-control"] == "public, max-age=1"  # what is left of it
        wall.advance(1)
        expired = await ask(http, PLANNING_ONLY, variables)
        assert statements(expired) > 0
        assert expired.headers["cache-control"] == f"public, max-age={age}"


async def test_uncacheable_operations_say_no_store(
    backend: Backend, keys: dict[str, str], codes: list[str]
) -> None:
    async with serve(backend, Wall()) as http:
        catalogue = await ask(http, "{ serviceGroups { code } }", {})
        assert catalogue.headers["cache-control"] == f"public, max-age={AGES[Freshness.CATALOGUE]}"
        # Nothing hinted selected; a root field without a hint: not kept, no-store.
        for query in (
            "{ __typename }",
            '{ serviceGroups { code } node(id: "UGFyY2VsOjE=") { id } }',
        ):
            for _ in range(2):
                response = await ask(http, query, {})
                assert response.headers["cache-control"] == "no-store"
        # A mutation never, whatever it selects.
        mutation = "mutation { __typename }"
        response = await http.post(
            "/graphql",
            json={"query": mutation},
            headers={"Authorization": f"Bearer {keys['operator']}"},
        )
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"


async def test_two_instances_share_entries_through_redis(
    backend: Backend, keys: dict[str, str], codes: list[str]
) -> None:
    url = redis_url()
    if url is None:
        pytest.skip("no Redis on 127.0.0.1:6379 (CI has one)")
    shared = {"redis_url": url, "redis_key_prefix": f"gwtest:p3:{uuid.uuid4().hex}:"}
    wall = Wall()
    async with serve(backend, wall, **shared) as one, serve(backend, wall, **shared) as two:
        variables = {"code": codes[0]}
        first = await ask(one, LOOKUP, variables, keys["operator"])
        assert statements(first) > 0
        second = await ask(two, LOOKUP, variables, keys["operator"])
        assert statements(second) == 0
        assert second.json()["data"] == first.json()["data"]
        # The other instance's entries expire by the clock too.
        wall.advance(AGES[Freshness.DUES])
        assert statements(await ask(two, LOOKUP, variables, keys["operator"])) > 0


async def test_a_batch_answers_with_the_most_restrictive_header(
    backend: Backend, codes: list[str]
) -> None:
    where = {"query": PLANNING_ONLY, "variables": {"code": codes[0]}}
    async with serve(backend, Wall()) as http:
        both = [where, {"query": "{ serviceGroups { code } }"}]
        response = await http.post("/graphql", json=both)
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == f"public, max-age={AGES[Freshness.PLANNING]}"
        dues = {"query": LOOKUP.replace("Lookup", "Dues"), "variables": {"code": codes[0]}}
        response = await http.post("/graphql", json=[where, dues])
        assert response.headers["cache-control"] == f"public, max-age={AGES[Freshness.DUES]}"
        response = await http.post("/graphql", json=[where, {"query": "{ __typename }"}])
        assert response.headers["cache-control"] == "no-store"


async def test_a_redis_that_fails_is_a_miss(backend: Backend, codes: list[str]) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = {"redis_url": f"redis://127.0.0.1:{port}/0"}
    async with serve(backend, Wall(), **down) as http:
        for _ in range(2):
            response = await ask(http, PLANNING_ONLY, {"code": codes[2]})
            assert response.json()["data"]["parcel"]["renewalCode"] == codes[2]
            assert statements(response) > 0


# --- the policy read from a document --------------------------------------------------------


@pytest.fixture(scope="module")
def schema() -> Any:
    return build_schema(Settings())._schema


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ("{ parcel(id: 1) { address } }", CachePolicy(300)),
        ("{ parcel(id: 1) { address dues { total } } }", CachePolicy(10)),
        ("{ parcel(id: 1) { owners { share } } }", CachePolicy(300, CacheScope.PRIVATE)),
        # A fragment's fields count as the field's own.
        (
            "{ parcel(id: 1) { ...P } } fragment P on Parcel { address dues { paid } }",
            CachePolicy(10),
        ),
        ("{ parcel(id: 1) { ... on Parcel { region { name } } } }", CachePolicy(300)),
        ("{ serviceGroups { code } services { questions { values { key } } } }", CachePolicy(600)),
        # An object without a hint (a deed, an owner's person, an agency's address), a root
        # field without one, introspection, a mutation: not cached.
        ("{ parcel(id: 1) { deed { __typename } } }", CachePolicy(0)),
        ("{ parcel(id: 1) { owners { person { id } } } }", CachePolicy(0)),
        ("{ parcel(id: 1) { postalAddress { __typename } } }", CachePolicy(0)),
        ("{ parcel(id: 1) { address } node(id: 1) { id } }", CachePolicy(0)),
        ("{ __typename }", CachePolicy(0)),
        ("{ __schema { queryType { name } } }", CachePolicy(0)),
        ("mutation { __typename }", CachePolicy(0)),
    ],
)
def test_the_policy_is_the_least_of_the_selected_hints(
    schema: Any, document: str, expected: CachePolicy
) -> None:
    assert operation_policy(schema, parse(document), None, AGES) == expected


def test_the_named_operation_is_the_one_read(schema: Any) -> None:
    document = parse(
        "query A { parcel(id: 1) { address } } query B { parcel(id: 1) { deed { __typename } } }"
    )
    assert operation_policy(schema, document, "A", AGES) == CachePolicy(300)
    assert operation_policy(schema, document, "B", AGES) == CachePolicy(0)


async def test_the_memory_store_is_bounded_by_entries_and_bytes() -> None:
    store = MemoryResponseStore(max_entries=3, max_bytes=100)
    for name in "abc":
        await store.put(name, Entry(b"x" * 30, 0.0), 1)
    await store.get("a")  # used: the least recently used is now b
    await store.put("d", Entry(b"x" * 30, 0.0), 1)  # 120 bytes: b goes
    assert await store.get("b") is None
    assert [await store.get(n) is not None for n in "acd"] == [True, True, True]
    assert store.bytes == 90
    await store.put("e", Entry(b"x" * 10, 0.0), 1)  # four entries: the oldest goes
    assert len(store) == 3
    assert store.bytes == 70


def test_the_hinted_fields_are_the_ones_the_readme_names(schema: Any) -> None:
    # A tripwire: a hint on another field shares its answers between callers (PUBLIC) or
    # keeps them per principal (PRIVATE). Adding one means reading its resolvers for what
    # else than scopes and the principal's kind, department and organisation it reads (an
    # id, a row rule by owner, personal data), then naming it here and in the README.
    hinted = {
        (type_name, field_name, hint.freshness, hint.scope)
        for type_name, named in schema.type_map.items()
        if isinstance(named, GraphQLObjectType) and not type_name.startswith("__")
        for field_name, field in named.fields.items()
        if (hint := field_hint(field)) is not None
    }
    planning, dues, catalogue = Freshness.PLANNING, Freshness.DUES, Freshness.CATALOGUE
    public, private = CacheScope.PUBLIC, CacheScope.PRIVATE
    assert hinted == {
        ("Query", "parcel", planning, public),
        ("Query", "parcels", planning, public),
        ("ParcelConnection", "edges", planning, public),
        ("ParcelConnection", "pageInfo", planning, public),
        ("ParcelEdge", "node", planning, public),
        ("Parcel", "region", planning, public),
        ("Parcel", "district", planning, public),
        ("Parcel", "buildings", planning, public),
        ("Parcel", "permits", planning, public),
        ("Parcel", "certificates", planning, public),
        ("Parcel", "violations", planning, public),
        ("Parcel", "owners", planning, private),
        ("Parcel", "dues", dues, public),
        ("Dues", "items", dues, public),
        ("District", "region", planning, public),
        ("Certificate", "building", planning, public),
        ("Violation", "ruling", planning, public),
        ("Query", "services", catalogue, public),
        ("Query", "serviceGroups", catalogue, public),
        ("CatalogueService", "questions", catalogue, public),
        ("CatalogueService", "group", catalogue, public),
        ("ServiceQuestion", "values", catalogue, public),
    }
