"""What a check judges: the facts read for one inquiry (from the department databases and the
agencies, each stamped with the time it was read), and what a rule finds in them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TypeAlias

from connectors.soap.civil_registry import CivilRecord
from connectors.soap.land_registry import Deed
from gateway.dues import Dues
from gateway.inquiries.wording import Text
from gateway.parcels import Building, Certificate, Ownership, Parcel, Violation

# Machine-readable details of a finding: what a JSON column, a signed answer or a GraphQL
# JSON scalar holds (amounts in rials, dates as ISO strings, shares as decimal strings).
Json: TypeAlias = str | int | bool | list["Json"] | dict[str, "Json"] | None


def json_list(values: Iterable[Json]) -> list[Json]:
    """A list of JSON values from any iterable of them (lists are invariant for mypy)."""
    return list(values)


class Outcome(Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    # A statement: facts reported, nothing judged (the checks of PROPERTY_STATUS). It is not
    # PASS, so that a letter never says a parcel "passed" a list of its unpaid dues.
    INFO = "INFO"


class Fact(Enum):
    """One thing read for an inquiry; a check names those it needs, the workflow reads each
    once per inquiry (the deed serves the owners check and the seizure check alike)."""

    PARCEL = "parcel"  # planning; always read, at submission
    DUES = "dues"  # revenue
    CERTIFICATES = "certificates"  # planning
    VIOLATIONS = "violations"  # planning
    BUILDINGS = "buildings"  # planning
    OWNERSHIPS = "ownerships"  # planning: owners with their national IDs
    DEED = "deed"  # the land registry, by the parcel's registry plate
    APPLICANT_RECORD = "applicant_record"  # the civil registry, by the applicant's national ID
    # The contact centre (137): citizens' open complaints about the parcel, by renewal code.
    OPEN_COMPLAINTS = "open_complaints"


# Facts about people: a kind that promises no personal data may not need any of them.
PERSONAL_FACTS = frozenset({Fact.OWNERSHIPS, Fact.DEED, Fact.APPLICANT_RECORD})


@dataclass(frozen=True, slots=True)
class OpenComplaint:
    """A citizen's complaint about the parcel that the municipality has not answered yet
    (gateway/requests): its tracking code, service and when it was registered."""

    tracking_code: str
    service_code: str
    registered_at: dt.datetime


class MissingFacts(ValueError):
    """A check was evaluated over facts that were never read (a bug in the caller)."""


@dataclass(frozen=True, slots=True)
class Facts:
    """The facts read for one inquiry. `read_at` names every fact that was read and when
    (aware); a fact absent from it was not read, whatever its field holds. `deed` None with
    DEED read means the registry has no deed for the plate; `applicant_record` None with
    APPLICANT_RECORD read, that the civil registry knows no such person."""

    parcel: Parcel
    applicant_national_code: str
    read_at: Mapping[Fact, dt.datetime]
    dues: Dues | None = None
    certificates: tuple[Certificate, ...] = ()
    violations: tuple[Violation, ...] = ()
    buildings: tuple[Building, ...] = ()
    ownerships: tuple[Ownership, ...] = ()
    deed: Deed | None = None
    applicant_record: CivilRecord | None = None
    open_complaints: tuple[OpenComplaint, ...] = ()

    def __post_init__(self) -> None:
        # Facts of another parcel or person would make a rule's finding wrong but plausible.
        if Fact.PARCEL not in self.read_at:
            raise ValueError("the parcel is always read")
        if any(moment.tzinfo is None for moment in self.read_at.values()):
            raise ValueError("read_at moments must be aware")
        if Fact.DUES in self.read_at and self.dues is None:
            raise ValueError("dues were read: pass them (a parcel without dues has no items)")
        if self.dues is not None and self.dues.renewal_code != self.parcel.renewal_code:
            raise ValueError("the dues are another parcel's")
        records: Iterable[Certificate | Violation | Building | Ownership] = (
            *self.certificates, *self.violations, *self.buildings, *self.ownerships,
        )  # fmt: skip
        if any(record.parcel_id != self.parcel.id for record in records):
            raise ValueError("a planning record is another parcel's")
        plate = self.deed.plate if self.deed is not None else None
        parcel = self.parcel
        if plate is not None and (plate.section, plate.main, plate.sub) != (
            parcel.registry_section, parcel.main_plate, parcel.sub_plate,
        ):  # fmt: skip
            raise ValueError("the deed is another plate's")
        record = self.applicant_record
        if record is not None and record.national_code != self.applicant_national_code:
            raise ValueError("the civil record is another person's")

    def read_time(self, needs: Iterable[Fact]) -> dt.datetime:
        """When the oldest of these facts was read: what a finding over them is as of."""
        wanted = frozenset(needs) or frozenset({Fact.PARCEL})
        missing = wanted - self.read_at.keys()
        if missing:
            names = ", ".join(sorted(fact.value for fact in missing))
            raise MissingFacts(f"facts not read: {names}")
        return min(self.read_at[fact] for fact in wanted)

    def today(self, fact: Fact, zone: dt.tzinfo) -> dt.date:
        """The day (in `zone`) on which `fact` was read: "now" for a rule about ages."""
        return self.read_time((fact,)).astimezone(zone).date()


@dataclass(frozen=True, slots=True)
class Finding:
    """What a rule found: its outcome, a reason per thing found (in both languages), and the
    same as data."""

    outcome: Outcome
    reasons: tuple[Text, ...]
    details: dict[str, Json] = field(default_factory=dict)
