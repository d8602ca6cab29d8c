"""Open311 GeoReport v2 at /open311/v2/, against the real app on the demo catalogue: every
resource in XML and JSON, read back with a strict XML parser against the specification's
element names and with a real Open311 client library; errors in the specification's shape and
the requested format; registration through the same path as GraphQL's; no personal data in
what GET answers; rate limits as on every public path."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from lxml import etree
from sqlalchemy import update
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.applications import Starlette

from db.engines import Databases
from gateway.access.principals import PrincipalKind
from gateway.edge.app import create_app
from gateway.edge.open311.documents import Language
from gateway.edge.open311.formats import Document, w3_datetime
from gateway.edge.open311.params import parse_moment
from gateway.jobs import JobKinds
from gateway.requests import records
from tests.conftest import Backend, make_backend, mint_key, settings_for
from tests.gateway.test_edge import assert_edge_headers

V2 = "/open311/v2"
PUBLIC_URL = "https://gw.urmia.example"
NOW = dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.UTC)
INSIDE = (37.5527, 45.0761)
PERSIAN = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")  # the demo city's centre, inside a region

# The specification's element names, in its order.
SERVICE = ["service_code", "service_name", "description", "metadata", "type", "keywords", "group"]
ATTRIBUTE = ["variable", "code", "datatype", "required", "datatype_description", "order"]
ATTRIBUTE += ["description"]
REQUEST = ["service_request_id", "status", "status_notes", "service_name", "service_code"]
REQUEST += ["description", "agency_responsible", "service_notice", "requested_datetime"]
REQUEST += ["updated_datetime", "expected_datetime", "address", "address_id", "zipcode"]
REQUEST += ["lat", "long", "media_url"]
CREATED = ["service_request_id", "service_notice", "account_id"]
TOKEN = ["service_request_id", "token"]
ERROR = ["code", "description"]
DISCOVERY = ["changeset", "contact", "key_service", "endpoints"]
ENDPOINT = ["specification", "url", "changeset", "type", "formats"]
W3 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
# Lists and their items, by the Spark convention.
ITEMS = {
    "services": "service",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
    "service_requests": "request",
    "errors": "error",
}
STRICT = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, recover=False, huge_tree=False
)


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@dataclass
class Site:
    app: Starlette
    http: httpx.AsyncClient
    clock: Clock
    keys: dict[str, str]

    def as_(self, label: str | None) -> dict[str, str]:
        return {} if label is None else {"Authorization": f"Bearer {self.keys[label]}"}


@pytest.fixture(scope="module")
async def backend(tmp_path_factory: pytest.TempPathFactory) -> Backend:
    made, _ = await make_backend("sqlite", tmp_path_factory.mktemp("open311"), parcels=20)
    return made


@contextlib.asynccontextmanager
async def serving(backend: Backend, clock: Clock, **overrides: Any) -> AsyncIterator[Site]:
    settings = settings_for(backend, public_url=PUBLIC_URL, **overrides)
    app = create_app(settings, kinds=JobKinds(), wall_clock=clock)
    databases = Databases({"gateway": backend.urls["gateway"]})
    made = {
        "operator": (PrincipalKind.OPERATOR, None),
        "civil_works": (PrincipalKind.DEPARTMENT, "civil_works"),
        "transport": (PrincipalKind.DEPARTMENT, "transport"),
        "portal": (PrincipalKind.DEPARTMENT, "contact137"),
        "counter": (PrincipalKind.COUNTER, None),
    }
    keys: dict[str, str] = {}
    for label, (kind, department) in made.items():
        _, keys[label] = await mint_key(
            databases, kind, f"open311-{label}", department, now=clock.now
        )
    transport = httpx.ASGITransport(app=app, client=("192.0.2.31", 40000))
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://t") as http,
        ):
            yield Site(app, http, clock, keys)
    finally:
        await databases.dispose()


@pytest.fixture(scope="module")
async def site(backend: Backend) -> AsyncIterator[Site]:
    async with serving(backend, Clock(NOW), rate_limit_public="10000/minute") as made:
        yield made


# --- reading what comes back ------------------------------------------------------------------


def parse_xml(response: httpx.Response) -> etree._Element:
    """The body as a strict parser reads it: UTF-8 declared, no namespace, no DTD."""
    assert response.headers["content-type"] == "text/xml; charset=utf-8", response.headers
    assert response.content.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    root = etree.fromstring(response.content, STRICT)
    for element in root.iter():
        assert etree.QName(element).namespace is None
    return root


def spark(element: etree._Element) -> Any:
    """XML as JSON by the Spark convention, so that both formats can be compared."""
    if element.tag in ITEMS:
        assert all(child.tag == ITEMS[element.tag] for child in element)
        return [spark(child) for child in element]
    if len(element):
        return {child.tag: spark(child) for child in element}
    return element.text


def as_text(value: Any) -> Any:
    """JSON's values as XML writes them."""
    if isinstance(value, dict):
        return {name: as_text(item) for name, item in value.items()}
    if isinstance(value, list):
        return [as_text(item) for item in value]
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def children(element: etree._Element) -> list[str]:
    return [str(child.tag) for child in element]


