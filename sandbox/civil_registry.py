"""The simulated civil registry: a person's identity record by national code, over SOAP 1.1."""

from __future__ import annotations

import datetime as dt

import jdatetime
from lxml import etree

from identifiers import InvalidIdentifier, parse_national_code
from sandbox import wsdl
from sandbox.agency import Payload, SoapAgency, child_text, required_text, xs_boolean, xs_date
from sandbox.calls import CallLog
from sandbox.chaos import Chaos
from sandbox.dataset import Dataset
from sandbox.soap import INVALID_INPUT, NOT_FOUND, SoapFault
from sandbox.wsse import Credentials, UsernameTokenGuard

NAME = "civil_registry"
NAMESPACE = "urn:ir:sabteahval:civil-registry:v1"
BIRTH_DATE_MISMATCH = "BIRTH_DATE_MISMATCH"


class CivilRegistry:
    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.payload = Payload(NAMESPACE)

    async def get_person(self, request: etree._Element) -> etree._Element:
        try:
            national_code = parse_national_code(required_text(request, "nationalCode"))
        except InvalidIdentifier as exc:
            raise SoapFault(INVALID_INPUT, str(exc)) from exc
        birth_date_text = child_text(request, "birthDate")
        record = await self.dataset.person(national_code)
        if record is None:
            raise SoapFault(NOT_FOUND, "no person has this national code")
        if birth_date_text and xs_date(birth_date_text) != record.birth_date:
            raise SoapFault(BIRTH_DATE_MISMATCH, "the birth date does not match the record")
        add = self.payload.add
        response = self.payload.root("GetPersonResponse")
        person = add(response, "person")
        add(person, "nationalCode", record.national_code)
        add(person, "firstName", record.first_name)
        add(person, "lastName", record.last_name)
        add(person, "fatherName", record.father_name)
        add(person, "birthDate", record.birth_date.isoformat())
        add(person, "birthDateJalali", jalali(record.birth_date))
        add(person, "gender", record.gender)
        add(person, "alive", xs_boolean(record.alive))
        if record.death_date is not None:
            add(person, "deathDate", record.death_date.isoformat())
        return response


def jalali(date: dt.date) -> str:
    """A Gregorian date written as a Solar Hijri "yyyy/mm/dd"."""
    return str(jdatetime.date.fromgregorian(date=date).strftime("%Y/%m/%d"))


def build(
    dataset: Dataset,
    *,
    credentials: Credentials | None = None,
    chaos: Chaos | None = None,
    calls: CallLog | None = None,
) -> SoapAgency:
    registry = CivilRegistry(dataset)
    return SoapAgency(
        NAME,
        wsdl.load(NAME),
        {"GetPerson": registry.get_person},
        UsernameTokenGuard(credentials or Credentials.from_env(NAME), required=True),
        chaos=chaos,
        calls=calls,
    )
