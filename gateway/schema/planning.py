"""Planning department types: parcels, owners, buildings, permits, certificates, violations;
and the Query fields that find them (a parcel by any key, the parcel list, a person)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any, Self, TypeVar

import strawberry
from aiodataloader import DataLoader
from strawberry import Private

import identifiers
from connectors.soap.land_registry import Plate
from gateway import parcels as domain
from gateway.access.permissions import Scope, mask_national_code, note_personal_read, requires
from gateway.context import Info
from gateway.errors import BadUserInput, Forbidden
from gateway.guards.cost import typical_size
from gateway.guards.execution import answers_prefetched
from gateway.guards.response_cache import CacheScope, Freshness, cache_hint
from gateway.loaders import Loaders
from gateway.records import quick_new
from gateway.schema.agencies import CivilRecord, Deed, PostalAddress
from gateway.schema.node import Node, from_global_id, node_type
from gateway.schema.pages import (
    After,
    Before,
    First,
    Last,
    PageInfo,
    encode_cursor,
    page_info_at,
    page_window,
)
from gateway.schema.prefetch import selected_names
from gateway.schema.requests import CitizenRequest, citizen_requests_about_parcel
from gateway.schema.revenue import Dues
from gateway.schema.scalars import (
    CalendarDate,
    Money,
    NationalCode,
    PostalCode,
    RegistryPlate,
    RenewalCode,
    by_value,
    calendar_date,
    optional_date,
)


@strawberry.enum(description="What a parcel may be used for (کاربری).")
class LandUse(Enum):
    RESIDENTIAL = strawberry.enum_value("residential", description="Residential (مسکونی).")
    COMMERCIAL = strawberry.enum_value("commercial", description="Commercial (تجاری).")
    OFFICE = strawberry.enum_value("office", description="Office (اداری).")
    INDUSTRIAL = strawberry.enum_value("industrial", description="Industrial (صنعتی).")
    GREEN_SPACE = strawberry.enum_value("green_space", description="Green space (فضای سبز).")
    EDUCATIONAL = strawberry.enum_value("educational", description="Educational (آموزشی).")


@strawberry.enum(description="What a building permit (پروانه ساختمانی) allows.")
class PermitKind(Enum):
    NEW_CONSTRUCTION = strawberry.enum_value(
        "new_construction", description="New construction (احداث)."
    )
    RENOVATION = strawberry.enum_value("renovation", description="Renovation (تعمیرات).")
    EXTENSION = strawberry.enum_value("extension", description="Extension (توسعه بنا).")


@strawberry.enum(description="Completion (پایان کار) or no-violation (عدم خلاف) certificate.")
class CertificateKind(Enum):
    COMPLETION = strawberry.enum_value(
        "completion", description="Completion certificate (گواهی پایان کار)."
    )
    NO_VIOLATION = strawberry.enum_value(
        "no_violation", description="No-violation certificate (گواهی عدم خلاف)."
    )


@strawberry.enum(description="What kind of building violation (تخلف ساختمانی) it is.")
class ViolationKind(Enum):
    EXCESS_DENSITY = strawberry.enum_value(
        "excess_density", description="Building beyond the permitted density (اضافه تراکم)."
    )
    NO_PERMIT = strawberry.enum_value(
        "no_permit", description="Building without a permit (بدون پروانه)."
    )
    PARKING_REMOVED = strawberry.enum_value(
        "parking_removed", description="A required parking space removed (حذف پارکینگ)."
    )
    USE_CHANGE = strawberry.enum_value(
        "use_change", description="Use other than the permitted land use (تغییر کاربری)."
    )
    SETBACK = strawberry.enum_value(
        "setback", description="Building over the setback line (عقب‌نشینی)."
    )


@strawberry.enum(description="Whether a violation is still open.")
class ViolationStatus(Enum):
    OPEN = strawberry.enum_value("open", description="Not resolved yet.")
    RESOLVED = strawberry.enum_value("resolved", description="Resolved (ruled on and settled).")


@strawberry.enum(description="What the Article 100 commission ruled.")
class RulingOutcome(Enum):
    FINE = strawberry.enum_value("fine", description="A fine (جریمه).")
    DEMOLITION = strawberry.enum_value("demolition", description="Demolition (تخریب).")
    SETTLED = strawberry.enum_value(
        "settled", description="Settled otherwise (e.g. the violation was put right)."
    )


# By the value planning's rows hold (see by_value).
_LAND_USES = by_value(LandUse)
_PERMIT_KINDS = by_value(PermitKind)
_CERTIFICATE_KINDS = by_value(CertificateKind)
_VIOLATION_KINDS = by_value(ViolationKind)
_VIOLATION_STATUSES = by_value(ViolationStatus)


@node_type(loader=lambda loaders: loaders.region_by_id, scope=Scope.PARCELS_READ)
@strawberry.type(description="A municipal region (منطقه شهرداری).")
class Region(Node):
    number: int = strawberry.field(description="The region's number, as citizens know it.")
    name: str = strawberry.field(description="The region's name.")

    @classmethod
    def from_domain(cls, region: domain.Region) -> Self:
        return cls(pk=region.id, number=region.number, name=region.name)


@node_type(loader=lambda loaders: loaders.district_by_id, scope=Scope.PARCELS_READ)
@strawberry.type(description="A district (ناحیه) of a municipal region.")
class District(Node):
    region_id: Private[int]
    number: int = strawberry.field(description="The district's number within its region.")
    name: str = strawberry.field(description="The district's name.")

    @classmethod
    def from_domain(cls, district: domain.District) -> Self:
        return cls(
            pk=district.id,
            region_id=district.region_id,
            number=district.number,
            name=district.name,
        )

    @strawberry.field(
        description="The region the district belongs to.", metadata=cache_hint(Freshness.PLANNING)
    )
    async def region(self, info: Info) -> Region:
        return Region.from_domain(
            _present(await info.context.loaders.region_by_id.load(self.region_id))
        )


@node_type(
    loader=lambda loaders: loaders.person_by_id,
    scope=Scope.PERSONAL_READ,
    personal=lambda person: person.national_code,
)
@strawberry.federation.type(
    description="A person known to the planning department, usually as an owner.",
    keys=["nationalCode"],  # a federation entity: the national ID is unique nationwide
)
class Person(Node):
    national_code: NationalCode = strawberry.field(description="National ID (کد ملی).")
    first_name: str = strawberry.field(description="First name (نام).")
    last_name: str = strawberry.field(description="Last name (نام خانوادگی).")
    father_name: str = strawberry.field(description="Father's name (نام پدر).")
    full_name: str = strawberry.field(description="First and last name.")
    birth_date: CalendarDate = strawberry.field(description="Date of birth.")

    @classmethod
    def from_domain(cls, person: domain.Person) -> Self:
        return cls(
            pk=person.id,
            national_code=NationalCode(person.national_code),
            first_name=person.first_name,
            last_name=person.last_name,
            father_name=person.father_name,
            full_name=person.full_name,
            birth_date=calendar_date(person.birth_date),
        )

    @classmethod
    async def resolve_reference(cls, info: Info, **key: Any) -> Self | None:
        """A federation router's `_entities` look-up by national ID: the same scope, and the
        same audit, as `person(nationalCode:)`."""
        if not info.context.principal.has(Scope.PERSONAL_READ):
            raise Forbidden(
                f"This field needs the {Scope.PERSONAL_READ} scope.", scope=Scope.PERSONAL_READ
            )
        try:
            code = identifiers.parse_national_code(str(key.get("nationalCode", "")))
        except identifiers.InvalidIdentifier:
            return None  # not a national ID: no one of this municipality
        record = await info.context.loaders.person_by_national_code.load(code)
        if record is None:
            return None
        note_personal_read(info, "Person", record.national_code)
        return cls.from_domain(record)

    @strawberry.field(description="The civil registry's record of this person (ثبت احوال).")
    async def civil_record(self, info: Info) -> CivilRecord | None:
        answer = await info.context.loaders.civil_record.load(self.national_code)
        if answer is None:
            return None  # the agency knows nothing: nothing personal was served
        note_personal_read(info, "Person", self.national_code)
        return CivilRecord.from_answer(answer)

    @strawberry.field(description="Parcels this person owns a share of.", metadata=typical_size(3))
    async def parcels(self, info: Info) -> list[Parcel]:
        records = await info.context.loaders.parcels_by_owner.load(self.pk)
        parcels = [Parcel.from_domain(record) for record in records]
        await prefetch_parcels(info, parcels, selected_names(info))
        return parcels


@strawberry.type(
    description="An owner's share of a parcel. Who owns it and how much is personal data: "
    "it needs the personal:read scope (the national ID is masked without it)."
)
class Owner:
    # The domain's person, made a GraphQL Person only when `person` is asked: a page lists
    # hundreds of owners and asks for little more than their (masked) national IDs.
    owner: Private[domain.Person]
    owned_share: Private[Decimal]
    acquired_on: CalendarDate = strawberry.field(description="When the owner acquired the share.")

    @classmethod
    def from_domain(cls, ownership: domain.Ownership) -> Owner:
        return _new_owner(
            owner=ownership.owner,
            owned_share=ownership.share,
            acquired_on=calendar_date(ownership.acquired_on),
        )

    @strawberry.field(description="National ID; masked as 008****948 without personal:read.")
    def national_code(self, info: Info) -> NationalCode:
        code = self.owner.national_code
        if not info.context.principal.has(Scope.PERSONAL_READ):
            return NationalCode(mask_national_code(code))
        note_personal_read(info, "Person", code)
        return NationalCode(code)

    @strawberry.field(
        description="The owner as a person, with their other parcels.",
        permission_classes=[requires(Scope.PERSONAL_READ)],
    )
    def person(self, info: Info) -> Person | None:
        note_personal_read(info, "Person", self.owner.national_code)
        return Person.from_domain(self.owner)

    @strawberry.field(
        description="The owner's first and last name.",
        permission_classes=[requires(Scope.PERSONAL_READ)],
    )
    def full_name(self, info: Info) -> str | None:
        note_personal_read(info, "Person", self.owner.national_code)
        return self.owner.full_name

    @strawberry.field(
        description="Share in dang; six dang make the whole.",
        permission_classes=[requires(Scope.PERSONAL_READ)],
    )
    def share(self, info: Info) -> Decimal | None:
        note_personal_read(info, "Person", self.owner.national_code)
        return self.owned_share


_new_owner = quick_new(Owner)


@node_type(loader=lambda loaders: loaders.building_by_id, scope=Scope.PARCELS_READ)
@strawberry.type(description="A building on a parcel (ساختمان).")
class Building(Node):
    floors: int = strawberry.field(description="Number of floors (طبقات).")
    units: int = strawberry.field(description="Number of units (واحدها).")
    built_area: Decimal = strawberry.field(description="Square metres.")
    construction_year: int = strawberry.field(description="Solar Hijri year.")

    @classmethod
    def from_domain(cls, building: domain.Building) -> Building:
        return _new_building(
            pk=building.id,
            floors=building.floors,
            units=building.units,
            built_area=building.built_area,
            construction_year=building.construction_year,
        )


_new_building = quick_new(Building)


@node_type(loader=lambda loaders: loaders.permit_by_id, scope=Scope.PARCELS_READ)
@strawberry.type(description="A building permit (پروانه ساختمانی).")
class Permit(Node):
    number: str = strawberry.field(description="The permit's number.")
    kind: PermitKind = strawberry.field(description="What the permit allows.")
    issued_on: CalendarDate = strawberry.field(description="When it was issued.")
    expires_on: CalendarDate = strawberry.field(description="When it expires.")
    floors: int = strawberry.field(description="Floors it permits.")
    units: int = strawberry.field(description="Units it permits.")

    @classmethod
    def from_domain(cls, permit: domain.Permit) -> Permit:
        return _new_permit(
            pk=permit.id,
            number=permit.number,
            kind=_PERMIT_KINDS[permit.kind],
            issued_on=calendar_date(permit.issued_on),
            expires_on=calendar_date(permit.expires_on),
            floors=permit.floors,
            units=permit.units,
        )


_new_permit = quick_new(Permit)


@node_type(loader=lambda loaders: loaders.certificate_by_id, scope=Scope.PARCELS_READ)
@strawberry.type(
    description=(
        "A certificate the planning department issued for a building:"
        " completion (پایان کار) or no-violation (عدم خلاف)."
    )
)
class Certificate(Node):
    building_id: Private[int | None]
    kind: CertificateKind = strawberry.field(description="Which certificate it is.")
    number: str = strawberry.field(description="The certificate's number.")
    issued_on: CalendarDate = strawberry.field(description="When it was issued.")

    @classmethod
    def from_domain(cls, certificate: domain.Certificate) -> Certificate:
        return _new_certificate(
            pk=certificate.id,
            building_id=certificate.building_id,
            kind=_CERTIFICATE_KINDS[certificate.kind],
            number=certificate.number,
            issued_on=calendar_date(certificate.issued_on),
        )

    @strawberry.field(
        description="The building it was issued for; null when it is for the parcel.",
        metadata=cache_hint(Freshness.PLANNING),
    )
    async def building(self, info: Info) -> Building | None:
        if self.building_id is None:
            return None
        building = await info.context.loaders.building_by_id.load(self.building_id)
        return None if building is None else Building.from_domain(building)


_new_certificate = quick_new(Certificate)


@strawberry.type(description="The Article 100 commission's ruling on a violation.")
class Ruling:
    outcome: RulingOutcome = strawberry.field(description="What the commission ruled.")
    ruled_on: CalendarDate | None = strawberry.field(
        description="When it ruled; null when not recorded."
    )
    fine: Money | None = strawberry.field(description="Fine in rials, when the outcome is FINE.")


@node_type(loader=lambda loaders: loaders.violation_by_id, scope=Scope.PARCELS_READ)
@strawberry.type(description="A building violation (تخلف).")
class Violation(Node):
    kind: ViolationKind = strawberry.field(description="What kind of violation it is.")
    detected_on: CalendarDate = strawberry.field(description="When it was found.")
    description: str = strawberry.field(description="What the inspector wrote, in Persian.")
    status: ViolationStatus = strawberry.field(description="Whether it is still open.")
    ruling: Ruling | None = strawberry.field(
        description=(
            "The Article 100 commission's ruling (رأی کمیسیون ماده ۱۰۰); null before it ruled."
        ),
        metadata=cache_hint(Freshness.PLANNING),
    )

    @classmethod
    def from_domain(cls, violation: domain.Violation) -> Violation:
        ruling = None
        if violation.ruling is not None:
            ruling = Ruling(
                outcome=RulingOutcome(violation.ruling),
                ruled_on=optional_date(violation.ruled_on),
                fine=None if violation.fine is None else Money(violation.fine),
            )
        return _new_violation(
            pk=violation.id,
            kind=_VIOLATION_KINDS[violation.kind],
            detected_on=calendar_date(violation.detected_on),
            description=violation.description,
            status=_VIOLATION_STATUSES[violation.status],
            ruling=ruling,
        )


_new_violation = quick_new(Violation)


@node_type(loader=lambda loaders: loaders.parcel_by_id, scope=Scope.PARCELS_READ)
@strawberry.federation.type(
    description="A parcel of land, as the planning department records it.",
    # Federation entity keys, unique across municipalities: the municipality's code with
    # either of the parcel's own keys (gateway/schema/federation.py).
    keys=["municipality renewalCode", "municipality registryPlate"],
)
class Parcel(Node):
    region_id: Private[int]
    district_id: Private[int]
    # Relations a list loaded ahead for this parcel (see gateway/schema/prefetch.py).
    prefetched: Private[dict[str, Any]]
    renewal_code: RenewalCode = strawberry.field(
        description=(
            "The municipality's own key for the parcel (کد نوسازی): region-district-block-parcel."
        )
    )
    registry_plate: RegistryPlate = strawberry.field(
        description="Registry plate (پلاک ثبتی): section-main/sub, e.g. 20-130/207."
    )
    registry_section: int = strawberry.field(description="Registry section (بخش ثبتی).")
    main_plate: int = strawberry.field(description="Main plate number (پلاک اصلی).")
    sub_plate: int = strawberry.field(description="Sub plate number (پلاک فرعی).")
    postal_code: PostalCode = strawberry.field(description="Postal code (کد پستی).")
    address: str = strawberry.field(description="The address, in Persian.")
    land_use: LandUse = strawberry.field(description="What the parcel may be used for (کاربری).")
    density_percent: int = strawberry.field(
        description="Permitted building density (تراکم), as a percentage of the parcel's area."
    )
    area: Decimal = strawberry.field(description="Square metres.")

    @classmethod
    def from_domain(cls, parcel: domain.Parcel) -> Parcel:
        return _new_parcel(
            pk=parcel.id,
            region_id=parcel.region_id,
            district_id=parcel.district_id,
            prefetched={},
            renewal_code=RenewalCode(parcel.renewal_code),
            registry_plate=RegistryPlate(parcel.registry_plate),
            registry_section=parcel.registry_section,
            main_plate=parcel.main_plate,
            sub_plate=parcel.sub_plate,
            postal_code=PostalCode(parcel.postal_code),
            address=parcel.address,
            land_use=_LAND_USES[parcel.land_use],
            density_percent=parcel.density_percent,
            area=parcel.area,
        )

    @strawberry.field(
        description="The code of the municipality (کد شهرداری) that records this parcel; with "
        "the renewal code or the registry plate, a key unique across municipalities."
    )
    def municipality(self, info: Info) -> str:
        return info.context.settings.municipality_code

    @classmethod
    async def resolve_reference(cls, info: Info, **key: Any) -> Parcel | None:
        """A federation router's `_entities` look-up by (municipality, renewal code or
        registry plate): the same scope as `parcel(...)`; null for another municipality's."""
        if not info.context.principal.has(Scope.PARCELS_READ):
            raise Forbidden(
                f"This field needs the {Scope.PARCELS_READ} scope.", scope=Scope.PARCELS_READ
            )
        if key.get("municipality") != info.context.settings.municipality_code:
            return None
        loaders = info.context.loaders
        try:
            if "renewalCode" in key:
                code = str(identifiers.parse_renewal_code(str(key["renewalCode"])))
                record = await loaders.parcel_by_renewal_code.load(RenewalCode(code))
            else:
                plate = identifiers.parse_registry_plate(str(key.get("registryPlate", "")))
                record = await loaders.parcel_by_plate.load((plate.section, plate.main, plate.sub))
        except identifiers.InvalidIdentifier:
            return None
        if record is None:
            return None
        parcel = cls.from_domain(record)
        await prefetch_parcels(info, [parcel], selected_names(info))
        return parcel

    def _relation(self, info: Info, name: str) -> Any:
        """The relation's data if a list prefetched it, else an awaitable through its loader."""
        if name in self.prefetched:
            return self.prefetched[name]
        return _load_relation(info, self, name)

    @strawberry.field(
        description="The municipal region (منطقه) the parcel lies in.",
        metadata=cache_hint(Freshness.PLANNING),
    )
    @answers_prefetched("region")
    def region(self, info: Info) -> Region:
        return self._relation(info, "region")  # type: ignore[no-any-return]

    @strawberry.field(
        description="The district (ناحیه) the parcel lies in.",
        metadata=cache_hint(Freshness.PLANNING),
    )
    @answers_prefetched("district")
    def district(self, info: Info) -> District:
        return self._relation(info, "district")  # type: ignore[no-any-return]

    @strawberry.field(
        description="Its owners and their shares (personal data).",
        # Per principal: masked or not, the list is about people (each unmasked read is
        # audited, and such an answer is never cached).
        metadata={**typical_size(3), **cache_hint(Freshness.PLANNING, CacheScope.PRIVATE)},
    )
    @answers_prefetched("owners")
    def owners(self, info: Info) -> list[Owner]:
        return self._relation(info, "owners")  # type: ignore[no-any-return]

    @strawberry.field(
        description="Citizen requests about the parcel (درخواست‌های شهروندی), newest first: "
        "those registered with its renewal code, or without one at its address or within "
        "GATEWAY_REQUEST_PARCEL_RADIUS_M of its postal point (departments and operators).",
        permission_classes=[requires(Scope.REQUESTS_READ)],
        metadata=typical_size(2),
    )
    async def citizen_requests(self, info: Info) -> list[CitizenRequest] | None:
        return await citizen_requests_about_parcel(
            info, str(self.renewal_code), self.address, self.postal_code
        )

    @strawberry.field(
        description="The buildings on it.",
        metadata={**typical_size(2), **cache_hint(Freshness.PLANNING)},
    )
    @answers_prefetched("buildings")
    def buildings(self, info: Info) -> list[Building]:
        return self._relation(info, "buildings")  # type: ignore[no-any-return]

    @strawberry.field(
        description="Building permits (پروانه ساختمانی) issued for it.",
        metadata={**typical_size(3), **cache_hint(Freshness.PLANNING)},
    )
    @answers_prefetched("permits")
    def permits(self, info: Info) -> list[Permit]:
        return self._relation(info, "permits")  # type: ignore[no-any-return]

    @strawberry.field(
        description="Completion and no-violation certificates issued for it.",
        metadata={**typical_size(2), **cache_hint(Freshness.PLANNING)},
    )
    @answers_prefetched("certificates")
    def certificates(
        self,
        info: Info,
        kind: Annotated[
            CertificateKind | None,
            strawberry.argument(description="Only certificates of this kind."),
        ] = None,
    ) -> list[Certificate]:
        value = self._relation(info, "certificates")
        return value if kind is None else _filtered(value, lambda c: c.kind == kind)  # type: ignore[no-any-return]

    @strawberry.field(
        description="Building violations (تخلفات) recorded on it.",
        metadata={**typical_size(3), **cache_hint(Freshness.PLANNING)},
    )
    @answers_prefetched("violations")
    def violations(
        self,
        info: Info,
        status: Annotated[
            ViolationStatus | None,
            strawberry.argument(description="Only violations in this status."),
        ] = None,
    ) -> list[Violation]:
        value = self._relation(info, "violations")
        return value if status is None else _filtered(value, lambda v: v.status == status)  # type: ignore[no-any-return]

    @strawberry.field(
        description="Municipal dues, from the revenue department's database.",
        permission_classes=[requires(Scope.DUES_READ)],
        metadata=cache_hint(Freshness.DUES),
    )
    @answers_prefetched("dues")
    def dues(self, info: Info) -> Dues | None:
        return self._relation(info, "dues")  # type: ignore[no-any-return]

    @strawberry.field(
        description="The land registry's deed for this parcel's plate; null if it has none. "
        "Owners, mortgages and seizures are personal data.",
        permission_classes=[requires(Scope.PERSONAL_READ)],
    )
    async def deed(self, info: Info) -> Deed | None:
        # Its personal data is noted where it is served, under each owner (Deed's fields).
        plate = Plate(self.registry_section, self.main_plate, self.sub_plate)
        answer = await info.context.loaders.deed_by_plate.load(plate)
        return None if answer is None else Deed.from_answer(answer)

    @strawberry.field(description="The postal company's record of this parcel's postal code.")
    async def postal_address(self, info: Info) -> PostalAddress | None:
        answer = await info.context.loaders.postal_address.load(self.postal_code)
        return None if answer is None else PostalAddress.from_answer(answer)


