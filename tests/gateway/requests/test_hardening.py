"""Citizen requests attacked as a hostile partner, a curious citizen and a careless operator
would, over HTTP with real keys: the limits of registration (huge and malformed input,
non-http photos, coordinates that are not numbers, Persian digits), acting on another
registrar's request through the appointments, guessing a mobile's last digits there, huge
pages, Open311's errors in Persian, and `gateway seed --reset` clearing the contact centre."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import ValidationError
from sqlalchemy import create_engine, func, select, update

from gateway.cli import main
from gateway.inquiries.tracking import new_tracking_code
from gateway.requests.records import REQUESTS
from gateway.settings import Settings
from tests.conftest import Backend
from tests.gateway.requests.registration_world import (
    SUBMIT,
    World,
    error_code,
    make_world,
    registered,
    request_input,
    submit,
)

CANCEL = """
mutation($code: String!, $last4: String) {
  cancelAppointment(input: {trackingCode: $code, mobileLast4: $last4}) { trackingCode }
}"""
BOOK = """
mutation($slot: ID!, $code: String!, $last4: String) {
  bookAppointment(input: {slotId: $slot, trackingCode: $code, mobileLast4: $last4}) {
    trackingCode
  }
}"""
PERSONAL = """
query($code: String!) { citizenRequest(trackingCode: $code) { citizenMobile citizenName } }
"""
QUEUE = "query($n: Int) { departmentRequests(first: $n) { totalCount } }"
V2 = "/open311/v2"


@pytest.fixture(scope="module")
async def world(backend: Backend) -> AsyncIterator[World]:
    # A generous per-address lookup limit: the per-code failure limit is what is tested.
    async for made in make_world(backend, request_lookup_rate="10000/minute"):
        yield made


def field_of(body: dict[str, Any]) -> str | None:
    field: str | None = body["errors"][0]["extensions"].get("field")
    return field


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"description": "ا" * 4001}, "description"),
        ({"description": "   "}, "description"),
        ({"photoUrls": [f"https://photos.example/{i}.jpg" for i in range(11)]}, "photoUrls"),
        ({"photoUrls": ["javascript:alert(1)"]}, "photoUrls"),
        ({"photoUrls": ["file:///etc/passwd"]}, "photoUrls"),
        ({"photoUrls": ["https://photos.example/" + "a" * 600]}, "photoUrls"),
        ({"latitude": 91.0}, "latitude"),
        ({"longitude": -181.0}, "longitude"),
        ({"latitude": 10.0, "longitude": 10.0}, "latitude"),  # on Earth, outside the city
        ({"latitude": None}, "latitude"),  # one coordinate without the other
        ({"citizenMobile": "0912123456"}, "citizenMobile"),
        ({"citizenMobile": "۰۹۱۲۱۲۳۴۵۶۷۸"}, "citizenMobile"),
        ({"citizenName": "x"}, "citizenName"),
        ({"idempotencyKey": "k" * 10_000}, "idempotencyKey"),
        ({"idempotencyKey": ""}, "idempotencyKey"),
        ({"idempotencyKey": "line\nbreak"}, "idempotencyKey"),
        ({"address": "a" * 501, "latitude": None, "longitude": None}, "address"),
        ({"latitude": None, "longitude": None}, "address"),  # nowhere
        ({"serviceCode": "no_such_service"}, "serviceCode"),
    ],
)
async def test_registration_refuses_each_bad_field_by_name(
    world: World, overrides: dict[str, Any], field: str
) -> None:
    if overrides.get("latitude", 0) is None and "longitude" not in overrides:
        overrides = {**overrides, "longitude": 45.0761}
    body = await submit(world, "portal", **overrides)
    assert error_code(body) == "BAD_USER_INPUT", body
    assert field_of(body) == field, body


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
async def test_coordinates_that_are_not_numbers_are_refused(world: World, number: str) -> None:
    # Python's JSON reader takes NaN and Infinity; the gateway must not store them.
    variables = json.dumps({"input": request_input(world)}).replace(
        '"latitude": 37.5527', f'"latitude": {number}'
    )
    assert number in variables
    response = await world.http.post(
        "/graphql",
        content=f'{{"query": {json.dumps(SUBMIT)}, "variables": {variables}}}',
        headers={
            "Authorization": f"Bearer {world.keys['portal']}",
            "Content-Type": "application/json",
        },
    )
    body = response.json()
    assert body.get("data") in (None, {"submitCitizenRequest": None}), body
    # Refused as a malformed body (strict JSON) or a value that is not a Float, never stored.
    assert body["errors"][0]["extensions"]["code"] in ("BAD_REQUEST", "BAD_USER_INPUT"), body


async def test_a_mobile_in_persian_digits_is_stored_in_ascii(world: World) -> None:
    created = await registered(world, "centre", citizenMobile="۰۹۱۲ ۳۴۵-۶۷۸۹")
    read = await world.as_("operator")(PERSONAL, {"code": created["trackingCode"]})
    assert read["data"]["citizenRequest"]["citizenMobile"] == "09123456789", read


async def test_a_page_is_never_enormous(world: World) -> None:
    body = await world.as_("operator")(QUEUE, {"n": 1_000_000})
    assert error_code(body) == "QUERY_TOO_COMPLEX", body  # the page-size guard, documented
    answer = await world.http.get(
        f"{V2}/requests.json", params={"page_size": "1000000"},
        headers={"Authorization": f"Bearer {world.keys['operator']}"},
    )  # fmt: skip
    assert answer.status_code == 400, answer.text
    assert answer.json()[0]["code"] == 400


async def test_a_partner_key_does_not_reach_another_registrars_appointments(
    world: World,
) -> None:
    created = await registered(world, "portal")
    code = created["trackingCode"]
    # The portal's request holds no appointment: whoever may act on it hears CONFLICT.
    for allowed in ("portal", "operator"):
        body = await world.as_(allowed)(CANCEL, {"code": code})
        assert error_code(body) == "CONFLICT", (allowed, body)
    # A partner app's key (and another department's) may not: as if the code did not exist,
    # whether it cancels, books or probes.
    for stranger in ("partner", "planning"):
        cancelled = await world.as_(stranger)(CANCEL, {"code": code})
        assert error_code(cancelled) == "NOT_FOUND", (stranger, cancelled)
        booked = await world.as_(stranger)(BOOK, {"slot": "QXBwb2ludG1lbnRTbG90OjE=", "code": code})
        assert error_code(booked) == "NOT_FOUND", (stranger, booked)


async def test_guessing_a_mobiles_last_digits_through_the_appointments_is_throttled(
    world: World,
) -> None:
    created = await registered(world, "portal", citizenMobile="09125550123")
    code = created["trackingCode"]
    # Persian digits are the same digits: the right ending is not refused as malformed.
    right = await world.as_(None)(CANCEL, {"code": code, "last4": "۰۱۲۳"})
    assert error_code(right) == "CONFLICT", right  # it holds no appointment
    answers = [
        error_code(await world.as_(None)(CANCEL, {"code": code, "last4": f"{guess:04d}"}))
        for guess in range(1, 8)
    ]
    # The failures per code (5 an hour by default), then RATE_LIMITED, as citizenRequest.
    assert answers[:5] == ["NOT_FOUND"] * 5, answers
    assert answers[5:] == ["RATE_LIMITED"] * 2, answers
    # The right digits are throttled too now: the limit tells nothing.
    late = await world.as_(None)(CANCEL, {"code": code, "last4": "0123"})
    assert error_code(late) == "RATE_LIMITED", late


async def test_open311_errors_are_persian_when_asked(world: World) -> None:
    never = new_tracking_code()
    persian = await world.http.get(f"{V2}/requests/{never}.json", headers={"Accept-Language": "fa"})
    english = await world.http.get(f"{V2}/requests/{never}.json", headers={"Accept-Language": "en"})
    assert persian.status_code == english.status_code == 404
    (error,) = persian.json()
    assert error["description"] != english.json()[0]["description"]
    assert any("\u0600" <= ch <= "\u06ff" for ch in error["description"]), error
    assert error["description"].endswith("(NOT_FOUND)")
    xml = await world.http.get(f"{V2}/requests.xml?page_size=0", headers={"Accept-Language": "fa"})
    assert xml.status_code == 400
    assert (
        xml.headers["content-type"].startswith("text/xml") or "xml" in xml.headers["content-type"]
    )
    assert "<errors>" in xml.text
    assert any("\u0600" <= ch <= "\u06ff" for ch in xml.text)


def test_seed_reset_clears_the_contact_centre(tmp_path: Path) -> None:
    env = {"GATEWAY_DATA_DIR": str(tmp_path)}
    runner = CliRunner()
    first = runner.invoke(main, ["seed", "--parcels", "20"], env=env)
    assert first.exit_code == 0, first.output
    engine = create_engine(f"sqlite:///{tmp_path / 'contact.sqlite3'}")
    requests = REQUESTS
    with engine.begin() as connection:
        seeded = connection.scalar(select(func.count()).select_from(requests))
        assert seeded
        # A mark the demo never makes, on a request that is some other's parent.
        first_id, second_id = connection.scalars(select(requests.c.id).limit(2)).all()
        connection.execute(
            update(requests).where(requests.c.id == first_id).values(description="R5 mark")
        )
        connection.execute(
            update(requests).where(requests.c.id == second_id).values(parent_id=first_id)
        )
    reset = runner.invoke(main, ["seed", "--parcels", "10", "--reset"], env=env)
    assert reset.exit_code == 0, reset.output
    with engine.connect() as connection:
        marked = connection.scalar(
            select(func.count()).select_from(requests).where(requests.c.description == "R5 mark")
        )
        assert marked == 0
        assert connection.scalar(select(func.count()).select_from(requests))
    engine.dispose()


def test_a_careless_operator_cannot_make_hotspots_point_at_one_household() -> None:
    # The hotspots are public: a cell of one or two reports would show where a citizen lives.
    for unsafe in (1, 2):
        with pytest.raises(ValidationError, match="request_hotspot_min_count"):
            Settings(request_hotspot_min_count=unsafe)
    assert Settings(request_hotspot_min_count=3).request_hotspot_min_count == 3


def _form(**fields: str | None) -> dict[str, str]:
    form = {
        "service_code": "pothole",
        "lat": "37.5527",
        "long": "45.0761",
        "first_name": "زهرا",
        "phone": "0914 123 4567",
        "description": "چاله بزرگ وسط خیابان",
        **fields,
    }
    return {name: value for name, value in form.items() if value is not None}


@pytest.mark.parametrize(
    ("fields", "headers", "field"),
    [
        ({"lat": "NaN"}, {}, "lat"),
        ({"long": "-Infinity"}, {}, "long"),
        ({"lat": "1e999"}, {}, "lat"),
        ({"description": "ا" * 4001}, {}, "description"),
        ({"media_url": "ftp://photos.example/1.jpg"}, {}, "media_url"),
        ({"phone": "۰۹۱۴۱۲۳"}, {}, "phone"),
        ({}, {"Idempotency-Key": "k" * 10_000}, "Idempotency-Key"),
    ],
)
async def test_open311_refuses_each_bad_field_by_name(
    world: World, fields: dict[str, str], headers: dict[str, str], field: str
) -> None:
    answer = await world.http.post(
        f"{V2}/requests.json",
        data=_form(**fields),
        headers={"Authorization": f"Bearer {world.keys['partner']}", **headers},
    )
    assert answer.status_code == 400, answer.text
    (error,) = answer.json()
    assert error["description"].endswith("(BAD_USER_INPUT)"), error
    assert field in error["description"], error