async def both(site: Site, path: str, label: str | None = None, **params: Any) -> Any:
    """GETs `path` as XML and as JSON; asserts they say the same; returns the JSON."""
    headers = site.as_(label)
    as_xml = await site.http.get(f"{V2}/{path}.xml", params=params, headers=headers)
    as_json = await site.http.get(f"{V2}/{path}.json", params=params, headers=headers)
    assert as_xml.status_code == as_json.status_code == 200, (as_xml.text, as_json.text)
    assert as_json.headers["content-type"] == "application/json; charset=utf-8"
    assert_edge_headers(as_xml)
    assert spark(parse_xml(as_xml)) == as_text(as_json.json())
    return as_json.json()


def open311_error(response: httpx.Response, status: int, code: str, fmt: str = "xml") -> str:
    """An error in the specification's shape and the requested format; its description."""
    assert response.status_code == status, response.text
    assert "html" not in response.headers["content-type"]
    assert_edge_headers(response)
    if fmt == "xml":
        root = parse_xml(response)
        assert root.tag == "errors"
        (error,) = root
        assert error.tag == "error"
        assert children(error) == ERROR
        assert error.findtext("code") == str(status)
        description = error.findtext("description") or ""
    else:
        assert response.headers["content-type"] == "application/json; charset=utf-8"
        (error,) = response.json()
        assert list(error) == ERROR
        assert error["code"] == status
        description = error["description"]
    assert description.endswith(f"({code})"), description
    return description


# --- formats ------------------------------------------------------------------------------------


def test_xml_drops_what_xml_cannot_hold_and_json_keeps_it() -> None:
    document = Document("service_requests", [{"description": "a\x00b\x1fc\ud800\tok", "lat": 1.5}])
    root = etree.fromstring(document.to_xml(), STRICT)
    assert root.findtext("request/description") == "abc\tok"
    assert root.findtext("request/lat") == "1.5"


def test_moments_are_w3c_utc_without_fractions_and_read_back() -> None:
    tehran = dt.timezone(dt.timedelta(hours=3, minutes=30))
    moment = dt.datetime(2026, 3, 20, 12, 30, 15, 987654, tzinfo=tehran)
    assert w3_datetime(moment) == "2026-03-20T09:00:15Z"
    assert w3_datetime(dt.datetime(2026, 3, 20, 9, 0, 15, 1)) == "2026-03-20T09:00:15Z"
    assert parse_moment("2026-03-20T12:30:15+03:30", "x") == moment.replace(microsecond=0)
    assert parse_moment("2026-03-20T09:00:15Z", "x") == moment.replace(microsecond=0)
    assert parse_moment("2026-03-20", "x") == dt.datetime(2026, 3, 20, tzinfo=dt.UTC)


def test_the_language_follows_accept_language() -> None:
    assert Language.from_header(None) is Language.FA
    assert Language.from_header("en-US,en;q=0.9") is Language.EN
    assert Language.from_header("de, fa;q=0.5, en;q=0.8") is Language.EN
    assert Language.from_header("fa-IR, en;q=0.8") is Language.FA
    assert Language.from_header("en;q=0, fr") is Language.FA


# --- discovery and the catalogue ------------------------------------------------------------


async def test_discovery_names_this_endpoint_and_both_formats(site: Site) -> None:
    for path in (f"{V2}/discovery.xml", "/open311/discovery.xml"):
        response = await site.http.get(path)
        root = parse_xml(response)
        assert root.tag == "discovery"
        assert children(root) == DISCOVERY
        endpoints = root.find("endpoints")
        assert endpoints is not None
        (endpoint,) = endpoints
        assert children(endpoint) == ENDPOINT
        assert endpoint.findtext("specification") == "http://wiki.open311.org/GeoReport_v2"
        assert endpoint.findtext("url") == f"{PUBLIC_URL}{V2}"
        assert endpoint.findtext("type") == "test"  # a development gateway
        formats = [f.text for f in endpoint.find("formats")]  # type: ignore[union-attr]
        assert formats == ["text/xml", "application/json"]
        assert W3.fullmatch(root.findtext("changeset") or "")
    found = await both(site, "discovery")
    assert found["endpoints"][0]["formats"] == ["text/xml", "application/json"]


