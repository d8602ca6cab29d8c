"""The postal connector: against the sandbox postal company, and against answers it should
never give (through httpx's MockTransport under the same capping transport)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from connectors.correlation import Correlation, correlated
from connectors.errors import AgencyRejected, AgencyTimeout, AgencyUnavailable
from connectors.postal import PostalAddress, PostalService
from connectors.resilience import AgencyGuard
from connectors.transport import AgencyTransport
from db.planning import Parcel

GOOD = {
    "postalCode": "5715000001",
    "province": "آذربایجان غربی",
    "city": "ارومیه",
    "region": 2,
    "address": "خیابان امام",
    "latitude": 37,
    "longitude": 45.07,
}


async def postal_codes(city: Any) -> list[str]:
    async with city.databases.planning.connect() as connection:
        rows = (await connection.execute(select(Parcel.postal_code).order_by(Parcel.id))).all()
    return [row.postal_code for row in rows]


async def test_an_address_is_the_postal_companys_record(city: Any, agencies: Any) -> None:
    for code in (await postal_codes(city))[:15]:
        truth = await city.dataset.address(code)
        assert await agencies.postal.address(code) == PostalAddress(
            postal_code=truth.postal_code,
            province=truth.province,
            city=truth.city,
            region=truth.region,
            address=truth.address,
            latitude=truth.latitude,
            longitude=truth.longitude,
        )


async def test_an_unknown_postal_code_is_none_and_remembered(
    city: Any, agencies: Any, calls: Any
) -> None:
    known = set(await postal_codes(city))
    code = next(f"57{n:08d}" for n in range(10**6) if f"57{n:08d}" not in known)
    assert await agencies.postal.address(code) is None
    assert await agencies.postal.address(code) is None
    assert len(await calls("postal")) == 1


async def test_a_postal_code_in_persian_digits_is_the_same_address(
    city: Any, agencies: Any, calls: Any
) -> None:
    code = (await postal_codes(city))[0]
    persian = "".join(chr(0x06F0 + int(digit)) for digit in code)
    assert await agencies.postal.address(persian) == await agencies.postal.address(code)
    assert len(await calls("postal")) == 1


@pytest.mark.parametrize("code", ["12345", "12/../34567", "57150000011"])
async def test_a_malformed_postal_code_is_rejected_without_a_call(
    agencies: Any, calls: Any, code: str
) -> None:
    with pytest.raises(AgencyRejected) as caught:
        await agencies.postal.address(code)
    assert caught.value.fault_code == "INVALID_POSTAL_CODE"
    assert await calls("postal") == []
    assert agencies.guards["postal"].stats().state == "closed"


async def test_correlation_arrives_as_http_headers(city: Any, agencies: Any, calls: Any) -> None:
    code = (await postal_codes(city))[0]
    with correlated(Correlation("req-9", "partner-2", "citizen-portal", "پرونده ۱۲")):
        await agencies.postal.address(code)
    (call,) = await calls("postal")
    assert call["correlation"]["x-request-id"] == "req-9"
    assert call["correlation"]["x-road-client"] == "partner-2"
    assert call["correlation"]["x-road-userid"] == "citizen-portal"
    # Not ASCII: percent-encoded, so it arrives whole.
    assert httpx.URL("?q=" + call["correlation"]["x-road-issue"]).params["q"] == "پرونده ۱۲"


def mocked(handler: Callable[[httpx.Request], httpx.Response], quick_policy: Any) -> PostalService:
    transport = AgencyTransport(httpx.MockTransport(handler), max_response_bytes=64 * 1024)
    http = httpx.AsyncClient(transport=transport)
    return PostalService(
        http, AgencyGuard("postal", quick_policy()), address="http://postal.test/api/"
    )


def answer(status: int, body: object, content_type: str = "application/json") -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.Response(status, content=content, headers={"Content-Type": content_type})


async def test_the_url_is_built_from_the_base_and_the_canonical_code(quick_policy: Any) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url.raw_path, "ascii"))
        return answer(200, GOOD)

    postal = mocked(handler, quick_policy)
    found = await postal.address("57150-00001")
    assert found is not None
    assert found.latitude == 37.0
    assert seen == ["/api/addresses/5715000001"]


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (answer(500, {"error": {"code": "INTERNAL_ERROR", "message": "x"}}), AgencyUnavailable),
        (answer(503, b"<html>down</html>", "text/html"), AgencyUnavailable),
        (answer(429, {"error": {"code": "SLOW_DOWN", "message": "x"}}), AgencyUnavailable),
        (answer(408, b"", "text/plain"), AgencyTimeout),
        (answer(404, b"<html>no such route</html>", "text/html"), AgencyUnavailable),
        (answer(302, b"", "text/plain"), AgencyUnavailable),
        (answer(200, b"<html>hello</html>", "text/html"), AgencyUnavailable),
        (answer(200, b"{not json", "application/json"), AgencyUnavailable),
        (answer(200, [GOOD]), AgencyUnavailable),
        (answer(200, {**GOOD, "region": "two"}), AgencyUnavailable),
        (answer(200, {**GOOD, "latitude": True}), AgencyUnavailable),
        (answer(200, {k: v for k, v in GOOD.items() if k != "city"}), AgencyUnavailable),
        (answer(200, {"padding": "x" * 100_000}), AgencyUnavailable),
        (answer(403, {"error": {"code": "FORBIDDEN", "message": "x"}}), AgencyRejected),
    ],
    ids=[
        "500",
        "503-html",
        "429",
        "408",
        "404-not-the-agency",
        "redirect",
        "html-200",
        "broken-json",
        "a-list",
        "wrong-type",
        "bool-for-number",
        "missing-field",
        "over-the-cap",
        "403",
    ],
)
async def test_answers_the_agency_should_never_give_map_to_connector_errors(
    quick_policy: Any, response: httpx.Response, error: type[Exception]
) -> None:
    postal = mocked(lambda request: response, quick_policy)
    with pytest.raises(error) as caught:
        await postal.address("5715000001")
    assert type(caught.value) is error
    assert str(caught.value).startswith("postal.GetAddress: ")


async def test_connection_failures_map_to_connector_errors(quick_policy: Any) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def stall(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(AgencyUnavailable):
        await mocked(refuse, quick_policy).address("5715000001")
    with pytest.raises(AgencyTimeout):
        await mocked(stall, quick_policy).address("5715000001")
