"""The land registry connector against the sandbox registry, over SOAP 1.1 and 1.2."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from connectors.agencies import Agencies
from connectors.errors import AgencyRejected, AgencyUnavailable
from connectors.resilience import AgencyGuard
from connectors.soap.land_registry import Deed, DeedOwner, LandRegistry, Mortgage, Plate, Seizure
from db.planning import Parcel
from identifiers import RegistryPlate
from sandbox import dataset
from sandbox.wsse import DEMO_PASSWORDS, DEMO_USERNAME

UNKNOWN = Plate(999, 999, 999)


async def all_plates(city: Any) -> list[Plate]:
    async with city.databases.planning.connect() as connection:
        rows = (
            await connection.execute(
                select(Parcel.registry_section, Parcel.main_plate, Parcel.sub_plate).order_by(
                    Parcel.id
                )
            )
        ).all()
    return [Plate(*row) for row in rows]


def expected(deed: dataset.Deed) -> Deed:
    return Deed(
        plate=Plate(deed.plate.section, deed.plate.main, deed.plate.sub),
        serial=deed.serial,
        issued_on=deed.issued_on,
        area=deed.area,
        owners=tuple(
            DeedOwner(o.national_code, o.first_name, o.last_name, o.share) for o in deed.owners
        ),
        mortgages=tuple(Mortgage(m.holder, m.amount, m.registered_on) for m in deed.mortgages),
        seizures=tuple(Seizure(s.issuer, s.reference, s.seized_on) for s in deed.seizures),
    )


async def registry_view(city: Any, plates: list[Plate]) -> dict[Plate, Deed | None]:
    deeds = await city.dataset.deeds([RegistryPlate(p.section, p.main, p.sub) for p in plates])
    by_plate = {
        Plate(d.plate.section, d.plate.main, d.plate.sub): expected(d) for d in deeds.values()
    }
    return {plate: by_plate.get(plate) for plate in plates}


async def test_deed_is_the_registry_record_of_the_plate(
    city: Any, agencies: Agencies, calls: Any
) -> None:
    plates = (await all_plates(city))[:30]
    truth = await registry_view(city, plates)
    # The sample holds the registry's variety: mortgages, seizures, co-owners.
    assert any(deed and deed.mortgages for deed in truth.values())
    assert any(deed and len(deed.owners) > 1 for deed in truth.values())
    for plate in plates:
        assert await agencies.land_registry.deed(plate) == truth[plate]
    assert await agencies.land_registry.deed(UNKNOWN) is None
    assert len(await calls("land_registry")) == len(plates) + 1


async def test_deeds_of_a_page_take_one_call_and_the_same_page_again_none(
    city: Any, agencies: Agencies, calls: Any
) -> None:
    plates = [*(await all_plates(city))[:99], UNKNOWN]
    truth = await registry_view(city, plates)
    assert any(deed and deed.seizures for deed in truth.values())
    registry = agencies.land_registry
    guard = agencies.guards["land_registry"]

    assert await registry.deeds(plates) == truth
    assert guard.stats().underlying_calls == 1
    assert [call["operation"] for call in await calls("land_registry")] == ["GetDeeds"]

    assert await registry.deeds(plates) == truth
    assert await registry.deeds(list(reversed(plates))) == truth
    # Each deed of a batch also answers a single deed() later.
    assert await registry.deed(plates[5]) == truth[plates[5]]
    assert await registry.deed(UNKNOWN) is None
    assert guard.stats().underlying_calls == 1
    assert len(await calls("land_registry")) == 1


async def test_deeds_ask_only_for_the_plates_not_yet_cached(
    city: Any, agencies: Agencies, calls: Any
) -> None:
    plates = await all_plates(city)
    registry = agencies.land_registry
    await registry.deeds(plates[:50])
    assert len(await calls("land_registry")) == 1
    answers = await registry.deeds(plates[:120])
    assert answers == await registry_view(city, plates[:120])
    recorded = await calls("land_registry")
    assert len(recorded) == 2
    # 70 plates cost less than 120 would: the second batch left the cached 50 out.
    assert (
        int(recorded[1]["httpHeaders"]["content-length"])
        < int(recorded[0]["httpHeaders"]["content-length"]) * 1.6
    )


async def test_deeds_are_split_into_batches_the_registry_accepts(
    city: Any, agency_http: Any, sandbox: Any, calls: Any, quick_policy: Any
) -> None:
    registry = LandRegistry(
        agency_http,
        AgencyGuard("land_registry", quick_policy()),
        address=sandbox.land_registry,
        username=DEMO_USERNAME,
        password=DEMO_PASSWORDS["land_registry"],
        batch_size=40,
    )
    plates = (await all_plates(city))[:100]
    assert await registry.deeds(plates) == await registry_view(city, plates)
    assert len(await calls("land_registry")) == 3
    with pytest.raises(ValueError, match="batch_size"):
        LandRegistry(
            agency_http, AgencyGuard("x", quick_policy()), address="http://x", batch_size=201
        )


async def test_the_soap_12_binding_gives_the_same_deeds(
    city: Any, make_agencies: Any, calls: Any
) -> None:
    agencies = make_agencies(land_registry={"soap_version": "1.2"})
    plates = (await all_plates(city))[:20]
    truth = await registry_view(city, plates)
    assert await agencies.land_registry.deed(plates[0]) == truth[plates[0]]
    assert await agencies.land_registry.deeds([*plates, UNKNOWN]) == {**truth, UNKNOWN: None}
    recorded = await calls("land_registry")
    assert [call["soapVersion"] for call in recorded] == ["1.2", "1.2"]
    assert all(call["outcome"] == "ok" for call in recorded)


@pytest.mark.parametrize("soap_version", ["1.1", "1.2"])
async def test_a_plate_the_registry_refuses_is_rejected_with_its_fault_code(
    make_agencies: Any, soap_version: str
) -> None:
    agencies = make_agencies(land_registry={"soap_version": soap_version})
    with pytest.raises(AgencyRejected) as caught:
        await agencies.land_registry.deed(Plate(0, 1, 1))
    assert caught.value.fault_code == "INVALID_INPUT"
    assert str(caught.value) == "land_registry.GetDeed: agency rejected the request"
    # A rejection is the agency working: the breaker stays closed.
    assert agencies.guards["land_registry"].stats().state == "closed"


@pytest.mark.parametrize("soap_version", ["1.1", "1.2"])
async def test_a_server_fault_means_the_registry_failed(
    city: Any, make_agencies: Any, chaos: Any, quick_policy: Any, soap_version: str
) -> None:
    agencies = make_agencies(
        land_registry={"soap_version": soap_version, "policy": quick_policy(retries=2)}
    )
    await chaos("land_registry", error_rate=1.0)
    with pytest.raises(AgencyUnavailable) as caught:
        await agencies.land_registry.deed((await all_plates(city))[0])
    assert type(caught.value) is AgencyUnavailable
    # A Server/Receiver fault is transient: retried like any other outage.
    assert agencies.guards["land_registry"].stats().underlying_calls == 3