async def test_services_list_the_catalogue_in_persian_or_english(site: Site) -> None:
    services = await both(site, "services")
    assert len(services) >= 50
    for service in services:
        assert list(service) == SERVICE
        assert service["type"] == "realtime"
        assert isinstance(service["metadata"], bool)
    by_code = {service["service_code"]: service for service in services}
    assert by_code["pothole"]["service_name"] == "چاله و خرابی آسفالت"
    assert by_code["pothole"]["metadata"] is True
    assert by_code["street_cleaning"]["metadata"] is False
    english = await site.http.get(f"{V2}/services.json", headers={"Accept-Language": "en"})
    assert {s["service_code"]: s["service_name"] for s in english.json()}["pothole"] == (
        "Pothole or broken asphalt"
    )
    assert english.headers["cache-control"] == "public, max-age=300"
    assert "Accept-Language" in english.headers["vary"]
    xml = parse_xml(await site.http.get(f"{V2}/services.xml"))
    assert xml.tag == "services"
    assert {children(service) == SERVICE for service in xml} == {True}


async def test_a_service_definition_has_its_questions_as_attributes(site: Site) -> None:
    definition = await both(site, "services/tree_pruning")
    assert definition["service_code"] == "tree_pruning"
    (danger,) = definition["attributes"]
    assert list(danger) == [*ATTRIBUTE, "values"]
    assert danger["code"] == "danger"
    assert danger["datatype"] == "singlevaluelist"
    assert danger["required"] is True
    assert danger["variable"] is True
    assert danger["order"] == 1
    assert danger["values"] == [{"key": "yes", "name": "بله"}, {"key": "no", "name": "خیر"}]
    taxi = await both(site, "services/taxi_complaint")
    assert [a["code"] for a in taxi["attributes"]] == ["vehicle_plate", "event_date"]
    assert [a["datatype"] for a in taxi["attributes"]] == ["string", "datetime"]
    assert all(list(a) == ATTRIBUTE for a in taxi["attributes"])  # no values: not a list
    root = parse_xml(await site.http.get(f"{V2}/services/tree_pruning.xml"))
    assert root.tag == "service_definition"
    assert children(root) == ["service_code", "attributes"]
    assert children(root.find("attributes/attribute/values")) == ["value", "value"]  # type: ignore[arg-type]
    empty = await both(site, "services/street_cleaning")
    assert empty == {"service_code": "street_cleaning", "attributes": []}


# --- errors ------------------------------------------------------------------------------------


async def test_errors_come_in_the_specifications_shape_and_the_format_asked(site: Site) -> None:
    http = site.http
    open311_error(await http.get(f"{V2}/services/no_such.xml"), 404, "NOT_FOUND")
    open311_error(await http.get(f"{V2}/services/no_such.json"), 404, "NOT_FOUND", "json")
    open311_error(await http.get(f"{V2}/nothing.json"), 404, "NOT_FOUND", "json")
    open311_error(await http.get(f"{V2}/services.html"), 404, "NOT_FOUND")
    open311_error(await http.get(f"{V2}/services"), 404, "NOT_FOUND")
    open311_error(await http.get("/open311/v3/services.xml"), 404, "NOT_FOUND")
    refused = await http.delete(f"{V2}/requests.json")
    open311_error(refused, 405, "BAD_REQUEST", "json")
    assert refused.headers["allow"] == "GET, HEAD, POST"
    refused = await http.post(f"{V2}/services.xml")
    open311_error(refused, 405, "BAD_REQUEST")
    assert refused.headers["allow"] == "GET, HEAD"
    open311_error(await http.options(f"{V2}/services.json"), 405, "BAD_REQUEST", "json")
    head = await http.head(f"{V2}/services.xml")
    assert head.status_code == 200
    assert head.headers["content-type"] == "text/xml; charset=utf-8"
    wrong = {"jurisdiction_id": "tabriz.ir"}
    open311_error(await http.get(f"{V2}/services.xml", params=wrong), 404, "NOT_FOUND")
    for ours in ("urmia", "gw.urmia.example", "www.gw.urmia.example"):
        ok = await http.get(f"{V2}/services.xml", params={"jurisdiction_id": ours})
        assert ok.status_code == 200
    # A key in the address would end up in logs: refused, whatever the key.
    keyed = await http.get(f"{V2}/requests.json", params={"api_key": "gw_x"})
    assert "never in the address" in open311_error(keyed, 400, "BAD_USER_INPUT", "json")
    # A key that is not valid is the specification's 403, in its format, never a 401.
    for headers in ({"Authorization": "Bearer gw_000000000000_nope"}, {"Authorization": "Basic x"}):
        refused = await http.get(f"{V2}/services.json", headers=headers)
        open311_error(refused, 403, "UNAUTHENTICATED", "json")
    bad_dates = {"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-06-01T00:00:00Z"}
    spans = await http.get(f"{V2}/requests.xml", params=bad_dates, headers=site.as_("operator"))
    assert "90 days" in open311_error(spans, 400, "BAD_USER_INPUT")
    for params in ({"status": "pending"}, {"page_size": "0"}, {"page": "x"}, {"start_date": "y"}):
        refused = await http.get(f"{V2}/requests.json", params=params)
        open311_error(refused, 400, "BAD_USER_INPUT", "json")
    malformed = await http.get(f"{V2}/requests/1234.json", headers=site.as_("operator"))
    open311_error(malformed, 400, "BAD_USER_INPUT", "json")