_new_parcel = quick_new(Parcel)


RecordT = TypeVar("RecordT")


def _present(record: RecordT | None) -> RecordT:
    """A record that a foreign key guarantees (a district's region, a parcel's district)."""
    if record is None:
        raise LookupError("a record its foreign key names is missing")
    return record


def _each(convert: Callable[[Any], Any]) -> Callable[[list[Any]], list[Any]]:
    return lambda records: [convert(record) for record in records]


def _one(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda record: convert(_present(record))


@dataclass(frozen=True, slots=True)
class Relation:
    """One relation a parcel's list may load ahead: its loader, the parcel's key for it, and
    how the loaded value becomes GraphQL types. Named by callables, not strings, so that a
    renamed loader or attribute is seen by mypy."""

    loader: Callable[[Loaders], DataLoader[Any, Any]]
    key: Callable[[Parcel], Hashable]
    convert: Callable[[Any], Any]


# By the GraphQL field that selects it (look-ahead reads field names from the document).
PARCEL_RELATIONS: dict[str, Relation] = {
    "region": Relation(
        lambda loaders: loaders.region_by_id, lambda p: p.region_id, _one(Region.from_domain)
    ),
    "district": Relation(
        lambda loaders: loaders.district_by_id, lambda p: p.district_id, _one(District.from_domain)
    ),
    "owners": Relation(
        lambda loaders: loaders.owners_by_parcel, lambda p: p.pk, _each(Owner.from_domain)
    ),
    "buildings": Relation(
        lambda loaders: loaders.buildings_by_parcel, lambda p: p.pk, _each(Building.from_domain)
    ),
    "permits": Relation(
        lambda loaders: loaders.permits_by_parcel, lambda p: p.pk, _each(Permit.from_domain)
    ),
    "certificates": Relation(
        lambda loaders: loaders.certificates_by_parcel,
        lambda p: p.pk,
        _each(Certificate.from_domain),
    ),
    "violations": Relation(
        lambda loaders: loaders.violations_by_parcel, lambda p: p.pk, _each(Violation.from_domain)
    ),
    "dues": Relation(
        lambda loaders: loaders.dues_by_renewal_code, lambda p: p.renewal_code, Dues.from_domain
    ),
}


# Relations a principal must hold a scope for; the rest need only parcels:read.
RELATION_SCOPES = {"dues": Scope.DUES_READ}


async def _load_relation(info: Info, parcel: Parcel, name: str) -> Any:
    relation = PARCEL_RELATIONS[name]
    loaded = await relation.loader(info.context.loaders).load(relation.key(parcel))
    return relation.convert(loaded)


def _filtered(value: Any, keep: Callable[[Any], bool]) -> Any:
    if inspect.isawaitable(value):

        async def later() -> list[Any]:
            return [item for item in await value if keep(item)]

        return later()
    return [item for item in value if keep(item)]


async def prefetch_parcels(info: Info, parcels: list[Parcel], selected: set[str]) -> None:
    """Load every selected relation of these parcels at once (one statement each, shared
    with the other lists at the same level)."""
    principal = info.context.principal
    wanted = [
        name
        for name in PARCEL_RELATIONS
        if name in selected and principal.has(RELATION_SCOPES.get(name, Scope.PARCELS_READ))
    ]
    if not parcels or not wanted:
        return
    loaders = info.context.loaders
    # The parcels' keys as one group, through the loaders' batch functions: one future per
    # relation rather than per parcel, and the groups of every list resolved in the same
    # turn (each owner's parcels under a page) share one statement per relation.
    loaded = await asyncio.gather(
        *(
            loaders.grouped(PARCEL_RELATIONS[name].loader(loaders)).load(
                tuple(PARCEL_RELATIONS[name].key(parcel) for parcel in parcels)
            )
            for name in wanted
        )
    )
    for name, values in zip(wanted, loaded, strict=True):
        convert = PARCEL_RELATIONS[name].convert
        for parcel, value in zip(parcels, values, strict=True):
            parcel.prefetched[name] = convert(value)


@strawberry.input(description="Every condition given must hold.")
class ParcelFilter:
    region: int | None = strawberry.field(default=None, description="Region number.")
    district: int | None = strawberry.field(default=None, description="District number.")
    land_use: LandUse | None = strawberry.field(
        default=None, description="Parcels with this land use (کاربری) only."
    )
    has_outstanding_dues: bool | None = strawberry.field(
        default=None, description="Dues from the revenue database are not settled."
    )
    has_open_violations: bool | None = strawberry.field(
        default=None, description="Parcels with (true) or without (false) an open violation."
    )

    def to_domain(self) -> domain.ParcelFilter:
        return domain.ParcelFilter(
            region=self.region,
            district=self.district,
            # str(): mypy reads an enum_value member's value as its definition.
            land_use=None if self.land_use is None else str(self.land_use.value),
            has_outstanding_dues=self.has_outstanding_dues,
            has_open_violations=self.has_open_violations,
        )


@strawberry.type(description="A parcel in a page, with its cursor (Relay).")
class ParcelEdge:
    node: Parcel = strawberry.field(
        description="The parcel.", metadata=cache_hint(Freshness.PLANNING)
    )
    cursor: str = strawberry.field(description="Where the parcel stands in the list.")


_new_parcel_edge = quick_new(ParcelEdge)


@strawberry.type(description="A page of parcels (Relay connection).")
class ParcelConnection:
    edges: list[ParcelEdge] = strawberry.field(
        description="The page's parcels.", metadata=cache_hint(Freshness.PLANNING)
    )
    page_info: PageInfo = strawberry.field(
        description="Where the page sits in the list.", metadata=cache_hint(Freshness.PLANNING)
    )
    filter: strawberry.Private[domain.ParcelFilter]

    @strawberry.field(description="How many parcels match the filter, on all pages.")
    async def total_count(self, info: Info) -> int:
        return await domain.count_parcels(info.context.databases, self.filter)


@strawberry.type
class PlanningQuery:
    @strawberry.field(
        description="One parcel by exactly one of its keys; null when none matches.",
        permission_classes=[requires(Scope.PARCELS_READ)],
        metadata=cache_hint(Freshness.PLANNING),
    )
    async def parcel(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID | None, strawberry.argument(description="The parcel's global id.")
        ] = None,
        renewal_code: Annotated[
            RenewalCode | None,
            strawberry.argument(
                description="The parcel's renewal code (کد نوسازی); Persian digits accepted."
            ),
        ] = None,
        registry_plate: Annotated[
            RegistryPlate | None,
            strawberry.argument(
                description="The parcel's registry plate (پلاک ثبتی), e.g. 20-130/207."
            ),
        ] = None,
    ) -> Parcel | None:
        given = [
            k
            for k, v in (
                ("id", id),
                ("renewalCode", renewal_code),
                ("registryPlate", registry_plate),
            )
            if v is not None
        ]
        if len(given) != 1:
            raise BadUserInput(
                "Give exactly one of id, renewalCode or registryPlate.",
                field=given[1] if len(given) > 1 else "id",
            )
        loaders = info.context.loaders
        load: Awaitable[domain.Parcel | None]
        if id is not None:
            type_name, pk = from_global_id(id)
            if type_name != "Parcel":
                raise BadUserInput("The id is not a parcel's.", field="id")
            load = loaders.parcel_by_id.load(pk)
        elif renewal_code is not None:
            load = loaders.parcel_by_renewal_code.load(renewal_code)
        else:
            plate = identifiers.parse_registry_plate(str(registry_plate))
            load = loaders.parcel_by_plate.load((plate.section, plate.main, plate.sub))
        record = await load
        if record is None:
            return None
        parcel = Parcel.from_domain(record)
        await prefetch_parcels(info, [parcel], selected_names(info))
        return parcel

    @strawberry.field(
        description="Parcels in id order, filtered, a page at a time.",
        permission_classes=[requires(Scope.PARCELS_READ)],
        metadata=cache_hint(Freshness.PLANNING),
    )
    async def parcels(
        self,
        info: Info,
        filter: Annotated[
            ParcelFilter | None,
            strawberry.argument(description="Only parcels matching every condition given."),
        ] = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> ParcelConnection | None:
        window = page_window(
            "parcel",
            first=first,
            after=after,
            last=last,
            before=before,
            cap=info.context.settings.max_page_size,
        )
        domain_filter = (filter or ParcelFilter()).to_domain()
        page = await domain.find_parcels(info.context.databases, domain_filter, window=window)
        edges = [
            _new_parcel_edge(
                node=Parcel.from_domain(record), cursor=encode_cursor("parcel", record.id)
            )
            for record in page.parcels
        ]
        await prefetch_parcels(
            info, [edge.node for edge in edges], selected_names(info, ("edges", "node"))
        )
        return ParcelConnection(
            edges=edges,
            page_info=page_info_at(
                page.has_next_page, page.has_previous_page, [edge.cursor for edge in edges]
            ),
            filter=domain_filter,
        )

    @strawberry.field(
        description="A person by national ID; null when unknown.",
        permission_classes=[requires(Scope.PERSONAL_READ)],
    )
    async def person(
        self,
        info: Info,
        national_code: Annotated[
            NationalCode,
            strawberry.argument(
                description="The person's national ID (کد ملی); Persian digits accepted."
            ),
        ],
    ) -> Person | None:
        record = await info.context.loaders.person_by_national_code.load(national_code)
        if record is None:
            return None
        note_personal_read(info, "Person", record.national_code)
        return Person.from_domain(record)
