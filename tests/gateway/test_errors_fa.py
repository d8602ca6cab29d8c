"""Errors in Persian with `Accept-Language: fa`: every documented code answered in both
languages with the same code and extensions; every message the code raises has its Persian
(read from the source, so a new message without one fails here, named); and the language a
caller asked for is chosen as documented."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import functools
import json
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from graphql import GraphQLError
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from connectors.errors import AgencyRejected, AgencyTimeout
from db.engines import Databases
from gateway.access.principals import PrincipalKind
from gateway.edge.app import create_app
from gateway.edge.errors import format_error
from gateway.edge.language import LANGUAGE, preferred_language
from gateway.errors import ERROR_CODES, GatewayError
from gateway.guards.documents import PersistedQueryNotFound
from gateway.messages_fa import (
    BY_CODE,
    GENERAL,
    PERSIAN,
    VERBATIM,
    parts,
    persian_message,
    to_persian,
)
from tests.conftest import Backend, make_backend, mint_key, settings_for

ROOT = Path(__file__).resolve().parents[2]
FA = {"Accept-Language": "fa"}
# Persian letters (not digits alone): a message shown to a Persian reader has them.
_PERSIAN_LETTERS = re.compile(r"[\u0600-\u06FF]")


def persian(text: str) -> bool:
    return bool(_PERSIAN_LETTERS.search(text))


# --- every message the code raises has its Persian -------------------------------------------

# Where a message a client may read is written: the first argument of these calls (and of
# every error class's constructor), or the second (refusals, which take a status first).
_REFUSALS = {
    "refusal": 1,
    "error_response": 1,
    "bad_request": 0,
    "client_error": 0,
    "Open311Error": 1,  # Open311's own error body (gateway/edge/open311/errors.py)
    "not_found": 0,
}
_ERROR_ROOTS = {"GatewayError", "AgencyError", "InvalidIdentifier"}
_SOURCES = ("gateway", "connectors", "identifiers")


def _template(node: ast.expr) -> str | None:
    """A message's id: its text, each part of an f-string as `{expression}`."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            str(value.value)
            if isinstance(value, ast.Constant)
            else "{" + ast.unparse(value.value) + "}"
            for value in node.values
            if isinstance(value, ast.Constant | ast.FormattedValue)
        )
    return None  # a variable: its text is written, and read, elsewhere


def _name(call: ast.Call) -> str | None:
    function = call.func
    if isinstance(function, ast.Name):
        return function.id
    return function.attr if isinstance(function, ast.Attribute) else None


@functools.cache
def raised_messages() -> dict[str, str]:
    """Every message template in the source → where it is (the first place)."""
    trees = {
        path: ast.parse(path.read_text(), filename=str(path))
        for source in _SOURCES
        for path in sorted((ROOT / source).rglob("*.py"))
    }
    # The error classes: the roots and every class deriving from one, by name.
    errors = set(_ERROR_ROOTS)
    classes = [node for tree in trees.values() for node in ast.walk(tree)]
    grown = True
    while grown:
        grown = False
        for node in classes:
            if isinstance(node, ast.ClassDef) and node.name not in errors:
                bases = {
                    b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases
                }
                if bases & errors:
                    errors.add(node.name)
                    grown = True
    found: dict[str, str] = {}

    def note(template: str | None, path: Path, line: int) -> None:
        # A template of parts alone ("{str(exc).capitalize()}.") passes a message through.
        if template is not None and re.search(r"[A-Za-z]", re.sub(r"\{[^{}]*\}", "", template)):
            found.setdefault(template, f"{path.relative_to(ROOT)}:{line}")

    for path, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name in errors:
                for statement in node.body:  # agencies' summaries ("agency unavailable")
                    targets = (
                        statement.targets
                        if isinstance(statement, ast.Assign)
                        else [statement.target]
                        if isinstance(statement, ast.AnnAssign)
                        else []
                    )
                    value = getattr(statement, "value", None)
                    if [ast.unparse(t) for t in targets] == ["summary"] and isinstance(
                        value, ast.Constant
                    ):
                        note(str(value.value), path, statement.lineno)
                for inner in ast.walk(node):  # super().__init__("…") inside an error class
                    if (
                        isinstance(inner, ast.Call)
                        and _name(inner) == "__init__"
                        and inner.args
                        and isinstance(inner.func, ast.Attribute)
                        and isinstance(inner.func.value, ast.Call)
                    ):
                        note(_template(inner.args[0]), path, inner.lineno)
            if not isinstance(node, ast.Call):
                continue
            name = _name(node)
            if name == "InvalidIdentifier" and len(node.args) == 2:
                kind, reason = node.args  # "invalid <kind>: <reason>"
                if isinstance(kind, ast.Constant) and isinstance(kind.value, str):
                    note(kind.value.replace("_", " "), path, node.lineno)
                note(_template(reason), path, node.lineno)
            elif name in errors and node.args:
                note(_template(node.args[0]), path, node.lineno)
            elif name in _REFUSALS and len(node.args) > _REFUSALS[name]:
                note(_template(node.args[_REFUSALS[name]]), path, node.lineno)
            elif name == "GraphQLError" and node.args:
                note(_template(node.args[0]), path, node.lineno)
            elif name == "ValueError" and node.args and "schema" in path.parts:
                # A scalar refusing a value: "'<field>' is invalid: <reason>." (edge/errors.py)
                note(_template(node.args[0]), path, node.lineno)
    return found