async def test_every_address_is_rate_limited_in_open311s_shape(backend: Backend) -> None:
    async with serving(
        backend, Clock(NOW), rate_limit_public="3/minute", auth_failures_per_ip="2/minute"
    ) as limited:
        for _ in range(3):
            assert (await limited.http.get(f"{V2}/services.json")).status_code == 200
        refused = await limited.http.get(f"{V2}/services/pothole.xml")
        open311_error(refused, 429, "RATE_LIMITED")
        assert int(refused.headers["retry-after"]) >= 1
        # A caller with a key counts against its own window.
        keyed = await limited.http.get(f"{V2}/services.json", headers=limited.as_("operator"))
        assert keyed.status_code == 200
        # Guessing keys is throttled per address, through the form's api_key as through Bearer.
        guess = citizen(api_key="gw_000000000000_guess")
        for _ in range(2):
            refused = await limited.http.post(f"{V2}/requests.json", data=guess)
            open311_error(refused, 403, "UNAUTHENTICATED", "json")
        throttled = await limited.http.post(f"{V2}/requests.xml", data=guess)
        open311_error(throttled, 429, "RATE_LIMITED")
        assert int(throttled.headers["retry-after"]) >= 1


# --- registering ---------------------------------------------------------------------------


def citizen(**fields: Any) -> dict[str, Any]:
    """A complete form, as an Open311 app posts it."""
    form = {
        "jurisdiction_id": "urmia",
        "service_code": "pothole",
        "lat": str(INSIDE[0]),
        "long": str(INSIDE[1]),
        "address_string": "خیابان امام، روبروی بازار",
        "first_name": "زهرا",
        "last_name": "کریمی",
        "email": "zahra@example.org",
        "phone": "0914 123 4567",
        "description": "چاله بزرگ وسط خیابان",
        "media_url": "https://photos.example.org/p/1.jpg",
        "attribute[size]": "large",
    }
    form.update(fields)
    return {name: value for name, value in form.items() if value is not None}


