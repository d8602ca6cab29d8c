"""In-person appointments: slots made from office hours on working days (Thursdays, Fridays
and the holiday table skipped), listed, booked, moved and cancelled by tracking code over HTTP;
the anonymous citizen needs the mobile number's last four digits; and 200 concurrent bookings
of the same 10 slots give exactly 10 bookings and 190 CONFLICTs, on every backend."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from db.contact import AppointmentEvent, AppointmentSlot, RequestHistoryRecord
from db.engines import Databases
from gateway.access.principals import PrincipalKind
from gateway.edge.app import create_app
from gateway.figures import TEHRAN
from gateway.inquiries.workdays import Workweek
from gateway.requests.appointments import OfficeHours, office_times
from tests.conftest import GraphQLClient, make_backend, mint_key, settings_for
from tests.gateway.requests.contact_rows import Req, add_requests, catalogue, request_id

NOW = dt.datetime(2021, 6, 1, 6, 0, tzinfo=dt.UTC)  # a Tuesday
FIRST_DAY = dt.date(2021, 6, 5)  # the Saturday after
HOLIDAY = dt.date(2021, 6, 7)  # a Monday, made a holiday by the table
CROWD = 200
CONTESTED = 10


def test_office_times_skip_thursdays_fridays_and_holidays_in_tehran_time() -> None:
    hours = OfficeHours(Workweek(holidays=frozenset({HOLIDAY})), slot_minutes=30)
    times = office_times(hours, FIRST_DAY, 7)
    days = sorted({start.astimezone(TEHRAN).date() for start, _ in times})
    # Saturday, Sunday, (Monday's holiday), Tuesday, Wednesday; not Thursday 10, Friday 11.
    assert days == [dt.date(2021, 6, d) for d in (5, 6, 8, 9)]
    assert len(times) == 4 * 10  # 08:00 to 13:00 in half hours
    first_start, first_end = times[0]
    # Iran kept summer time in 2021: 08:00 at +04:30 is 03:30 UTC.
    assert first_start == dt.datetime(2021, 6, 5, 3, 30, tzinfo=dt.UTC)
    assert first_end - first_start == dt.timedelta(minutes=30)
    _, last_end = times[-1]
    assert last_end.astimezone(TEHRAN).time() == dt.time(13, 0)


def test_a_slot_that_would_run_past_closing_is_not_made() -> None:
    hours = OfficeHours(Workweek(), opens=dt.time(8, 0), closes=dt.time(9, 0), slot_minutes=25)
    times = office_times(hours, FIRST_DAY, 1)
    assert [start.astimezone(TEHRAN).time() for start, _ in times] == [
        dt.time(8, 0),
        dt.time(8, 25),
    ]


@dataclass
class Setup:
    databases: Databases
    http: httpx.AsyncClient
    operator: GraphQLClient
    centre: GraphQLClient  # the 137 centre's department key
    public: GraphQLClient
    portal: GraphQLClient  # a department that may not generate slots
    codes: list[str]  # tracking codes of open requests for the in-person service
    closed_code: str
    other_service_code: str


@pytest.fixture(scope="module", params=["sqlite", "postgres", "mariadb"])
async def setup(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Setup]:
    tmp: Path = tmp_path_factory.mktemp(f"appointments-{request.param}")
    backend, server = await make_backend(request.param, tmp, parcels=0)
    app = create_app(settings_for(backend), wall_clock=lambda: NOW)
    try:
        async with app.router.lifespan_context(app):
            databases: Databases = app.state.databases
            engine = databases.engine("contact")
            ids = await catalogue(
                engine,
                [("permit_visit", "IN_PERSON"), ("pothole", "PORTAL")],
                holidays=[HOLIDAY],
            )
            registered = dt.datetime(2021, 5, 30, 8, 0)
            open_requests = [
                Req("permit_visit", registered, mobile=f"0912{i:07d}", channel="CENTRE_137")
                for i in range(CROWD + 5)
            ]
            codes = await add_requests(engine, ids, open_requests)
            (closed_code,) = await add_requests(
                engine,
                ids,
                [Req("permit_visit", registered, status="CLOSED", channel="CENTRE_137")],
            )
            (other,) = await add_requests(
                engine, ids, [Req("pothole", registered, channel="CENTRE_137")]
            )
            keys = {}
            for label, kind, department in (
                ("operator", PrincipalKind.OPERATOR, None),
                ("centre", PrincipalKind.DEPARTMENT, "contact137"),
                ("portal", PrincipalKind.DEPARTMENT, "urban_services"),
            ):
                _, keys[label] = await mint_key(databases, kind, label, department)
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://gateway.test"
            ) as http:
                yield Setup(
                    databases,
                    http,
                    GraphQLClient(http, keys["operator"]),
                    GraphQLClient(http, keys["centre"]),
                    GraphQLClient(http),
                    GraphQLClient(http, keys["portal"]),
                    codes,
                    closed_code,
                    other,
                )
    finally:
        if server is not None:
            await server.drop_all()


GENERATE = """
mutation ($days: Int!) {
  generateAppointmentSlots(input: {firstDay: "2021-06-05", days: $days})
}"""
SLOTS = """
query ($region: Int, $first: Int!) {
  appointmentSlots(serviceCode: "permit_visit", region: $region, first: $first) {
    id region regionOffice serviceCode startsAt endsAt free
  }
}"""
BOOK = """
mutation ($slot: ID!, $code: String!, $last4: String) {
  bookAppointment(input: {slotId: $slot, trackingCode: $code, mobileLast4: $last4}) {
    trackingCode slot { id startsAt free } released { id }
  }
}"""
RESCHEDULE = """
mutation ($slot: ID!, $code: String!, $last4: String) {
  rescheduleAppointment(input: {slotId: $slot, trackingCode: $code, mobileLast4: $last4}) {
    slot { id } released { id free }
  }
}"""
CANCEL = """
mutation ($code: String!, $last4: String) {
  cancelAppointment(input: {trackingCode: $code, mobileLast4: $last4}) {
    slot { id } released { id free }
  }
}"""


def code_of(body: dict[str, Any]) -> str:
    return str(body["errors"][0]["extensions"]["code"])


async def slots(client: GraphQLClient, first: int = 100, region: int | None = None) -> list[Any]:
    body = await client(SLOTS, {"first": first, "region": region})
    assert "errors" not in body, body
    found: list[Any] = body["data"]["appointmentSlots"]
    return found


async def test_slots_are_generated_once_per_office_service_and_time(setup: Setup) -> None:
    refused = await setup.portal(GENERATE, {"days": 7})
    assert code_of(refused) == "FORBIDDEN"
    made = await setup.centre(GENERATE, {"days": 7})
    assert made["data"]["generateAppointmentSlots"] == 2 * 4 * 10  # two offices, four days
    again = await setup.operator(GENERATE, {"days": 7})
    assert again["data"]["generateAppointmentSlots"] == 0
    too_many = await setup.operator(GENERATE, {"days": 400})
    assert code_of(too_many) == "BAD_USER_INPUT"
    listed = await slots(setup.public, first=100, region=1)
    assert len(listed) == 40
    assert {slot["regionOffice"] for slot in listed} == {"office-1"}
    assert listed[0]["startsAt"].startswith("2021-06-05T03:30:00")
    assert all(slot["free"] for slot in listed)
    async with setup.databases.engine("contact").connect() as connection:
        portal_slots = await connection.scalar(
            select(func.count()).select_from(AppointmentSlot).where(AppointmentSlot.service_id != 1)
        )
    assert portal_slots == 0  # a portal service has no appointments


async def test_book_reschedule_and_cancel_by_tracking_code(setup: Setup) -> None:
    await setup.operator(GENERATE, {"days": 7})
    free = await slots(setup.public, region=2)
    code, mobile = setup.codes[CROWD], f"0912{CROWD:07d}"
    first, second = free[0]["id"], free[1]["id"]

    # The anonymous citizen: the last four digits are needed, and must match.
    missing = await setup.public(BOOK, {"slot": first, "code": code})
    assert code_of(missing) == "BAD_USER_INPUT"
    wrong = await setup.public(BOOK, {"slot": first, "code": code, "last4": "0000"})
    assert code_of(wrong) == "NOT_FOUND"
    booked = await setup.public(BOOK, {"slot": first, "code": code, "last4": mobile[-4:]})
    assert "errors" not in booked, booked
    assert booked["data"]["bookAppointment"]["slot"] == {
        "id": first,
        "startsAt": free[0]["startsAt"],
        "free": False,
    }
    assert first not in {slot["id"] for slot in await slots(setup.public, region=2)}

    # One appointment a request: a second booking is refused, a move is the way.
    twice = await setup.centre(BOOK, {"slot": second, "code": code})
    assert code_of(twice) == "CONFLICT"
    moved = await setup.centre(RESCHEDULE, {"slot": second, "code": code})
    assert moved["data"]["rescheduleAppointment"] == {
        "slot": {"id": second},
        "released": {"id": first, "free": True},
    }
    # Someone else holds `first` now: moving back onto a booked slot keeps the current one.
    other = setup.codes[CROWD + 1]
    assert "errors" not in await setup.centre(BOOK, {"slot": first, "code": other})
    refused = await setup.centre(RESCHEDULE, {"slot": first, "code": code})
    assert code_of(refused) == "CONFLICT"
    listed = {slot["id"] for slot in await slots(setup.public, first=100)}
    assert second not in listed
    assert first not in listed

    cancelled = await setup.public(CANCEL, {"code": code, "last4": mobile[-4:]})
    assert cancelled["data"]["cancelAppointment"] == {
        "slot": None,
        "released": {"id": second, "free": True},
    }
    assert code_of(await setup.public(CANCEL, {"code": code, "last4": mobile[-4:]})) == "CONFLICT"
    assert second in {slot["id"] for slot in await slots(setup.public, first=100)}

    engine = setup.databases.engine("contact")
    own = await request_id(engine, code)
    async with engine.connect() as connection:
        events = list(
            await connection.scalars(
                select(AppointmentEvent.event)
                .where(AppointmentEvent.request_id == own)
                .order_by(AppointmentEvent.id)
            )
        )
        history = list(
            await connection.scalars(
                select(RequestHistoryRecord.event)
                .where(RequestHistoryRecord.request_id == own)
                .order_by(RequestHistoryRecord.id)
            )
        )
    assert events == ["BOOKED", "RESCHEDULED", "CANCELLED"]
    assert history == ["APPT_BOOKED", "APPT_RESCHEDULED", "APPT_CANCELLED"]


async def test_bookings_that_cannot_be_are_refused_with_their_reason(setup: Setup) -> None:
    await setup.operator(GENERATE, {"days": 7})
    slot = (await slots(setup.public, first=100))[-1]["id"]
    closed = await setup.centre(BOOK, {"slot": slot, "code": setup.closed_code})
    assert code_of(closed) == "CONFLICT"
    other_service = await setup.centre(BOOK, {"slot": slot, "code": setup.other_service_code})
    assert code_of(other_service) == "BAD_USER_INPUT"
    unknown = await setup.centre(BOOK, {"slot": slot, "code": "1234567890123452"})
    assert code_of(unknown) in {"NOT_FOUND", "BAD_USER_INPUT"}
    not_a_slot = await setup.centre(BOOK, {"slot": "bm9wZToy", "code": setup.codes[0]})
    assert code_of(not_a_slot) == "BAD_USER_INPUT"


async def test_two_hundred_concurrent_bookings_of_ten_slots_book_exactly_ten(
    setup: Setup,
) -> None:
    await setup.operator(GENERATE, {"days": 7})
    contested = [slot["id"] for slot in (await slots(setup.public, first=100, region=1))][
        -CONTESTED:
    ]

    async def book(i: int) -> dict[str, Any]:
        return await setup.centre(BOOK, {"slot": contested[i % CONTESTED], "code": setup.codes[i]})

    answers = await asyncio.gather(*(book(i) for i in range(CROWD)))
    outcomes = Counter("booked" if "errors" not in a else code_of(a) for a in answers)
    assert outcomes == {"booked": CONTESTED, "CONFLICT": CROWD - CONTESTED}
    refusals = {a["errors"][0]["message"] for a in answers if "errors" in a}
    assert refusals == {"The slot is already booked: choose another."}
    winners = Counter(
        a["data"]["bookAppointment"]["slot"]["id"] for a in answers if "errors" not in a
    )
    assert winners == dict.fromkeys(contested, 1)
    async with setup.databases.engine("contact").connect() as connection:
        held = await connection.execute(
            select(AppointmentSlot.id, AppointmentSlot.booked_request_id).where(
                AppointmentSlot.booked_request_id.is_not(None)
            )
        )
        booked_events = await connection.scalar(
            select(func.count())
            .select_from(AppointmentEvent)
            .where(AppointmentEvent.event == "BOOKED")
        )
    rows = list(held)
    assert len({slot for slot, _ in rows}) == len(rows)
    assert len({request for _, request in rows}) == len(rows)
    assert booked_events is not None
    assert booked_events >= CONTESTED
