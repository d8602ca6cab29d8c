"""The land registry (سازمان ثبت اسناد و املاک): deeds by registry plate, one or a page at once."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import httpx

from connectors.answers import Malformed, field, items, reading, record, records
from connectors.resilience import AgencyGuard
from connectors.soap.client import SoapConnector

__all__ = ["Deed", "DeedOwner", "LandRegistry", "Mortgage", "Plate", "Seizure"]

AGENCY = "land_registry"
NAMESPACE = "urn:ir:ssaa:land-registry:v1"
GET_DEED = "GetDeed"
GET_DEEDS = "GetDeeds"
BINDINGS = {"1.1": "LandRegistrySoap11Binding", "1.2": "LandRegistrySoap12Binding"}
# Used only if the WSDL leaves GetDeeds unbounded.
FALLBACK_BATCH = 200


@dataclass(frozen=True, slots=True, order=True)
class Plate:
    """A registry plate: sub plate `sub` of main plate `main` in registry section `section`."""

    section: int
    main: int
    sub: int

    def __str__(self) -> str:
        return f"{self.section}-{self.main}/{self.sub}"


@dataclass(frozen=True, slots=True)
class DeedOwner:
    national_code: str
    first_name: str
    last_name: str
    share: Decimal  # in dang: six make the whole property


@dataclass(frozen=True, slots=True)
class Mortgage:
    holder: str
    amount: int  # rials
    registered_on: dt.date


@dataclass(frozen=True, slots=True)
class Seizure:
    """A seizure (بازداشت) registered against the property."""

    issuer: str
    reference: str
    registered_on: dt.date


@dataclass(frozen=True, slots=True)
class Deed:
    plate: Plate
    serial: str
    issued_on: dt.date
    area: Decimal  # square metres
    owners: tuple[DeedOwner, ...]
    mortgages: tuple[Mortgage, ...]
    seizures: tuple[Seizure, ...]


def _plate(data: Mapping[str, Any]) -> Plate:
    return Plate(
        field(data, "section", int), field(data, "mainPlate", int), field(data, "subPlate", int)
    )


def _deed(data: Mapping[str, Any]) -> tuple[Plate, Deed | None]:
    plate = _plate(record(data, "plate"))
    if not field(data, "found", bool):
        return plate, None
    deed = Deed(
        plate=plate,
        serial=field(data, "serial", str),
        issued_on=field(data, "issueDate", dt.date),
        area=field(data, "area", Decimal),
        owners=tuple(
            DeedOwner(
                national_code=field(owner, "nationalCode", str),
                first_name=field(owner, "firstName", str),
                last_name=field(owner, "lastName", str),
                share=field(owner, "share", Decimal),
            )
            for owner in items(data, "owner")
        ),
        mortgages=tuple(
            Mortgage(
                holder=field(mortgage, "holder", str),
                amount=field(mortgage, "amount", int),
                registered_on=field(mortgage, "registeredDate", dt.date),
            )
            for mortgage in items(data, "mortgage")
        ),
        seizures=tuple(
            Seizure(
                issuer=field(seizure, "issuer", str),
                reference=field(seizure, "reference", str),
                registered_on=field(seizure, "seizedDate", dt.date),
            )
            for seizure in items(data, "seizure")
        ),
    )
    return plate, deed


class LandRegistry(SoapConnector):
    """Deeds by plate. `deed()` asks for one; `deeds()` asks for a page in as few calls as the
    WSDL's batch limit allows, and only for plates not already cached, so every deed it
    fetches also answers later `deed()` and `deeds()` calls until the cache entry expires."""

    agency = AGENCY
    wsdl = "land_registry.wsdl"
    binding = BINDINGS["1.1"]

    def __init__(
        self,
        http: httpx.AsyncClient,
        guard: AgencyGuard,
        *,
        address: str,
        username: str | None = None,
        password: str | None = None,
        soap_version: Literal["1.1", "1.2"] = "1.1",
        batch_size: int | None = None,
        fast: bool = True,
    ) -> None:
        if soap_version not in BINDINGS:
            raise ValueError("soap_version must be 1.1 or 1.2")
        super().__init__(
            http,
            guard,
            address=address,
            username=username,
            password=password,
            binding=BINDINGS[soap_version],
            fast=fast,
        )
        self.soap_version = soap_version
        limit = self._service.max_occurs(f"{{{NAMESPACE}}}{GET_DEEDS}", "plate") or FALLBACK_BATCH
        if batch_size is not None and not 1 <= batch_size <= limit:
            raise ValueError(f"batch_size must be between 1 and {limit}")
        self.batch_size = batch_size or limit

    def __repr__(self) -> str:
        return f"LandRegistry(soap_version={self.soap_version!r})"

    async def deed(self, plate: Plate, *, fresh: bool = False) -> Deed | None:
        """The deed of `plate`, or None when the registry has no deed for it; `fresh` asks the
        registry now, bypassing the cache (an inquiry must see a seizure registered since)."""

        async def fetch() -> Deed | None:
            answer = await self._service.call(
                GET_DEED, section=plate.section, mainPlate=plate.main, subPlate=plate.sub
            )
            with reading(AGENCY, GET_DEED):
                found, deed = _deed(answer)
                if found != plate:
                    raise Malformed("the deed is for another plate")
            return deed

        return await self.guard.call(GET_DEED, plate, fetch, fresh=fresh)

    async def deeds(self, plates: Sequence[Plate]) -> dict[Plate, Deed | None]:
        """The deed (or None) of every plate, in the order given, without repeats."""
        wanted = list(dict.fromkeys(plates))
        answers: dict[Plate, Deed | None] = {}
        missing: list[Plate] = []
        for plate in wanted:
            cached, deed = self.guard.get_cached(GET_DEED, plate)
            if cached:
                answers[plate] = deed
            else:
                missing.append(plate)
        chunks = [
            tuple(missing[start : start + self.batch_size])
            for start in range(0, len(missing), self.batch_size)
        ]
        if len(chunks) == 1:  # the common case: no task of its own needed
            answers.update(await self._batch(chunks[0]))
        else:
            for found in await asyncio.gather(*(self._batch(chunk) for chunk in chunks)):
                answers.update(found)
        return {plate: answers[plate] for plate in wanted}

    async def _batch(self, chunk: tuple[Plate, ...]) -> dict[Plate, Deed | None]:
        async def fetch() -> dict[Plate, Deed | None]:
            answer = await self._service.call(
                GET_DEEDS,
                plate=[
                    {"section": plate.section, "mainPlate": plate.main, "subPlate": plate.sub}
                    for plate in chunk
                ],
            )
            with reading(AGENCY, GET_DEEDS):
                found = dict(_deed(data) for data in records(answer, "deed"))
                if set(found) != set(chunk):
                    raise Malformed("the deeds are not for the plates asked for")
            for plate, deed in found.items():
                # Each deed answers a later deed(plate) too, and the next page's batch.
                self.guard.put_cached(GET_DEED, plate, deed)
            return found

        return await self.guard.call(GET_DEEDS, chunk, fetch)