async def post(
    site: Site,
    form: dict[str, Any],
    *,
    fmt: str = "json",
    key: str | None = "counter",
    in_form: bool = True,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POSTs a service request, the key in the form (the specification's way) or as Bearer."""
    sent = dict(headers or {})
    if key is not None and in_form:
        form = {**form, "api_key": site.keys[key]}
    elif key is not None:
        sent.update(site.as_(key))
    return await site.http.post(f"{V2}/requests.{fmt}", data=form, headers=sent)


def created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    (answer,) = response.json()
    assert list(answer) == CREATED
    assert re.fullmatch(r"[1-9][0-9]{15}", answer["service_request_id"])
    assert answer["account_id"] is None
    return dict(answer)


async def graphql(site: Site, label: str, query: str, **variables: Any) -> dict[str, Any]:
    response = await site.http.post(
        "/graphql", json={"query": query, "variables": variables}, headers=site.as_(label)
    )
    body = response.json()
    assert "errors" not in body, body
    return dict(body["data"])


AUDIT = """query ($filter: AuditFilter) {
  auditTrail(filter: $filter, first: 10) { edges { node { operation action principalKind } } }
}"""


async def stored_request(backend: Backend, tracking_code: str) -> records.CitizenRequest:
    engine = create_async_engine(backend.urls["contact"])
    try:
        async with engine.connect() as connection:
            found = await records.load_by_tracking_code(connection, tracking_code)
    finally:
        await engine.dispose()
    assert found is not None
    return found


QUEUE = "{ departmentRequests(first: 100) { edges { node { trackingCode channel } } } }"
SUBMIT = """mutation ($input: SubmitCitizenRequestInput!) {
  submitCitizenRequest(input: $input) { trackingCode status department }
}"""


async def test_open311_and_graphql_requests_land_in_the_same_departments_queue(
    site: Site,
) -> None:
    answer = created(await post(site, citizen(description="چاله عمیق در خیابان شهید بهشتی")))
    code = answer["service_request_id"]
    assert "5 روز کاری" in answer["service_notice"]
    assert "شنبه تا چهارشنبه" in answer["service_notice"]
    through_graphql = await graphql(
        site,
        "portal",
        SUBMIT,
        input={
            "kind": "COMPLAINT",
            "serviceCode": "pothole",
            "description": "آسفالت خراب",
            "latitude": INSIDE[0] + 0.01,
            "longitude": INSIDE[1],
            "citizenName": "علی رضایی",
            "citizenMobile": "09141112233",
            "idempotencyKey": f"gql-{uuid.uuid4()}",
        },
    )
    other = through_graphql["submitCitizenRequest"]["trackingCode"]
    queue = await graphql(site, "civil_works", QUEUE)
    channels = {
        e["node"]["trackingCode"]: e["node"]["channel"]
        for e in queue["departmentRequests"]["edges"]
    }
    assert channels[code] == "OPEN311"
    assert other in channels
    # The department reads both through Open311 too; another department neither.
    listed = await both(site, "requests", "civil_works", service_code="pothole")
    assert {code, other} <= {r["service_request_id"] for r in listed}
    mine = await both(site, f"requests/{code}", "civil_works")
    (request,) = mine
    assert list(request) == REQUEST
    assert request["status"] == "open"
    assert request["service_code"] == "pothole"
    assert request["agency_responsible"] == "معاونت فنی و عمرانی"
    assert request["lat"] == INSIDE[0]
    assert request["long"] == INSIDE[1]
    assert request["media_url"] == "https://photos.example.org/p/1.jpg"
    for moment in ("requested_datetime", "updated_datetime", "expected_datetime"):
        assert W3.fullmatch(request[moment]), request[moment]
    assert request["requested_datetime"] == w3_datetime(site.clock.now)
    # As a citizen reads it out: Persian digits, in groups of four.
    spoken = " ".join(code[i : i + 4] for i in range(0, 16, 4)).translate(PERSIAN)
    again = await site.http.get(f"{V2}/requests/{spoken}.json", headers=site.as_("civil_works"))
    assert again.json() == mine
    for label in ("transport", None):
        hidden = await site.http.get(f"{V2}/requests/{code}.xml", headers=site.as_(label))
        open311_error(hidden, 404, "NOT_FOUND")
        listed = await both(site, "requests", label)
        assert code not in {r["service_request_id"] for r in listed}


async def test_what_get_answers_holds_nothing_personal(site: Site) -> None:
    form = citizen(first_name="Parisa", last_name="Ahmadi-Unique", phone="09149876543")
    form["email"] = "parisa.unique@example.org"
    code = created(await post(site, form))["service_request_id"]
    for label in ("counter", "civil_works", "operator"):
        for path in (f"requests/{code}", "requests"):
            for fmt in ("xml", "json"):
                response = await site.http.get(f"{V2}/{path}.{fmt}", headers=site.as_(label))
                assert response.status_code == 200
                for personal in ("Parisa", "Ahmadi-Unique", "9876543", "parisa.unique"):
                    assert personal not in response.text, (label, path)


async def test_the_same_idempotency_key_gives_the_same_request_and_a_token(
    site: Site, backend: Backend
) -> None:
    key = f"app-{uuid.uuid4()}"
    form = citizen(description="درخت شکسته", service_code="tree_pruning")
    form.pop("attribute[size]")
    form["attribute[danger]"] = "no"
    first = created(await post(site, form, headers={"Idempotency-Key": key}))
    again = created(await post(site, form, headers={"Idempotency-Key": key}))
    assert again["service_request_id"] == first["service_request_id"]
    changed = await post(site, {**form, "description": "دیگر"}, headers={"Idempotency-Key": key})
    open311_error(changed, 400, "CONFLICT", "json")
    # Registered once, audited once (the citizen's name and mobile went in), as GraphQL's are.
    stored = await stored_request(backend, first["service_request_id"])
    trail = await graphql(
        site,
        "operator",
        AUDIT,
        filter={"subjectType": "CitizenRequest", "subjectId": str(stored.id)},
    )
    (record,) = [edge["node"] for edge in trail["auditTrail"]["edges"]]
    assert record["operation"] == "Open311.POST requests"
    assert record["action"] == "change"
    assert record["principalKind"] == "counter"
    assert stored.channel == "OPEN311"
    assert stored.citizen_name == "زهرا کریمی"
    assert stored.citizen_mobile == "09141234567"
    assert stored.answers == {"danger": "no"}
    # tokens/{key}: the registrar finds the request by its key, nobody else does.
    token = await both(site, f"tokens/{key}", "counter")
    assert token == [{"service_request_id": first["service_request_id"], "token": key}]
    root = parse_xml(await site.http.get(f"{V2}/tokens/{key}.xml", headers=site.as_("counter")))
    assert children(root[0]) == TOKEN
    for label in ("operator", "civil_works", None):
        hidden = await site.http.get(f"{V2}/tokens/{key}.json", headers=site.as_(label))
        open311_error(hidden, 404, "NOT_FOUND", "json")


async def test_the_key_may_be_the_forms_api_key_or_bearer_but_one_key(site: Site) -> None:
    created(await post(site, citizen(), in_form=False))
    persian = citizen(lat=str(INSIDE[0]).translate(PERSIAN), long=str(INSIDE[1]).translate(PERSIAN))
    created(await post(site, persian))
    xml = await post(site, citizen(), fmt="xml")
    root = parse_xml(xml)
    assert root.tag == "service_requests"
    assert children(root[0]) == CREATED
    both_keys = citizen(api_key=site.keys["counter"])
    differing = await site.http.post(
        f"{V2}/requests.json", data=both_keys, headers=site.as_("operator")
    )
    open311_error(differing, 400, "BAD_USER_INPUT", "json")
    open311_error(await post(site, citizen(), key=None), 403, "FORBIDDEN", "json")
    elsewhere = await site.http.post(
        f"{V2}/requests.json", params={"jurisdiction_id": "tabriz.ir"}, data=citizen()
    )
    open311_error(elsewhere, 404, "NOT_FOUND", "json")
    bad = citizen(api_key="gw_000000000000_nothing")
    refused = await site.http.post(f"{V2}/requests.xml", data=bad)
    assert "api_key" in open311_error(refused, 403, "UNAUTHENTICATED")


async def test_a_matter_for_another_agency_is_referred_and_reads_closed(site: Site) -> None:
    form = citizen(service_code="water_leak", description="لوله آب ترکیده")
    form.pop("attribute[size]")
    answer = created(await post(site, form, headers={"Accept-Language": "en"}))
    assert "water" in answer["service_notice"]
    (request,) = await both(site, f"requests/{answer['service_request_id']}", "counter")
    assert request["status"] == "closed"
    assert request["status_notes"] == "به شرکت آب و فاضلاب ارجاع شده است."
    assert request["expected_datetime"] is None
    english = await site.http.get(
        f"{V2}/requests/{answer['service_request_id']}.json",
        headers={**site.as_("counter"), "Accept-Language": "en"},
    )
    assert english.json()[0]["status_notes"] == "Referred to the water and sewage company."
    assert english.json()[0]["agency_responsible"] == "the water and sewage company"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"phone": None}, "phone"),
        ({"phone": "12345"}, "phone"),
        ({"first_name": None, "last_name": None}, "first_name"),
        ({"description": None}, "description"),
        ({"lat": None}, "lat"),
        ({"lat": "north"}, "lat"),
        ({"lat": "3_7.5"}, "lat"),
        ({"lat": "\uff13\uff17.5"}, "lat"),  # fullwidth digits
        ({"long": "inf"}, "long"),
        ({"lat": None, "long": None, "address_string": None}, "address_string"),
        ({"lat": "48.85", "long": "2.35", "address_string": None}, "lat"),
        ({"media_url": "javascript:alert(1)"}, "media_url"),
        ({"attribute[size]": "enormous"}, "attribute"),
        ({"attribute[colour]": "red"}, "attribute"),
        ({"attribute[size][]": "small"}, "attribute[size]"),
        ({"service_code": None}, "service_code"),
    ],
)
async def test_a_bad_form_is_refused_naming_the_field(
    site: Site, fields: dict[str, Any], field: str
) -> None:
    form = citizen(**fields)
    if "attribute[size][]" in fields:
        form.pop("attribute[size]")
    description = open311_error(await post(site, form), 400, "BAD_USER_INPUT", "json")
    assert field in description, description


