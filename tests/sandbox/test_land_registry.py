"""The land registry agrees with planning's parcels, except where the discrepancy rules say."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest
import zeep.exceptions
import zeep.helpers
from lxml import etree
from sqlalchemy import select

from db.demo import KNOWN_NATIONAL_CODE
from db.planning import Ownership, Parcel, Person
from sandbox.dataset import (
    MORTGAGED,
    OTHER_AREA,
    OTHER_OWNER,
    SEIZED,
    deed_issued_on,
    deed_serial,
)
from sandbox.run import Agencies
from sandbox.soap import read_fault
from sandbox.wsdl import load

NS = "urn:ir:ssaa:land-registry:v1"


async def planning_parcels(city: Any) -> dict[int, dict[str, Any]]:
    """Every parcel with its owners as {national_code: share}, straight from planning."""
    async with city.planning.connect() as connection:
        parcels = (
            await connection.execute(
                select(
                    Parcel.id,
                    Parcel.registry_section,
                    Parcel.main_plate,
                    Parcel.sub_plate,
                    Parcel.area,
                ).order_by(Parcel.id)
            )
        ).all()
        owners = (
            await connection.execute(
                select(Ownership.parcel_id, Ownership.share, Person.national_code).join(
                    Person, Person.id == Ownership.person_id
                )
            )
        ).all()
    result = {
        p.id: {
            "plate": (p.registry_section, p.main_plate, p.sub_plate),
            "area": p.area,
            "owners": {},
        }
        for p in parcels
    }
    for owner in owners:
        result[owner.parcel_id]["owners"][owner.national_code] = owner.share
    return result


def plate_of(parcel: dict[str, Any]) -> dict[str, int]:
    section, main, sub = parcel["plate"]
    return {"section": section, "mainPlate": main, "subPlate": sub}


def owners_of(deed: Any) -> dict[str, Decimal]:
    return {owner.nationalCode: owner.share for owner in deed.owner}


async def test_get_deed_of_parcel_one_names_the_known_owner_with_six_dang(
    city: Any, soap_service: Any
) -> None:
    parcel = (await planning_parcels(city))[1]
    section, main, sub = parcel["plate"]
    service = soap_service("land_registry")

    deed = await service.GetDeed(section=section, mainPlate=main, subPlate=sub)

    assert deed.found is True
    assert (deed.plate.section, deed.plate.mainPlate, deed.plate.subPlate) == (section, main, sub)
    assert deed.serial == deed_serial(1)
    assert deed.issueDate == deed_issued_on(1)
    assert deed.area == parcel["area"]
    assert owners_of(deed) == {KNOWN_NATIONAL_CODE: Decimal(6)}
    assert deed.owner[0].firstName == "علی"
    assert deed.mortgage == []
    assert deed.seizure == []


async def test_soap_12_binding_answers_the_same_deed(city: Any, soap_service: Any) -> None:
    section, main, sub = (await planning_parcels(city))[2]["plate"]
    soap11 = await soap_service("land_registry", "1.1").GetDeed(
        section=section, mainPlate=main, subPlate=sub
    )
    soap12 = await soap_service("land_registry", "1.2").GetDeed(
        section=section, mainPlate=main, subPlate=sub
    )

    assert zeep.helpers.serialize_object(soap12) == zeep.helpers.serialize_object(soap11)
    assert sum(owners_of(soap12).values()) == 6


async def test_soap_12_answer_is_a_soap_12_envelope(
    agencies: Agencies, post_soap: Any, city: Any
) -> None:
    section, main, sub = (await planning_parcels(city))[1]["plate"]
    response = await post_soap(
        "land_registry",
        f'<GetDeed xmlns="{NS}"><section>{section}</section><mainPlate>{main}</mainPlate>'
        f"<subPlate>{sub}</subPlate></GetDeed>",
        version="1.2",
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/soap+xml")
    root = etree.fromstring(response.content)
    assert root.tag == "{http://www.w3.org/2003/05/soap-envelope}Envelope"


async def test_unknown_plate_is_not_found_without_a_fault(soap_service: Any) -> None:
    deed = await soap_service("land_registry").GetDeed(section=99, mainPlate=1, subPlate=1)

    assert deed.found is False
    assert deed.serial is None
    assert deed.owner == []


async def test_every_deed_agrees_with_planning_except_where_a_rule_says(
    city: Any, soap_service: Any
) -> None:
    parcels = await planning_parcels(city)
    ids = sorted(parcels)[:200]
    plates = [plate_of(parcels[i]) for i in ids]

    deeds = await soap_service("land_registry").GetDeeds(plate=plates)

    assert len(deeds) == len(ids)
    applied = {"owner": 0, "area": 0, "seizure": 0, "mortgage": 0}
    for parcel_id, deed in zip(ids, deeds, strict=True):
        parcel = parcels[parcel_id]
        assert deed.found is True
        assert (deed.plate.section, deed.plate.mainPlate, deed.plate.subPlate) == parcel["plate"]
        assert sum(owners_of(deed).values()) == sum(parcel["owners"].values())
        if OTHER_OWNER.applies(parcel_id):
            applied["owner"] += 1
            assert owners_of(deed) != parcel["owners"]
            assert len(deed.owner) == len(parcel["owners"])
        else:
            assert owners_of(deed) == parcel["owners"]
        if OTHER_AREA.applies(parcel_id):
            applied["area"] += 1
            assert deed.area > parcel["area"]
        else:
            assert deed.area == parcel["area"]
        assert bool(deed.seizure) == SEIZED.applies(parcel_id)
        assert bool(deed.mortgage) == MORTGAGED.applies(parcel_id)
        applied["seizure"] += bool(deed.seizure)
        applied["mortgage"] += bool(deed.mortgage)
        for mortgage in deed.mortgage:
            assert mortgage.amount > 0
            assert mortgage.registeredDate > deed.issueDate
    # Each rule shows up in a 200-parcel city, so tests downstream can rely on them.
    assert all(count > 0 for count in applied.values()), applied


async def test_get_deeds_answers_in_the_order_asked_with_unknown_plates_not_found(
    city: Any, soap_service: Any
) -> None:
    parcels = await planning_parcels(city)
    known = [plate_of(parcels[i]) for i in (3, 1)]
    unknown = {"section": 99, "mainPlate": 9, "subPlate": 9}

    deeds = await soap_service("land_registry").GetDeeds(plate=[known[0], unknown, known[1]])

    assert [d.found for d in deeds] == [True, False, True]
    assert [d.serial for d in deeds] == [deed_serial(3), None, deed_serial(1)]


async def test_more_than_200_plates_is_invalid_input(post_soap: Any) -> None:
    plate = "<plate><section>11</section><mainPlate>1</mainPlate><subPlate>1</subPlate></plate>"
    response = await post_soap("land_registry", f'<GetDeeds xmlns="{NS}">{plate * 201}</GetDeeds>')

    fault = read_fault(response.content)
    assert response.status_code == 500
    assert fault is not None
    assert fault.code == "INVALID_INPUT"


async def test_answers_validate_against_the_wsdl_schema(city: Any, post_soap: Any) -> None:
    parcels = await planning_parcels(city)
    plates = "".join(
        f"<plate><section>{s}</section><mainPlate>{m}</mainPlate><subPlate>{n}</subPlate></plate>"
        for s, m, n in (parcels[i]["plate"] for i in range(1, 60))
    )
    response = await post_soap("land_registry", f'<GetDeeds xmlns="{NS}">{plates}</GetDeeds>')

    body = etree.fromstring(response.content).find(
        "{http://schemas.xmlsoap.org/soap/envelope/}Body"
    )
    assert body is not None
    schema = load("land_registry").schema
    assert schema.validate(body[0]), schema.error_log


@pytest.mark.parametrize("path", ["/?wsdl", "/wsdl"])
async def test_wsdl_is_served_with_the_callers_address(
    agencies: Agencies, http: httpx.AsyncClient, path: str
) -> None:
    response = await http.get(f"{agencies.land_registry}{path}")

    assert response.status_code == 200
    root = etree.fromstring(response.content)
    locations = {element.get("location") for element in root.iter("{*}address")}
    assert locations == {f"{agencies.land_registry}/"}


async def test_soap_12_sender_fault_reaches_zeep_as_a_fault(soap_service: Any) -> None:
    with pytest.raises(zeep.exceptions.Fault) as raised:
        await soap_service("land_registry", "1.2").GetDeed(section=0, mainPlate=1, subPlate=1)

    assert raised.value.code.endswith("Sender")
    assert raised.value.detail.findtext("{*}ServiceFault/{*}code") == "INVALID_INPUT"
