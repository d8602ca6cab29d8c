"""Query shape: an operation's size once its fragments are spread, look-ahead that reads each
fragment once, nested lists loaded once per level, introspection depth, and execution that
shares the event loop and stops at its time budget."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import AsyncIterator, Generator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest
import strawberry
import uvicorn
from graphql import FragmentDefinitionNode, OperationDefinitionNode, get_introspection_query, parse
from graphql import validate as graphql_validate
from starlette.applications import Starlette

from gateway.context import Info
from gateway.edge.app import create_app
from gateway.guards.execution import ExecutionPolicy, shared_loop_execution
from gateway.guards.limits import MAX_OF_TYPE_DEPTH, operation_limits
from gateway.schema import build_schema
from gateway.schema.prefetch import selected_names
from gateway.settings import Settings
from tests.clocks import Ticking
from tests.conftest import Backend, GraphQLClient, settings_for
from tests.gateway.test_parcels import PARCEL_FIELDS

ROOT = Path(__file__).resolve().parents[2]


def fan_out(levels: int, leaf: str = "id") -> str:
    """The attack from issue 7: each fragment spreads the next twice (2**levels copies)."""
    fragments = "".join(
        f"fragment F{i} on Parcel {{ id ...F{i + 1} ...F{i + 1} }} " for i in range(levels)
    )
    return (
        "{ parcels(first: 1) { edges { node { ...F0 } } } } "
        + fragments
        + f"fragment F{levels} on Parcel {{ {leaf} }}"
    )


@contextlib.asynccontextmanager
async def serve_in_process(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        yield http


class _Server(uvicorn.Server):
    """uvicorn on its own thread and event loop, telling the test when it listens."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.listening.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the test runner keeps its signals


@contextlib.asynccontextmanager
async def serve_on_loopback(app: Starlette) -> AsyncIterator[str]:
    """A real server on 127.0.0.1, in a thread with its own event loop: the test's requests
    reach it as any client's would, and what holds its loop cannot hold the test's."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    server = _Server(uvicorn.Config(app, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        started = await asyncio.to_thread(server.listening.wait, 60)
        assert started, "the server did not start"
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await asyncio.to_thread(thread.join, 60)
        sock.close()


def refusal(body: dict[str, Any]) -> dict[str, Any]:
    assert body.get("data") is None, body
    assert len(body["errors"]) == 1, body["errors"]
    extensions: dict[str, Any] = body["errors"][0]["extensions"]
    return extensions


# --- item 1: fragment fan-out ---------------------------------------------------------------


async def test_thirty_levels_of_fragment_fan_out_are_refused_by_their_size_while_healthz_answers(
    backend: Backend,
) -> None:
    app = create_app(settings_for(backend))
    async with serve_on_loopback(app) as url, httpx.AsyncClient(base_url=url, timeout=60) as http:
        attacks = [
            asyncio.create_task(http.post("/graphql", json={"query": fan_out(30)}))
            for _ in range(4)
        ]
        health = await http.get("/healthz")
        answers = await asyncio.gather(*attacks)
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    for answer in answers:
        assert answer.status_code == 200
        body = answer.json()
        assert refusal(body) == {"code": "QUERY_TOO_COMPLEX", "limit": "fields", "max": 3000}
        assert "fragments are spread" in body["errors"][0]["message"]


async def test_a_fan_out_under_the_limit_answers_as_the_plain_query_does(
    gql: GraphQLClient,
) -> None:
    # 1,538 fields once spread, under the limit of 3000.
    spread = await gql(
        fan_out(9, leaf="owners { share }").replace("first: 1", "first: 3"), cost=True
    )
    plain = await gql("{ parcels(first: 3) { edges { node { id owners { share } } } } }", cost=True)
    assert "errors" not in spread, spread["errors"]
    assert spread["data"] == plain["data"]
    assert any(edge["node"]["owners"] for edge in plain["data"]["parcels"]["edges"])
    assert (
        spread["extensions"]["cost"]["sqlStatements"]
        == plain["extensions"]["cost"]["sqlStatements"]
    )


class _CountingFragments(dict[str, FragmentDefinitionNode]):
    def __init__(self, fragments: dict[str, FragmentDefinitionNode]) -> None:
        super().__init__(fragments)
        self.reads: list[str] = []

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        self.reads.append(name)
        return super().get(name, default)


def _info(
    document: str, variables: dict[str, Any] | None = None
) -> tuple[Info, _CountingFragments]:
    """What a resolver of the document's first root field sees of it."""
    parsed = parse(document)
    operation = next(d for d in parsed.definitions if isinstance(d, OperationDefinitionNode))
    fragments = _CountingFragments(
        {d.name.value: d for d in parsed.definitions if isinstance(d, FragmentDefinitionNode)}
    )
    raw = SimpleNamespace(
        field_nodes=[operation.selection_set.selections[0]],
        fragments=fragments,
        variable_values=variables or {},
    )
    return cast(Info, SimpleNamespace(_raw_info=raw)), fragments