async def test_a_required_answer_a_missing_service_and_a_wrong_body_are_refused(
    site: Site,
) -> None:
    form = citizen(service_code="tree_pruning")
    form.pop("attribute[size]")
    assert "danger" in open311_error(await post(site, form), 400, "BAD_USER_INPUT", "json")
    open311_error(await post(site, citizen(service_code="no_such")), 404, "NOT_FOUND", "json")
    multipart = await site.http.post(
        f"{V2}/requests.xml",
        data={"api_key": site.keys["counter"]},
        files={"media": ("p.png", b"x", "image/png")},
    )
    assert "urlencoded" in open311_error(multipart, 400, "BAD_USER_INPUT")
    twice = await site.http.post(
        f"{V2}/requests.json",
        content="service_code=pothole&service_code=bulky_waste",
        headers={"Content-Type": "application/x-www-form-urlencoded", **site.as_("counter")},
    )
    open311_error(twice, 400, "BAD_USER_INPUT", "json")


# --- reading requests ------------------------------------------------------------------------


async def test_statuses_map_to_open_and_closed_with_the_detail_in_status_notes(
    site: Site, backend: Backend
) -> None:
    code = created(await post(site, citizen()))["service_request_id"]
    engine = create_async_engine(backend.urls["contact"])
    expected = {
        "SUBMITTED": "open",
        "ASSIGNED": "open",
        "IN_PROGRESS": "open",
        "WAITING_FOR_CITIZEN": "open",
        "REOPENED": "open",
        "RESOLVED": "closed",
        "REJECTED": "closed",
        "REFERRED": "closed",
        "CLOSED": "closed",
    }
    notes = set()
    try:
        for status, mapped in expected.items():
            async with engine.begin() as connection:
                await connection.execute(
                    update(records.REQUESTS)
                    .where(records.REQUESTS.c.tracking_code == code)
                    .values(status=status)
                )
            (request,) = await both(site, f"requests/{code}", "counter")
            assert request["status"] == mapped, status
            notes.add(request["status_notes"])
            closed = await both(site, "requests", "counter", status=mapped)
            assert code in {r["service_request_id"] for r in closed}
            other = "closed" if mapped == "open" else "open"
            elsewhere = await both(site, "requests", "counter", status=other)
            assert code not in {r["service_request_id"] for r in elsewhere}
        # A duplicate merged into another request says so, without naming the other.
        other = created(await post(site, citizen()))["service_request_id"]
        survivor = (await stored_request(backend, other)).id
        async with engine.begin() as connection:
            await connection.execute(
                update(records.REQUESTS)
                .where(records.REQUESTS.c.tracking_code == code)
                .values(status="CLOSED", merged_into_id=survivor)
            )
        (merged,) = await both(site, f"requests/{code}", "counter")
        assert merged["status"] == "closed"
        assert merged["status_notes"] not in notes
        assert "یکی شده" in merged["status_notes"]
    finally:
        await engine.dispose()
    assert len(notes) == len(expected)  # each status says which it is


