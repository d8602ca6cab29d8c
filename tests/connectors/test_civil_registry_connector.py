"""The civil registry connector against the sandbox registry: records, faults, WS-Security and
the correlation every call carries."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select

from connectors.correlation import Correlation, correlated
from connectors.errors import AgencyRejected
from connectors.resilience import current_request_id
from connectors.soap.civil_registry import CivilRecord
from db.planning import Person
from identifiers import make_national_code
from sandbox import dataset
from sandbox.civil_registry import jalali
from sandbox.wsse import DEMO_USERNAME


async def people(city: Any) -> list[tuple[int, str, dt.date]]:
    async with city.databases.planning.connect() as connection:
        rows = (
            await connection.execute(
                select(Person.id, Person.national_code, Person.birth_date).order_by(Person.id)
            )
        ).all()
    return [(row.id, row.national_code, row.birth_date) for row in rows]


def expected(record: dataset.CivilRecord) -> CivilRecord:
    return CivilRecord(
        national_code=record.national_code,
        first_name=record.first_name,
        last_name=record.last_name,
        father_name=record.father_name,
        birth_date=record.birth_date,
        birth_date_jalali=jalali(record.birth_date),
        gender=record.gender,  # type: ignore[arg-type]
        alive=record.alive,
        death_date=record.death_date,
    )


async def unknown_code(city: Any) -> str:
    known = {code for _, code, _ in await people(city)}
    for first9 in range(123_456_789, 123_456_999):
        code = make_national_code(str(first9))
        if code not in known:
            return code
    raise AssertionError("no unknown national code found")


async def test_person_is_the_registry_record(city: Any, agencies: Any) -> None:
    everyone = await people(city)
    sample = [p for p in everyone if dataset.DECEASED.applies(p[0])][:3] + everyone[:12]
    assert any(dataset.DECEASED.applies(person_id) for person_id, _, _ in sample)
    for _, code, _ in sample:
        truth = await city.dataset.person(code)
        found = await agencies.civil_registry.person(code)
        assert found == expected(truth)
        assert found.alive == (found.death_date is None)


async def test_an_unknown_person_is_none_and_remembered(
    city: Any, agencies: Any, calls: Any
) -> None:
    code = await unknown_code(city)
    assert await agencies.civil_registry.person(code) is None
    assert await agencies.civil_registry.person(code) is None
    assert len(await calls("civil_registry")) == 1


async def test_a_birth_date_is_checked_against_the_record(city: Any, agencies: Any) -> None:
    _, code, birth_date = (await people(city))[0]
    found = await agencies.civil_registry.person(code, birth_date)
    assert found is not None
    assert found.birth_date == birth_date
    with pytest.raises(AgencyRejected) as caught:
        await agencies.civil_registry.person(code, birth_date + dt.timedelta(days=1))
    assert caught.value.fault_code == "BIRTH_DATE_MISMATCH"


async def test_a_national_code_with_a_bad_check_digit_is_rejected(agencies: Any) -> None:
    with pytest.raises(AgencyRejected) as caught:
        await agencies.civil_registry.person("1234567890")
    assert caught.value.fault_code == "INVALID_INPUT"
    assert "1234567890" not in str(caught.value)


async def test_calls_carry_the_demo_username_token(city: Any, agencies: Any, calls: Any) -> None:
    _, code, _ = (await people(city))[0]
    await agencies.civil_registry.person(code)
    (call,) = await calls("civil_registry")
    assert call["username"] == DEMO_USERNAME
    assert call["outcome"] == "ok"


@pytest.mark.parametrize(
    "credentials",
    [{"username": None, "password": None}, {"username": DEMO_USERNAME, "password": "wrong"}],
    ids=["none", "wrong-password"],
)
async def test_the_registry_refuses_calls_without_valid_credentials(
    city: Any, make_agencies: Any, credentials: dict[str, Any]
) -> None:
    agencies = make_agencies(civil_registry=credentials)
    _, code, _ = (await people(city))[0]
    with pytest.raises(AgencyRejected) as caught:
        await agencies.civil_registry.person(code)
    assert caught.value.fault_code == "AUTHENTICATION_FAILED"


async def test_correlation_arrives_as_http_headers_and_xroad_soap_headers(
    city: Any, agencies: Any, calls: Any
) -> None:
    _, code, _ = (await people(city))[0]
    with correlated(Correlation("req-42", "partner-7", "operator-3", "inquiry-1403-17")):
        await agencies.civil_registry.person(code)
    (call,) = await calls("civil_registry")
    assert call["correlation"] == {
        "x-request-id": "req-42",
        "x-road-client": "partner-7",
        "x-road-userid": "operator-3",
        "x-road-issue": "inquiry-1403-17",
    }
    assert call["soapHeaders"] == {
        "client": "partner-7",
        "service": "civil_registry.GetPerson",
        "id": "req-42",
        "userId": "operator-3",
        "issue": "inquiry-1403-17",
    }


async def test_the_request_id_alone_comes_from_the_guards_context(
    city: Any, agencies: Any, calls: Any
) -> None:
    _, code, _ = (await people(city))[0]
    token = current_request_id.set("req-only")
    try:
        await agencies.civil_registry.person(code)
    finally:
        current_request_id.reset(token)
    (call,) = await calls("civil_registry")
    assert call["correlation"] == {"x-request-id": "req-only"}
    assert call["soapHeaders"] == {"service": "civil_registry.GetPerson", "id": "req-only"}


async def test_correlation_values_xml_cannot_hold_are_dropped_not_fatal(
    city: Any, agencies: Any, calls: Any
) -> None:
    _, code, _ = (await people(city))[0]
    with correlated(Correlation("req-1", issue="case\x00-\x1b12")):
        assert await agencies.civil_registry.person(code) is not None
    (call,) = await calls("civil_registry")
    assert call["soapHeaders"]["issue"] == "case-12"
    assert call["correlation"]["x-road-issue"] == "case%00-%1B12"