def test_look_ahead_reads_each_fragment_once_however_often_it_is_spread() -> None:
    levels = 25  # 2**25 copies for a walk that expands every spread
    info, fragments = _info(fan_out(levels, leaf="owners { share } dues { total }"))
    assert selected_names(info, ("edges", "node")) == {"id", "owners", "dues"}
    assert sorted(fragments.reads) == sorted(f"F{i}" for i in range(levels + 1))


def test_look_ahead_follows_skip_and_include() -> None:
    document = (
        "query($with: Boolean!) { parcels { edges { node { id"
        " owners @skip(if: true) { share } dues @include(if: $with) { total }"
        " ... on Parcel @include(if: false) { buildings { floors } }"
        " ...Rest @skip(if: $with) } } } }"
        " fragment Rest on Parcel { permits { number } }"
    )
    with_dues, _ = _info(document, {"with": True})
    assert selected_names(with_dues, ("edges", "node")) == {"id", "dues"}
    without, _ = _info(document, {"with": False})
    assert selected_names(without, ("edges", "node")) == {"id", "permits"}


async def test_a_skipped_relation_costs_no_statement(gql: GraphQLClient) -> None:
    query = (
        "query($owners: Boolean!) { parcels(first: 20) { edges { node { id"
        " owners @include(if: $owners) { share } } } } }"
    )
    without = await gql(query, {"owners": False}, cost=True)
    with_owners = await gql(query, {"owners": True}, cost=True)
    assert "owners" not in without["data"]["parcels"]["edges"][0]["node"]
    assert (
        with_owners["extensions"]["cost"]["sqlStatements"]
        == without["extensions"]["cost"]["sqlStatements"] + 1
    )


def _documented_queries() -> list[str]:
    import re

    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```graphql\n(.*?)```", readme, flags=re.S)
    inline = [q for q in re.findall(r"`(\{ [^`]*\})`", readme) if q.startswith("{ ")]
    bench = [path.read_text() for path in sorted((ROOT / "bench" / "queries").glob("*.graphql"))]
    assert blocks
    assert bench
    return [*blocks, *inline, *bench, get_introspection_query(descriptions=True)]


def test_documented_queries_and_introspection_stay_well_under_the_field_limit() -> None:
    settings = Settings()
    quarter = operation_limits(
        settings.max_query_depth, 10_000, max_root_fields=None, max_fields=settings.max_fields // 4
    )
    schema = build_schema(settings)._schema
    for document in _documented_queries():
        assert graphql_validate(schema, parse(document), [quarter]) == [], document


# --- item 11: nested lists, one statement per relation and level ----------------------------

CHAIN = ("person(nationalCode: $code)", "parcels", "owners", "person")


def chain(depth: int) -> str:
    """person → parcels → owners → person → … down to `depth` levels, with ids along it."""
    names = [CHAIN[0], *(CHAIN[1 + i % 3] for i in range(depth - 2))]
    leaves = {"person": "id", "parcels": "id", "owners": "share"}
    opening = " ".join(f"{name} {{ {leaves[name.split('(')[0]]}" for name in names)
    return f"query($code: NationalCode!) {{ {opening}{' }' * len(names)} }}"


