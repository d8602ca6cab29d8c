"""The civil registry answers from planning's persons, with a few deceased by rule."""

from __future__ import annotations

import datetime as dt
from typing import Any

import jdatetime
import pytest
import zeep.exceptions
from sqlalchemy import select

from db.demo import KNOWN_NATIONAL_CODE
from db.planning import Person
from identifiers import make_national_code
from sandbox.dataset import DECEASED
from sandbox.soap import read_fault

NS = "urn:ir:sabteahval:civil-registry:v1"


async def persons(city: Any) -> list[Any]:
    async with city.planning.connect() as connection:
        return list((await connection.execute(select(Person).order_by(Person.id))).all())


def fault_code(error: zeep.exceptions.Fault) -> str | None:
    detail = error.detail
    assert detail is not None
    return detail.findtext(f"{{{NS}}}ServiceFault/{{{NS}}}code") or detail.findtext(f"{{{NS}}}code")


async def test_known_person_matches_planning(soap_service: Any) -> None:
    person = await soap_service("civil_registry").GetPerson(nationalCode=KNOWN_NATIONAL_CODE)

    assert person.nationalCode == KNOWN_NATIONAL_CODE
    assert (person.firstName, person.lastName, person.fatherName) == ("علی", "رضایی", "حسن")
    assert person.birthDateJalali == "1345/06/15"
    assert person.birthDate == jdatetime.date(1345, 6, 15).togregorian()
    assert person.gender == "MALE"
    assert person.alive is True
    assert person.deathDate is None


async def test_every_person_agrees_and_the_deceased_follow_the_rule(
    city: Any, soap_service: Any
) -> None:
    service = soap_service("civil_registry")
    deceased = 0
    for row in (await persons(city))[:60]:
        person = await service.GetPerson(nationalCode=row.national_code, birthDate=row.birth_date)
        assert (person.firstName, person.lastName, person.fatherName) == (
            row.first_name,
            row.last_name,
            row.father_name,
        )
        assert person.birthDate == row.birth_date
        assert person.alive is not DECEASED.applies(row.id)
        if not person.alive:
            deceased += 1
            assert person.deathDate > person.birthDate
    assert deceased >= 1


async def test_female_names_are_female(city: Any, soap_service: Any) -> None:
    service = soap_service("civil_registry")
    genders = set()
    for row in (await persons(city))[:30]:
        genders.add((await service.GetPerson(nationalCode=row.national_code)).gender)
    assert genders == {"MALE", "FEMALE"}


async def test_wrong_check_digit_is_invalid_input(soap_service: Any) -> None:
    wrong = KNOWN_NATIONAL_CODE[:9] + str((int(KNOWN_NATIONAL_CODE[9]) + 1) % 10)

    with pytest.raises(zeep.exceptions.Fault) as raised:
        await soap_service("civil_registry").GetPerson(nationalCode=wrong)

    assert raised.value.code.endswith("Client")
    assert fault_code(raised.value) == "INVALID_INPUT"
    assert "check digit" in raised.value.message
    assert wrong not in raised.value.message


async def test_missing_national_code_is_invalid_input(post_soap: Any) -> None:
    response = await post_soap("civil_registry", f'<GetPerson xmlns="{NS}"/>')

    fault = read_fault(response.content)
    assert response.status_code == 500
    assert fault is not None
    assert (fault.soap_code, fault.code) == ("soap:Client", "INVALID_INPUT")


async def test_unknown_person_is_not_found(soap_service: Any) -> None:
    with pytest.raises(zeep.exceptions.Fault) as raised:
        await soap_service("civil_registry").GetPerson(nationalCode=make_national_code("999999998"))

    assert fault_code(raised.value) == "NOT_FOUND"


async def test_wrong_birth_date_is_a_mismatch(soap_service: Any) -> None:
    with pytest.raises(zeep.exceptions.Fault) as raised:
        await soap_service("civil_registry").GetPerson(
            nationalCode=KNOWN_NATIONAL_CODE, birthDate=dt.date(1990, 1, 1)
        )

    assert fault_code(raised.value) == "BIRTH_DATE_MISMATCH"
