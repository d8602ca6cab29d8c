"""/_calls records what each agency received, correlation included and passwords never."""

from __future__ import annotations

from typing import Any

import httpx
from starlette.requests import Request

from db.demo import KNOWN_NATIONAL_CODE
from sandbox.calls import CallLog
from sandbox.run import Agencies
from sandbox.wsse import DEMO_PASSWORDS

CORRELATION = {
    "X-Request-Id": "req-42",
    "X-Road-Client": "IR/GOV/urmia-municipality/gateway",
    "X-Road-UserId": "notary-117",
    "X-Road-Issue": "inquiry-2024-0001",
}
XROAD = {
    "client": "IR/GOV/urmia-municipality/gateway",
    "service": "IR/GOV/sabteahval/GetPerson",
    "id": "msg-7",
    "userId": "notary-117",
    "issue": "inquiry-2024-0001",
}


async def calls_of(http: httpx.AsyncClient, url: str) -> list[dict[str, Any]]:
    response = await http.get(f"{url}/_calls")
    assert response.status_code == 200
    calls: list[dict[str, Any]] = response.json()["calls"]
    return calls


async def test_soap_call_records_xroad_headers_http_correlation_and_username(
    agencies: Agencies, http: httpx.AsyncClient, soap_service: Any
) -> None:
    await http.delete(f"{agencies.civil_registry}/_calls")
    service = soap_service("civil_registry", headers=CORRELATION)

    await service.GetPerson(nationalCode=KNOWN_NATIONAL_CODE, _soapheaders=XROAD)

    [call] = await calls_of(http, agencies.civil_registry)
    assert call["operation"] == "GetPerson"
    assert call["soapVersion"] == "1.1"
    assert call["soapHeaders"] == XROAD
    assert call["correlation"] == {name.lower(): value for name, value in CORRELATION.items()}
    assert call["username"] == "urmia-municipality"
    assert (call["outcome"], call["status"]) == ("ok", 200)


async def test_the_record_never_holds_a_password_or_digest(
    agencies: Agencies, http: httpx.AsyncClient, soap_service: Any
) -> None:
    await soap_service("civil_registry").GetPerson(nationalCode=KNOWN_NATIONAL_CODE)
    await http.get(
        f"{agencies.postal}/addresses/1234567890", headers={"Authorization": "Bearer t0ken"}
    )

    text = (await http.get(f"{agencies.civil_registry}/_calls")).text
    postal = (await http.get(f"{agencies.postal}/_calls")).text
    assert DEMO_PASSWORDS["civil_registry"] not in text
    assert "PasswordDigest" not in text
    assert "t0ken" not in postal


async def test_faults_are_recorded_with_their_code(
    agencies: Agencies, http: httpx.AsyncClient, post_soap: Any
) -> None:
    await http.delete(f"{agencies.land_registry}/_calls")

    await post_soap("land_registry", '<Nothing xmlns="urn:ir:ssaa:land-registry:v1"/>')

    [call] = await calls_of(http, agencies.land_registry)
    assert call["outcome"] == "fault:UNKNOWN_OPERATION"
    assert call["status"] == 500


async def test_soap_answers_echo_the_request_id_and_the_xroad_headers(
    agencies: Agencies, post_soap: Any
) -> None:
    from lxml import etree

    block = etree.Element("{urn:ir:gsb:xroad:v1}id")
    block.text = "msg-99"
    response = await post_soap(
        "civil_registry",
        f'<GetPerson xmlns="urn:ir:sabteahval:civil-registry:v1"><nationalCode>'
        f"{KNOWN_NATIONAL_CODE}</nationalCode></GetPerson>",
        soap_headers=[block],
        headers={"X-Request-Id": "req-99"},
    )

    assert response.headers["x-request-id"] == "req-99"
    assert etree.fromstring(response.content).findtext("{*}Header/{urn:ir:gsb:xroad:v1}id") == (
        "msg-99"
    )


async def test_postal_records_http_correlation_and_delete_clears(
    agencies: Agencies, http: httpx.AsyncClient
) -> None:
    await http.delete(f"{agencies.postal}/_calls")

    response = await http.get(f"{agencies.postal}/addresses/1234567890", headers=CORRELATION)
    [call] = await calls_of(http, agencies.postal)
    cleared = await http.delete(f"{agencies.postal}/_calls")

    assert response.headers["x-request-id"] == "req-42"
    assert call["correlation"]["x-road-issue"] == "inquiry-2024-0001"
    assert call["operation"] == "GetAddress"
    assert cleared.status_code == 204
    assert await calls_of(http, agencies.postal) == []


def test_the_log_keeps_only_the_newest_calls() -> None:
    log = CallLog(capacity=3)
    for n in range(5):
        scope = {
            "type": "http",
            "method": "GET",
            "path": f"/{n}",
            "headers": [],
            "query_string": b"",
        }
        log.start("postal", Request(scope))

    assert [call.path for call in log.calls()] == ["/2", "/3", "/4"]