def statements_for_shape(depth: int) -> int:
    """One look-up of the person; one statement for each `parcels` and each `owners` level."""
    fields = [CHAIN[0], *(CHAIN[1 + i % 3] for i in range(depth - 2))]
    return 1 + sum(name in ("parcels", "owners") for name in fields)


def _people_by_level(person: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """The people at each `person` level of a chain's answer."""
    levels = []
    people = [person]
    while people:
        levels.append(people)
        parcels = [parcel for p in people for parcel in p.get("parcels", [])]
        people = [o["person"] for parcel in parcels for o in parcel.get("owners", [])]
    return levels


def _new_parcels_at_every_level(person: dict[str, Any]) -> bool:
    """Whether each `parcels` level of the chain reaches a parcel no earlier level did: only
    then must it load something (the request's loaders remember what they loaded)."""
    seen: set[str] = set()
    for people in _people_by_level(person):
        ids = {parcel["id"] for p in people for parcel in p.get("parcels", [])}
        if "parcels" in people[0] and not ids - seen:
            return False
        seen |= ids
    return True


async def test_statements_at_every_depth_depend_on_the_shape_not_on_what_a_person_owns(
    gql: GraphQLClient,
) -> None:
    owned: dict[str, int] = {}
    after = None
    while True:
        page = (
            await gql(
                "query($after: String) { parcels(first: 100, after: $after) { edges { node {"
                " owners { nationalCode person { parcels { id } } } } }"
                " pageInfo { hasNextPage endCursor } } }",
                {"after": after},
            )
        )["data"]["parcels"]
        for edge in page["edges"]:
            for owner in edge["node"]["owners"]:
                owned[owner["nationalCode"]] = len(owner["person"]["parcels"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]

    async def growing(codes: list[str]) -> str:
        for code in codes:
            body = await gql(chain(12), {"code": code})
            person = body["data"]["person"]
            # Several people at a level: loading per person would show in the count.
            if _new_parcels_at_every_level(person) and max(map(len, _people_by_level(person))) > 1:
                return code
        raise AssertionError("no such person in the demo data")

    one = await growing(sorted(code for code, n in owned.items() if n == 1))
    several = await growing(sorted((code for code, n in owned.items() if n >= 3), key=owned.get))
    assert owned[several] >= 3
    for depth in range(2, 13):
        counts = [
            (await gql(chain(depth), {"code": code}, cost=True))["extensions"]["cost"][
                "sqlStatements"
            ]
            for code in (one, several)
        ]
        assert counts == [statements_for_shape(depth)] * 2, depth


# --- item 13: introspection depth -----------------------------------------------------------


def of_type(depth: int) -> str:
    return '{ __type(name: "Parcel") { name ' + "ofType { name " * depth + "}" * depth + " } }"


async def test_of_type_nested_fifty_deep_is_refused(gql: GraphQLClient) -> None:
    assert refusal(await gql(of_type(50))) == {
        "code": "QUERY_TOO_COMPLEX",
        "limit": "introspectionDepth",
        "max": MAX_OF_TYPE_DEPTH,
    }
    deepest = await gql(of_type(MAX_OF_TYPE_DEPTH))
    assert deepest["data"]["__type"]["name"] == "Parcel"
    assert refusal(await gql(of_type(MAX_OF_TYPE_DEPTH + 1)))["limit"] == "introspectionDepth"


async def test_the_standard_introspection_query_still_answers(gql: GraphQLClient) -> None:
    body = await gql(get_introspection_query(descriptions=True))
    assert "errors" not in body, body["errors"]
    assert "Parcel" in {t["name"] for t in body["data"]["__schema"]["types"]}
    deeper = await gql(get_introspection_query(type_depth=MAX_OF_TYPE_DEPTH + 1))
    assert refusal(deeper)["limit"] == "introspectionDepth"


# --- the event loop and the time budget ------------------------------------------------------


@pytest.fixture(scope="module")
async def breaking(backend: Backend) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway with a clock that says every object's slice is used up: each object's
    fields wait for the event loop's next turn."""
    app = create_app(
        settings_for(backend, loop_slice_ms=0.5, operation_budget_s=1e9), clock=Ticking(0.001)
    )
    async with serve_in_process(app) as http:
        yield http


async def test_a_turn_of_the_loop_before_every_object_changes_neither_answer_nor_statements(
    gql: GraphQLClient, breaking: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    sliced = GraphQLClient(breaking, keys["operator"])
    page = f"{{ parcels(first: 100) {{ edges {{ node {{ {PARCEL_FIELDS} }} }} }} }}"
    code = "0084575948"
    for query, variables in ((page, None), (chain(12), {"code": code})):
        expected = await gql(query, variables, cost=True)
        answered = await sliced(query, variables, cost=True)
        assert "errors" not in answered, answered["errors"]
        assert answered["data"] == expected["data"]
        assert (
            answered["extensions"]["cost"]["sqlStatements"]
            == expected["extensions"]["cost"]["sqlStatements"]
        )


async def test_an_operation_past_its_time_budget_gets_one_error_and_no_data(
    backend: Backend, keys: dict[str, str]
) -> None:
    # Every read of the clock is a second: the fifteenth object's fields are past the budget.
    app = create_app(settings_for(backend, operation_budget_s=15), clock=Ticking(1.0))
    async with serve_in_process(app) as http:
        operator = GraphQLClient(http, keys["operator"])
        body = await operator(
            "{ parcels(first: 50) { edges { node { id owners { share person { id } }"
            " buildings { floors } dues { total } } } } }"
        )
        assert refusal(body) == {"code": "QUERY_TOO_COMPLEX", "limit": "time", "max": 15}
        assert body["errors"][0]["path"][:2] == ["parcels", "edges"]
        assert "time budget of 15 s" in body["errors"][0]["message"]
        # The next operation has its own budget.
        small = await operator("{ viewer { kind } }")
        assert small == {"data": {"viewer": {"kind": "operator"}}}


class _Turns:
    """The event loop's turns, counted by a task that takes one at every turn, and the count
    each resolver saw when it ran."""

    def __init__(self) -> None:
        self.count = 0
        self.seen: list[int] = []


_turns = _Turns()


@strawberry.type
class _Item:
    number: int

    @strawberry.field
    def items(self) -> list[_Item]:
        _turns.seen.append(_turns.count)
        return [_Item(number=self.number * 10 + i) for i in range(10)]


@strawberry.type
class _Query:
    @strawberry.field
    def items(self) -> list[_Item]:
        return [_Item(number=i) for i in range(10)]


async def _run_counting_turns(slice_s: float) -> tuple[Any, set[int]]:
    """Executes 1,110 objects, all resolved synchronously; the turns their resolvers saw."""
    schema = strawberry.Schema(
        query=_Query,
        execution_context_class=shared_loop_execution(
            ExecutionPolicy(budget_s=1e9, slice_s=slice_s, clock=Ticking(0.001))
        ),
    )
    done = asyncio.Event()

    async def count_turns() -> None:
        while not done.is_set():
            await asyncio.sleep(0)
            _turns.count += 1

    counter = asyncio.create_task(count_turns())
    _turns.seen.clear()
    result = await schema.execute("{ items { number items { number items { number } } } }")
    done.set()
    await counter
    assert len(_turns.seen) == 110
    return result, set(_turns.seen)


async def test_execution_gives_the_event_loop_turns_between_slices() -> None:
    held, turns_when_held = await _run_counting_turns(slice_s=1e9)
    sliced, turns_when_sliced = await _run_counting_turns(slice_s=0.0025)
    assert held.errors is None
    assert sliced.errors is None
    assert sliced.data == held.data
    assert len(turns_when_held) == 1  # without slices, no other task ran meanwhile
    assert len(turns_when_sliced) >= 3  # with them, others ran between the objects
