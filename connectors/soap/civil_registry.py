"""The civil registry (ثبت احوال): a person's identity record by national code."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

from connectors.answers import Malformed, field, optional, reading
from connectors.soap.client import SoapConnector

__all__ = ["CivilRecord", "CivilRegistry", "Gender"]

AGENCY = "civil_registry"
GET_PERSON = "GetPerson"
NOT_FOUND = "NOT_FOUND"
#: The fault code (AgencyRejected.fault_code) when a birth date is given and differs.
BIRTH_DATE_MISMATCH = "BIRTH_DATE_MISMATCH"

Gender = Literal["MALE", "FEMALE"]


@dataclass(frozen=True, slots=True)
class CivilRecord:
    national_code: str
    first_name: str
    last_name: str
    father_name: str
    birth_date: dt.date
    birth_date_jalali: str  # as the registry writes it, e.g. "1365/04/12"
    gender: Gender
    alive: bool
    death_date: dt.date | None


def _record(data: Mapping[str, Any]) -> CivilRecord:
    gender = field(data, "gender", str)
    if gender not in ("MALE", "FEMALE"):
        raise Malformed("gender")
    return CivilRecord(
        national_code=field(data, "nationalCode", str),
        first_name=field(data, "firstName", str),
        last_name=field(data, "lastName", str),
        father_name=field(data, "fatherName", str),
        birth_date=field(data, "birthDate", dt.date),
        birth_date_jalali=field(data, "birthDateJalali", str),
        gender=cast(Gender, gender),
        alive=field(data, "alive", bool),
        death_date=optional(data, "deathDate", dt.date),
    )


class CivilRegistry(SoapConnector):
    agency = AGENCY
    wsdl = "civil_registry.wsdl"
    binding = "CivilRegistrySoap11Binding"

    async def person(
        self, national_code: str, birth_date: dt.date | None = None, *, fresh: bool = False
    ) -> CivilRecord | None:
        """The record of `national_code`, or None when the registry knows no such person;
        `fresh` asks the registry now, bypassing the cache.

        With `birth_date`, a record born on another day is refused: AgencyRejected with
        fault_code BIRTH_DATE_MISMATCH.
        """

        async def fetch() -> CivilRecord | None:
            answer = await self._service.call(
                GET_PERSON,
                not_found={NOT_FOUND},
                nationalCode=national_code,
                birthDate=birth_date,
            )
            if answer is None:
                return None
            with reading(AGENCY, GET_PERSON):
                return _record(answer)

        return await self.guard.call(GET_PERSON, (national_code, birth_date), fetch, fresh=fresh)
