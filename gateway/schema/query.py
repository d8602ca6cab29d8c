"""The root Query: look-ups by any key, the parcel list, people, and Relay's node(id)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import strawberry

import identifiers
from gateway import parcels
from gateway.access.permissions import Scope, note_personal_read, requires
from gateway.context import Info
from gateway.errors import BadUserInput, Forbidden, QueryTooComplex
from gateway.schema import access, revenue
from gateway.schema.access import ApiKey, AuditFilter, AuditRecord, AuditRecordConnection, Viewer
from gateway.schema.agencies import AgencyStatus
from gateway.schema.node import Node, from_global_id
from gateway.schema.pages import PageInfo, decode_cursor, encode_cursor, page_info
from gateway.schema.planning import (
    Building,
    Certificate,
    District,
    LandUse,
    Parcel,
    Permit,
    Person,
    Region,
    Violation,
    prefetch_parcels,
)
from gateway.schema.prefetch import selected_names
from gateway.schema.revenue import PaymentCheck
from gateway.schema.scalars import NationalCode, RegistryPlate, RenewalCode


@strawberry.input(description="Every condition given must hold.")
class ParcelFilter:
    region: int | None = strawberry.field(default=None, description="Region number.")
    district: int | None = strawberry.field(default=None, description="District number.")
    land_use: LandUse | None = None
    has_outstanding_dues: bool | None = strawberry.field(
        default=None, description="Dues from the revenue database are not settled."
    )
    has_open_violations: bool | None = None

    def to_domain(self) -> parcels.ParcelFilter:
        return parcels.ParcelFilter(
            region=self.region,
            district=self.district,
            land_use=None if self.land_use is None else self.land_use.value,
            has_outstanding_dues=self.has_outstanding_dues,
            has_open_violations=self.has_open_violations,
        )


@strawberry.type
class ParcelEdge:
    node: Parcel
    cursor: str


@strawberry.type(description="A page of parcels (Relay connection).")
class ParcelConnection:
    edges: list[ParcelEdge]
    page_info: PageInfo
    filter: strawberry.Private[parcels.ParcelFilter]

    @strawberry.field(description="How many parcels match the filter, on all pages.")
    async def total_count(self, info: Info) -> int:
        return await parcels.count_parcels(info.context.databases, self.filter)


# type → (how to build it, its loader, the scope reading one needs: None when the type's
# row-level rule alone decides, see gateway/access/rows.py)
_NODE_TYPES: dict[str, tuple[Callable[[Any], Any], str, str | None]] = {
    "Parcel": (Parcel.from_row, "parcel_by_id", Scope.PARCELS_READ),
    "Person": (Person.from_row, "person_by_id", Scope.PERSONAL_READ),
    "Region": (Region.from_row, "region_by_id", Scope.PARCELS_READ),
    "District": (District.from_row, "district_by_id", Scope.PARCELS_READ),
    "Building": (Building.from_row, "building_by_id", Scope.PARCELS_READ),
    "Permit": (Permit.from_row, "permit_by_id", Scope.PARCELS_READ),
    "Certificate": (Certificate.from_row, "certificate_by_id", Scope.PARCELS_READ),
    "Violation": (Violation.from_row, "violation_by_id", Scope.PARCELS_READ),
    "ApiKey": (ApiKey.from_row, "api_key_by_id", Scope.KEYS_READ),
    "AuditRecord": (AuditRecord.from_row, "audit_record_by_id", None),
}


@strawberry.type
class Query:
    @strawberry.field(
        description="One parcel by exactly one of its keys; null when none matches.",
        permission_classes=[requires(Scope.PARCELS_READ)],
    )
    async def parcel(
        self,
        info: Info,
        id: strawberry.ID | None = None,
        renewal_code: RenewalCode | None = None,
        registry_plate: RegistryPlate | None = None,
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
        load: Awaitable[Any]
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
        row = await load
        if row is None:
            return None
        parcel = Parcel.from_row(row)
        await prefetch_parcels(info, [parcel], selected_names(info))
        return parcel

    @strawberry.field(
        description="Parcels in id order, filtered, a page at a time.",
        permission_classes=[requires(Scope.PARCELS_READ)],
    )
    async def parcels(
        self,
        info: Info,
        filter: ParcelFilter | None = None,
        first: int = 20,
        after: str | None = None,
    ) -> ParcelConnection | None:
        cap = info.context.settings.max_page_size
        if first < 1:
            raise BadUserInput("first must be at least 1.", field="first")
        if first > cap:
            raise QueryTooComplex(
                f"first may be at most {cap}; page through the rest with after.",
                field="first",
                max=cap,
            )
        domain_filter = (filter or ParcelFilter()).to_domain()
        page = await parcels.find_parcels(
            info.context.databases,
            domain_filter,
            first=first,
            after_id=decode_cursor("parcel", after),
        )
        edges = [
            ParcelEdge(node=Parcel.from_row(row), cursor=encode_cursor("parcel", row.id))
            for row in page.rows
        ]
        await prefetch_parcels(
            info, [edge.node for edge in edges], selected_names(info, ("edges", "node"))
        )
        return ParcelConnection(
            edges=edges,
            page_info=page_info(page.has_next_page, after, [edge.cursor for edge in edges]),
            filter=domain_filter,
        )

    @strawberry.field(
        description="A person by national ID; null when unknown.",
        permission_classes=[requires(Scope.PERSONAL_READ)],
    )
    async def person(self, info: Info, national_code: NationalCode) -> Person | None:
        row = await info.context.loaders.person_by_national_code.load(national_code)
        if row is None:
            return None
        note_personal_read(info, "Person", row.national_code)
        return Person.from_row(row)

    @strawberry.field(
        description="A dues payment by its bank reference (its first three digits are the "
        "bank's code): revenue's record and the bank's. A bank sees only payments made "
        "through it; another bank's reference answers null.",
        permission_classes=[requires(Scope.PAYMENTS_VERIFY)],
    )
    async def verify_payment(self, info: Info, reference: str) -> PaymentCheck | None:
        return await revenue.verify_payment(info, reference)

    @strawberry.field(
        description="Each outside agency's health: breaker state, latency, errors.",
        permission_classes=[requires(Scope.AGENCIES_READ)],
    )
    def agencies(self, info: Info) -> list[AgencyStatus] | None:
        return [AgencyStatus.from_stats(stats) for stats in info.context.agencies.stats()]

    @strawberry.field(description="Who the gateway takes the caller to be.")
    def viewer(self, info: Info) -> Viewer:
        principal = info.context.principal
        return Viewer(
            kind=principal.kind.value,
            name=principal.name,
            department=principal.department,
            scopes=sorted(principal.scopes),
        )

    @strawberry.field(
        description="The caller's own API keys.",
        permission_classes=[requires(Scope.KEYS_READ)],
    )
    async def api_keys(self, info: Info) -> list[ApiKey] | None:
        return await access.api_keys(info)

    @strawberry.field(
        description="The audit trail: the caller's own records, or all with audit:read."
    )
    async def audit_trail(
        self,
        info: Info,
        filter: AuditFilter | None = None,
        first: int = 20,
        after: str | None = None,
    ) -> AuditRecordConnection:
        return await access.audit_trail(info, filter, first, after)

    @strawberry.field(description="Any object by its global id; null when it does not exist.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        type_name, pk = from_global_id(id)
        if type_name not in _NODE_TYPES:
            raise BadUserInput("The id names no known type.", field="id")
        build, loader, scope = _NODE_TYPES[type_name]
        if scope is not None and not info.context.principal.has(scope):
            raise Forbidden(f"Reading a {type_name} needs the {scope} scope.", scope=scope)
        row = await getattr(info.context.loaders, loader).load(pk)
        if row is None:
            return None
        if type_name == "Person":
            note_personal_read(info, "Person", row.national_code)
        node: Node = build(row)
        return node