def _skeleton(template: str) -> str:
    """A template with its parts unnamed, so that renaming a variable keeps its id."""
    return re.sub(r"\{(?:[^{}]|\{[^{}]*\})*\}", "{}", template)


def test_every_message_the_gateway_raises_has_its_persian() -> None:
    known = {_skeleton(english) for english in PERSIAN}
    missing = {
        template: where
        for template, where in raised_messages().items()
        if _skeleton(template) not in known
    }
    lines = [f"    {template!r}: '…',  # {where}" for template, where in sorted(missing.items())]
    assert not missing, (
        "these messages have no Persian; add each to PERSIAN in gateway/messages_fa.py:\n"
        + "\n".join(lines)
    )


def test_the_scan_finds_messages_of_every_kind() -> None:
    # So that the test above cannot pass by finding nothing.
    found = raised_messages()
    for expected in (
        "Authentication failed.",  # a refusal at the edge
        "No API key has that prefix or id.",  # an error class
        "Too many requests; try again in {retry_after} s.",  # an f-string refusal
        "wrong check digit",  # an identifier's reason
        "national code",  # an identifier's kind
        "agency unavailable",  # an agency's summary
    ):
        assert expected in found, expected


def test_no_persian_is_left_over_from_a_message_that_is_gone() -> None:
    raised = {_skeleton(template) for template in raised_messages()}
    # A few ids are built by gateway/edge/errors.py around another message, not raised.
    built = {
        "'{}' is invalid: {}.",
        "A value is invalid: {}.",
        "The request body",
        "invalid {}: {}",
        "Invalid {}: {}.",
        "{}.{}: {}",  # an agency's error, around its summary (connectors/errors.py)
    }
    stale = [english for english in PERSIAN if _skeleton(english) not in raised | built]
    assert stale == [], "remove these from PERSIAN (no code raises them any longer)"


@pytest.mark.parametrize("catalogue", [PERSIAN, GENERAL], ids=["gateway", "libraries"])
def test_each_persian_message_keeps_the_parts_of_its_english(catalogue: dict[str, str]) -> None:
    for english, translated in catalogue.items():
        assert sorted(parts(translated)) == sorted(parts(english)), english
        if english in VERBATIM:
            assert translated == english
        elif re.search(r"[A-Za-z]", re.sub(r"\{[^{}]*\}", "", english)):  # not parts alone
            assert persian(translated), english


def test_a_message_is_translated_with_its_parts_and_the_messages_inside_it() -> None:
    assert to_persian("Too many requests; try again in 30 s.") == (
        "درخواست‌ها بیش از حد است؛ 30 ثانیهٔ دیگر دوباره بکوشید."
    )
    assert to_persian("'code' is invalid: invalid national code: wrong check digit.") == (
        "'code' نامعتبر است: کد ملی نامعتبر است: رقم کنترل نادرست است."
    )
    assert to_persian("land_registry.GetDeed: agency unavailable") == (
        "land_registry.GetDeed: سازمان در دسترس نیست"
    )
    # A message no one wrote Persian for: its code's sentence, then the English.
    assert to_persian("Something new. Really: yes") is None
    assert persian_message("Something new.", "CONFLICT") == f"{BY_CODE['CONFLICT']}: Something new."


def test_every_documented_code_has_a_persian_sentence() -> None:
    assert set(BY_CODE) == set(ERROR_CODES)


