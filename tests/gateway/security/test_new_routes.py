"""The addresses added beside /graphql since issue 7 (Open311, the inquiries' letter, keys and
verification page, the dashboard), attacked as /graphql was:

- every error answer (404, 400, 401, 403, 405, 413, 429) carries the security headers and the
  gateway's X-Request-Id, in the documented shape of its protocol (a GraphQL error body with
  a documented code; Open311's error list, naming the code; an HTML page for /v);
- huge and malformed input (a 5,000-digit or fullwidth tracking code, an oversized body, a
  form of a hundred thousand fields, a key in the address) is refused with a documented
  error, never a 500; Persian digits are accepted as the README says;
- the addresses that read the databases for the caller are charged to its rate-limit window,
  by the connection's address: X-Forwarded-For from an untrusted peer rotates nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.edge.app import create_app
from gateway.errors import ERROR_CODES
from gateway.inquiries.tracking import new_tracking_code
from sandbox.run import Agencies as SandboxAgencies
from tests.conftest import Backend, settings_for

SECURITY_HEADERS = ("x-content-type-options", "referrer-policy", "x-frame-options")
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
HUGE_CODE = "9" * 5000
FULLWIDTH_CODE = "１２３４５６７８９０１２３４５６"
# A well-formed code (its check digit right) that no inquiry has, in ASCII and Persian digits.
UNKNOWN_CODE = new_tracking_code()
PERSIAN_CODE = UNKNOWN_CODE.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))
# (method, path, headers, body, status)
ERRORS = [
    ("GET", "/open311/v2/nothing.json", {}, None, 404),
    ("GET", "/open311/v2/services.json", {"Authorization": "Bearer gw_bad_bad"}, None, 403),
    ("GET", "/open311/v2/services.xml", {"Authorization": "Basic abc"}, None, 403),
    ("GET", "/open311/v2/services.json?api_key=gw_x", {}, None, 400),
    ("DELETE", "/open311/v2/services.json", {}, None, 405),
    ("POST", "/open311/v2/requests.json", {"Content-Type": "application/json"}, b"{}", 400),
    ("POST", "/open311/v2/requests.json", FORM, b"a=1&" * 100_000, 400),
    ("POST", "/open311/v2/requests.json", FORM, b"a" * 2_000_000, 413),
    ("GET", f"/open311/v2/requests/{HUGE_CODE[:1500]}.json", {}, None, 400),
    ("GET", f"/open311/v2/requests/{FULLWIDTH_CODE}.json", {}, None, 400),
    ("GET", "/open311/v2/requests.json?start_date=" + "9" * 1500, {}, None, 400),
    ("GET", f"/v/{HUGE_CODE[:1500]}", {}, None, 400),
    ("GET", f"/v/{FULLWIDTH_CODE}", {}, None, 400),
    ("GET", "/v/%00%00", {}, None, 400),
    ("GET", f"/v/{PERSIAN_CODE}", {}, None, 404),  # Persian digits: a code, unknown
    ("POST", "/v", FORM, b"answer=", 400),
    ("POST", "/v", {}, b"a" * 2_000_000, 413),
    ("PUT", "/v", {}, None, 405),
    ("GET", "/inquiries/123/letter", {}, None, 400),
    ("GET", f"/inquiries/{HUGE_CODE[:1500]}/letter", {}, None, 400),
    ("GET", f"/inquiries/{FULLWIDTH_CODE}/letter", {}, None, 400),
    ("GET", f"/inquiries/{UNKNOWN_CODE}/letter", {"Authorization": "Bearer nope"}, None, 401),
    ("GET", f"/inquiries/{UNKNOWN_CODE}/letter", {}, None, 404),
    ("GET", "/dashboard/nothing", {}, None, 404),
    ("POST", "/dashboard", {}, None, 405),
    ("POST", "/.well-known/jwks.json", {}, None, 405),
    ("GET", "/.well-known/nothing", {}, None, 404),
]


@pytest.mark.parametrize(("method", "path", "headers", "body", "status"), ERRORS)
async def test_every_error_of_the_new_addresses_is_documented_with_its_headers(
    attacked: httpx.AsyncClient,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes | None,
    status: int,
) -> None:
    response = await attacked.request(method, path, headers=headers, content=body)
    assert response.status_code == status, (path[:80], response.text[:300])
    assert len(response.headers["x-request-id"]) == 32
    for name in SECURITY_HEADERS:
        assert name in response.headers, (name, path[:80])
    assert "content-security-policy" in response.headers
    media_type = response.headers["content-type"]
    if path.startswith("/open311/") and ".xml" in path:
        assert f"<code>{status}</code>" in response.text
    elif path.startswith("/open311/") and status != 413:
        (error,) = response.json()
        assert error["code"] == status
        assert error["description"].rsplit("(", 1)[1].rstrip(")") in ERROR_CODES
    elif media_type.startswith("text/html"):
        assert "<!DOCTYPE html>" in response.text
    else:
        (error,) = response.json()["errors"]
        assert error["extensions"]["code"] in ERROR_CODES


@pytest.fixture(scope="module")
async def strict(backend: Backend, sandbox: SandboxAgencies) -> AsyncIterator[httpx.AsyncClient]:
    """The public may make 4 requests a minute."""
    app = create_app(settings_for(backend, sandbox, rate_limit_public="4/minute"))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway.test"
        ) as http,
    ):
        yield http


CHARGED = [
    ("GET", "/dashboard/regions.json", None),
    ("GET", "/v/1234567890123452", None),
    ("POST", "/v", b"answer=abc"),
    ("GET", "/inquiries/1234567890123452/letter", None),
    ("GET", "/open311/v2/services.json", None),
    ("GET", "/open311/v2/requests/1234567890123452.json", None),
]


@pytest.mark.parametrize(("method", "path", "body"), CHARGED)
async def test_the_new_addresses_count_against_the_callers_window(
    strict: httpx.AsyncClient, method: str, path: str, body: bytes | None
) -> None:
    # A window of its own: each case comes from its own (connection) address, by its place in
    # the list (a string's hash changes from one process to the next, and two could meet).
    client = ("192.0.2." + str(CHARGED.index((method, path, body)) + 1), 40000)
    transport = strict._transport
    assert isinstance(transport, httpx.ASGITransport)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=transport.app, client=client),
        base_url="http://gateway.test",
    ) as http:
        statuses = []
        for number in range(6):
            rotated = {
                "X-Forwarded-For": f"10.9.{number}.1",
                "X-Real-IP": f"10.8.{number}.1",
                "Forwarded": f"for=10.7.{number}.1",
                **FORM,
            }
            response = await http.request(method, path, headers=rotated, content=body)
            statuses.append(response.status_code)
        assert statuses[4:] == [429, 429], statuses
        assert 429 not in statuses[:4], statuses
        assert int(response.headers["retry-after"]) >= 1
        assert response.headers["x-request-id"]