async def test_filters_dates_ids_and_pages(backend: Backend) -> None:
    clock = Clock(NOW + dt.timedelta(days=400))  # a stretch of time no other test uses
    async with serving(backend, clock, rate_limit_public="10000/minute") as site:
        codes: list[str] = []
        for day in range(6):
            clock.now = NOW + dt.timedelta(days=400 + day)
            service = "pothole" if day % 2 == 0 else "street_cleaning"
            form = citizen(service_code=service, description=f"روز {day}")
            if service != "pothole":
                form.pop("attribute[size]")
            codes.append(created(await post(site, form))["service_request_id"])
        clock.now = NOW + dt.timedelta(days=410)

        async def ids(**params: Any) -> list[str]:
            return [
                r["service_request_id"] for r in await both(site, "requests", "counter", **params)
            ]

        newest_first = list(reversed(codes))
        assert (await ids())[:6] == newest_first
        assert await ids(service_code="street_cleaning") == newest_first[0::2]
        assert await ids(service_code="pothole,street_cleaning") == newest_first
        start = w3_datetime(NOW + dt.timedelta(days=401))
        end = w3_datetime(NOW + dt.timedelta(days=403))
        assert await ids(start_date=start, end_date=end) == [codes[3], codes[2], codes[1]]
        assert await ids(start_date=start, end_date=end, page_size=2) == [codes[3], codes[2]]
        assert await ids(start_date=start, end_date=end, page_size=2, page=2) == [codes[1]]
        assert await ids(start_date=start, end_date=end, page_size=2, page=3) == []
        # service_request_id overrides every other filter.
        chosen = f"{codes[0]},{codes[5]}"
        assert await ids(service_request_id=chosen, service_code="nothing") == [codes[5], codes[0]]
        # The default window is the last 90 days.
        clock.now = NOW + dt.timedelta(days=400 + 5 + 91)
        assert codes[5] not in await ids()