# --- choosing the language -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "language"),
    [
        (None, "en"),
        ("", "en"),
        ("fa", "fa"),
        ("fa-IR", "fa"),
        ("FA-ir,en;q=0.8", "fa"),
        ("en-US,fa;q=0.9", "en"),
        ("en;q=0.5, fa;q=0.8", "fa"),
        ("de, fa;q=0.1", "fa"),
        ("de, fr", "en"),
        ("fa;q=0", "en"),
        ("fa;q=nonsense", "en"),
        ("*", "en"),
    ],
)
def test_persian_only_when_the_caller_prefers_it(header: str | None, language: str) -> None:
    assert preferred_language(header) == language


# --- every documented code, in both languages, over HTTP -------------------------------------


@pytest.fixture(scope="module")
async def sqlite(tmp_path_factory: pytest.TempPathFactory) -> Backend:
    made, _ = await make_backend("sqlite", tmp_path_factory.mktemp("errors-fa"), parcels=10)
    return made


@pytest.fixture(scope="module")
def dead_address() -> Iterator[str]:
    """Bound, never listening: connections are refused at once."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


@contextlib.asynccontextmanager
async def serve(backend: Backend, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings_for(backend, **overrides))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        yield http


@pytest.fixture(scope="module")
async def clients(
    sqlite: Backend, dead_address: str
) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """ "main": agencies unreachable (for AGENCY_UNAVAILABLE); "limited": the public may send
    one operation a minute (for RATE_LIMITED)."""
    agencies = dict.fromkeys(
        ("land_registry_url", "civil_registry_url", "bank_url", "postal_url"), dead_address
    )
    async with (
        serve(sqlite, **agencies) as main,
        serve(sqlite, rate_limit_public="1/minute") as limited,
    ):
        yield {"main": main, "limited": limited}


@pytest.fixture(scope="module")
def http(clients: dict[str, httpx.AsyncClient]) -> httpx.AsyncClient:
    return clients["main"]


@pytest.fixture(scope="module")
async def keys(sqlite: Backend) -> dict[str, str]:
    databases = Databases({"gateway": sqlite.urls["gateway"]})
    try:
        _, operator = await mint_key(databases, PrincipalKind.OPERATOR, "Operations (fa)")
        # Two keys of one notary office: one revokes the other.
        _, notary = await mint_key(databases, PrincipalKind.NOTARY, "Notary office (fa)")
        spare, _ = await mint_key(databases, PrincipalKind.NOTARY, "Notary office (fa)")
    finally:
        await databases.dispose()
    return {"operator": operator, "notary": notary, "spare_prefix": spare.prefix}


Clients = dict[str, httpx.AsyncClient]
Send = Callable[[Clients, dict[str, str], dict[str, str]], Awaitable[httpx.Response]]


def _graphql(query: str | None, *, key: str | None = None, app: str = "main", **body: Any) -> Send:
    async def send(
        clients: Clients, keys: dict[str, str], headers: dict[str, str]
    ) -> httpx.Response:
        sent = dict(headers)
        if key is not None:
            sent["Authorization"] = f"Bearer {keys[key]}"
        sent_body = {"query": query.format(**keys) if query else None, **body}
        return await clients[app].post("/graphql", json=sent_body, headers=sent)

    return send


def _raw(method: str, path: str, headers: dict[str, str], **kwargs: Any) -> Send:
    async def send(clients: Clients, _keys: dict[str, str], more: dict[str, str]) -> httpx.Response:
        return await clients["main"].request(method, path, headers={**headers, **more}, **kwargs)

    return send


async def _conflict(
    clients: Clients, keys: dict[str, str], headers: dict[str, str]
) -> httpx.Response:
    revoke = 'mutation {{ revokeApiKey(prefix: "{spare_prefix}") {{ state }} }}'
    await _graphql(revoke, key="notary")(clients, keys, {})  # revoked; again is a conflict
    return await _graphql(revoke, key="notary")(clients, keys, headers)


async def _rate_limited(
    clients: Clients, keys: dict[str, str], headers: dict[str, str]
) -> httpx.Response:
    # The public's window holds one operation a minute: the second is refused.
    await _graphql("{{ __typename }}", app="limited")(clients, keys, {})
    return await _graphql("{{ __typename }}", app="limited")(clients, keys, headers)


# One request for each documented code; every code must have one (here or in UNIT below).
OVER_HTTP: dict[str, Send] = {
    "BAD_USER_INPUT": _graphql('{{ person(nationalCode: "0084575940") {{ fullName }} }}'),
    "NOT_FOUND": _raw("GET", "/nowhere", {}),
    "CONFLICT": _conflict,
    "UNAUTHENTICATED": _raw("POST", "/graphql", {"Authorization": "Bearer gw_nope"}, json={}),
    "FORBIDDEN": _graphql('mutation {{ revokeApiKey(prefix: "000000000000") {{ state }} }}'),
    "QUERY_TOO_COMPLEX": _graphql("{{ parcels(first: 1000) {{ edges {{ cursor }} }} }}"),
    "PERSISTED_QUERY_NOT_FOUND": _graphql(
        None, extensions={"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}
    ),
    "BAD_REQUEST": _raw("POST", "/graphql", {"Content-Type": "text/plain"}, content=b"{}"),
    "RATE_LIMITED": _rate_limited,
    "GRAPHQL_PARSE_FAILED": _graphql("{{ parcels("),
    "GRAPHQL_VALIDATION_FAILED": _graphql("{{ parcels(first: 1) {{ edges {{ nodes }} }} }}"),
    "AGENCY_UNAVAILABLE": _graphql(
        "{{ parcels(first: 1) {{ edges {{ node {{ deed {{ serial }} }} }} }} }}", key="operator"
    ),
}


def _unit(error: Exception) -> Callable[[], dict[str, Any]]:
    def build() -> dict[str, Any]:
        return format_error(GraphQLError("x", path=["field"], original_error=error), "req-1")

    return build


# Codes no quick request produces here: their errors as the view formats them.
UNIT: dict[str, Callable[[], dict[str, Any]]] = {
    # Over HTTP it answers APQ's own word, kept verbatim; its other message is translated.
    "PERSISTED_QUERY_NOT_FOUND": _unit(
        PersistedQueryNotFound(
            "This operation is not registered; only registered operations are accepted from "
            "partners.",
            sha256="0" * 64,
        )
    ),
    "AGENCY_TIMEOUT": _unit(AgencyTimeout("land_registry", "GetDeed")),
    "AGENCY_REJECTED": _unit(AgencyRejected("bank", "VerifyPayment")),
    "INTERNAL": _unit(RuntimeError("boom")),
}


def _service_not_available() -> dict[str, Any]:
    from gateway.errors import ServiceNotAvailableInRegion  # another area's, added meanwhile

    error: GatewayError = ServiceNotAvailableInRegion(
        "The service pothole is not offered in region 3 yet.", serviceCode="pothole", region=3
    )
    return _unit(error)()


if "SERVICE_NOT_AVAILABLE_IN_REGION" in ERROR_CODES:
    UNIT["SERVICE_NOT_AVAILABLE_IN_REGION"] = _service_not_available


def test_every_documented_code_is_tried_in_both_languages() -> None:
    untried = set(ERROR_CODES) - set(OVER_HTTP) - set(UNIT)
    assert not untried, f"give these codes a case in OVER_HTTP or UNIT: {sorted(untried)}"


def _same_but_message(english: dict[str, Any], farsi: dict[str, Any]) -> None:
    # Request ids and trace ids name each request; everything else is the same.
    volatile = {"requestId", "traceId", "retryAfter"}

    def stable(error: dict[str, Any]) -> dict[str, Any]:
        return {
            **{k: v for k, v in error.items() if k != "message"},
            "extensions": {k: v for k, v in error["extensions"].items() if k not in volatile},
        }

    assert stable(english) == stable(farsi)
    assert not persian(english["message"]), english["message"]
    if english["message"] in VERBATIM:  # a protocol's word (APQ): the same in both
        assert farsi["message"] == english["message"]
        return
    assert persian(farsi["message"]), farsi["message"]
    # Translated, not the fallback that wraps the English.
    assert english["message"] not in farsi["message"], farsi["message"]


@pytest.mark.parametrize("code", sorted(OVER_HTTP))
async def test_a_code_over_http_in_english_and_in_persian(
    clients: Clients, keys: dict[str, str], code: str
) -> None:
    answers = []
    for headers in ({}, FA):
        response = await OVER_HTTP[code](clients, keys, headers)
        errors = response.json()["errors"]
        mine = [error for error in errors if error["extensions"]["code"] == code]
        assert mine, (code, errors)
        answers.append((response.status_code, mine[0]))
    (status_en, english), (status_fa, farsi) = answers
    assert "accept-language" in response.headers["vary"].lower()  # caches keep them apart
    assert status_en == status_fa
    _same_but_message(english, farsi)


@pytest.mark.parametrize("code", sorted(UNIT))
def test_a_code_formatted_in_english_and_in_persian(code: str) -> None:
    english = UNIT[code]()
    token = LANGUAGE.set("fa")
    try:
        farsi = UNIT[code]()
    finally:
        LANGUAGE.reset(token)
    assert english["extensions"]["code"] == code
    _same_but_message(english, farsi)


# --- the libraries' messages a caller commonly meets -----------------------------------------

LIBRARY_CASES = [
    "{ parcels(first: 1) { edges { nodes } } }",  # a field that is not there, with a suggestion
    "{ parcels(first: 1, nope: 2) { edges { cursor } } }",  # an unknown argument
    "{ parcels(first: 1) }",  # a selection missing
    "{ __typename { x } }",  # a selection on a leaf
    "query A { __typename } query A { __typename }",  # two operations of one name
    "query ($x: Int) { __typename }",  # an unused variable
    "{ parcels(first: $n) { edges { cursor } } }",  # an undefined variable
    "{ parcels(first: 1) { edges { cursor } } } query B { __typename }",  # anonymous and more
    "{ parcels(first: 1",  # unexpected end
    '{ parcels(first: "x") { edges { cursor } } }',  # a literal of the wrong type
    "fragment F on Parcel { renewalCode } { __typename }",  # an unused fragment
    "{ parcels(first: 1) { ... on Person { fullName } } }",  # a spread that cannot apply
    "{ node { id } }",  # a required argument missing
    "{ parcels(first: 1, filter: { nope: 1 }) { edges { cursor } } }",  # an unknown input field
    "{ __typename @skip(if: true) @skip(if: false) }",  # a directive twice
]


@pytest.mark.parametrize("query", LIBRARY_CASES)
async def test_graphql_core_messages_are_translated(http: httpx.AsyncClient, query: str) -> None:
    body = (await http.post("/graphql", json={"query": query}, headers=FA)).json()
    english = (await http.post("/graphql", json={"query": query})).json()
    assert body["errors"], body
    for farsi, original in zip(body["errors"], english["errors"], strict=True):
        assert to_persian(original["message"]) == farsi["message"], original["message"]


async def test_a_variable_of_the_wrong_type_is_translated(http: httpx.AsyncClient) -> None:
    query = "query ($n: Int!) { parcels(first: $n) { edges { cursor } } }"
    for variables in ({}, {"n": "many"}):
        body = (
            await http.post("/graphql", json={"query": query, "variables": variables}, headers=FA)
        ).json()
        (error,) = body["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert persian(error["message"]), error
        assert "Variable" not in error["message"], error


# --- over WebSocket too ----------------------------------------------------------------------


@contextlib.asynccontextmanager
async def serving(backend: Backend) -> AsyncIterator[str]:
    """The app behind a real uvicorn on loopback, in this event loop; yields host:port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)  # connections wait in the backlog until the app has started
    host, port = sock.getsockname()
    app = create_app(settings_for(backend))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"{host}:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def test_a_subscription_error_comes_in_the_language_of_the_upgrade(sqlite: Backend) -> None:
    messages = {}
    async with serving(sqlite) as address:
        for language in ("en", "fa"):
            async with connect(
                f"ws://{address}/graphql",
                subprotocols=[Subprotocol("graphql-transport-ws")],
                additional_headers={"Accept-Language": language},
            ) as ws:
                await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
                acknowledged = await ws.recv()
                # Text frames, as graphql-transport-ws has them: browsers' clients drop binary.
                assert isinstance(acknowledged, str)
                assert json.loads(acknowledged)["type"] == "connection_ack"
                subscribe = {"query": "subscription { apiKeyRevoked { prefix }"}
                await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": subscribe}))
                async with asyncio.timeout(60):  # a safety net only
                    answer = json.loads(await ws.recv())
                assert answer["type"] == "error", answer
                (error,) = answer["payload"]
                messages[language] = error
    _same_but_message(messages["en"], messages["fa"])
    assert messages["fa"]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"


async def test_open311_errors_come_in_persian_too(http: httpx.AsyncClient) -> None:
    """Open311 answers its own error body; its descriptions follow the same catalogue."""
    path = "/open311/v2/requests/0000000000000000.json"
    english = await http.get(path, headers={"Accept-Language": "en"})
    farsi = await http.get(path, headers=FA)
    assert english.status_code == farsi.status_code
    ((en,), (fa,)) = english.json(), farsi.json()
    assert en["code"] == fa["code"]
    assert not persian(en["description"])
    assert persian(fa["description"])
    # The gateway's code stays at the end, in brackets, in both.
    assert en["description"].endswith(")")
    assert en["description"].rsplit("(", 1)[1] == fa["description"].rsplit("(", 1)[1]