# --- a real Open311 client ------------------------------------------------------------------


@contextlib.contextmanager
def listening(app: Starlette) -> Iterator[str]:
    """The app served by uvicorn on a loopback port in a thread (the client is synchronous)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(500):
            if server.started:
                break
            threading.Event().wait(0.02)
        assert server.started
        yield f"http://127.0.0.1:{port}{V2}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


async def test_an_open311_client_library_reads_every_resource(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    georeport = pytest.importorskip("georeport")
    requests = pytest.importorskip("requests")
    code = created(await post(site, citizen(description="برای کتابخانه"), key="transport"))[
        "service_request_id"
    ]
    # The library sends no key on GET (the specification needs none there); an app that
    # reads its own requests adds its key to every call, as this wrapper does.
    plain_get = requests.get

    def get_with_key(url: str, **kwargs: Any) -> Any:
        return plain_get(url, headers=site.as_("transport"), **kwargs)

    monkeypatch.setattr(georeport.georeport.requests, "get", get_with_key)
    with listening(site.app) as root:

        def read(output_format: str) -> dict[str, Any]:
            client = georeport.GeoReport(root, jurisdiction="urmia", output_format=output_format)
            return {
                "services": client.get_service_list(),
                "definition": client.get_service_definition("tree_pruning"),
                "requests": client.get_service_requests(service_code="pothole", status="open"),
                "one": client.get_service_request(code),
            }

        for output_format in ("json", "xml"):
            found = await asyncio.to_thread(read, output_format)
            codes = {service["service_code"] for service in found["services"]}
            assert {"pothole", "tree_pruning", "water_leak"} <= codes
            assert found["definition"]["service_code"] == "tree_pruning"
            listed = found["requests"]
            listed = [listed] if isinstance(listed, dict) else listed  # xmltodict: one is a dict
            assert code in {request["service_request_id"] for request in listed}
            assert found["one"]["service_request_id"] == code
            assert found["one"]["status"] == "open"


@pytest.mark.parametrize("name", ["postgres", "mariadb"])
async def test_registering_and_reading_back_on_server_databases(name: str, tmp_path: Any) -> None:
    made, server = await make_backend(name, tmp_path, parcels=20)
    try:
        clock = Clock(NOW)
        async with serving(made, clock, rate_limit_public="10000/minute") as site:
            key = f"app-{uuid.uuid4()}"
            code = created(await post(site, citizen(), headers={"Idempotency-Key": key}))[
                "service_request_id"
            ]
            again = created(await post(site, citizen(), headers={"Idempotency-Key": key}))
            assert again["service_request_id"] == code
            (request,) = await both(site, f"requests/{code}", "civil_works")
            assert request["status"] == "open"
            listed = await both(site, "requests", "counter", service_code="pothole", status="open")
            assert [r["service_request_id"] for r in listed] == [code]
            assert await both(site, "requests", "counter", status="closed") == []
            token = await both(site, f"tokens/{key}", "counter")
            assert token == [{"service_request_id": code, "token": key}]
            # MariaDB compares case- and space-insensitively; the registrar's key must not.
            hidden = await site.http.get(
                f"{V2}/tokens/{key.upper()}.json", headers=site.as_("counter")
            )
            open311_error(hidden, 404, "NOT_FOUND", "json")
    finally:
        if server is not None:
            await server.drop_all()


async def test_a_retry_after_a_failed_audit_write_is_audited_once(
    site: Site, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.access.audit import AuditTrail

    real_append = AuditTrail.append

    async def broken(self: AuditTrail, entries: Any) -> None:
        raise OSError("disk full")

    key = f"app-{uuid.uuid4()}"
    form = citizen(description="چاله کنار پیاده‌رو")
    monkeypatch.setattr(AuditTrail, "append", broken)
    failed = await post(site, form, headers={"Idempotency-Key": key})
    assert failed.status_code == 500, failed.text
    monkeypatch.setattr(AuditTrail, "append", real_append)
    first = created(await post(site, form, headers={"Idempotency-Key": key}))
    again = created(await post(site, form, headers={"Idempotency-Key": key}))
    assert again["service_request_id"] == first["service_request_id"]
    stored = await stored_request(backend, first["service_request_id"])
    trail = await graphql(
        site,
        "operator",
        AUDIT,
        filter={"subjectType": "CitizenRequest", "subjectId": str(stored.id)},
    )
    # The replay wrote the missing record; the next replay found it and wrote none.
    (record,) = [edge["node"] for edge in trail["auditTrail"]["edges"]]
    assert record["operation"] == "Open311.POST requests"
