"""Citizen requests (درخواست‌های شهروندی) and the services catalogue in GraphQL: registering a
request, the citizen following it by tracking code, a department's queue, the 137 centre's
search, and operators' changes to the catalogue.

Every path to a request (citizenRequest, departmentRequests, searchCitizenRequests,
node(id), Parcel.citizenRequests) loads it under its row rule (gateway/access/rows.py),
except the citizen's own lookup, which needs the tracking code and the mobile number's last
four digits and answers a miss exactly like a request that does not exist
(gateway/requests/lookup.py). The citizen's name and mobile are personal data: masked
without personal:read, and each served in full is audited, as national IDs are.
"""

from __future__ import annotations

import datetime as dt
import logging
from enum import Enum
from typing import Annotated, Self

import strawberry

from connectors.errors import AgencyError
from gateway.access.permissions import note_personal_read, requires
from gateway.access.principals import PrincipalKind, Scope
from gateway.access.replays import audit_registration
from gateway.context import Info
from gateway.errors import BadUserInput, Forbidden
from gateway.guards.ratelimit import client_address
from gateway.guards.response_cache import Freshness, cache_hint
from gateway.inquiries.tracking import parse_tracking_code
from gateway.loaders.requests import Near
from gateway.paging import Window
from gateway.requests import (
    catalogue,
    correction,
    geo,
    lifecycle,
    lookup,
    records,
    registration,
    search,
)
from gateway.schema.mutation import change
from gateway.schema.node import Node, from_global_id, node_type
from gateway.schema.pages import (
    After,
    Before,
    First,
    Last,
    PageInfo,
    encode_cursor,
    page_info_of,
    page_window,
)
from identifiers import InvalidIdentifier

log = logging.getLogger("gateway.schema.requests")

SUBMIT = "Mutation.submitCitizenRequest"
SAVE_SERVICE = "Mutation.saveService"
CORRECT = "Mutation.correctCitizenRequest"
MAX_PAGE = 100


# --- Enums ----------------------------------------------------------------------------------


@strawberry.enum(description="What a citizen brings (نوع درخواست).")
class CitizenRequestKind(Enum):
    REQUEST = strawberry.enum_value("REQUEST", description="A request for a service (درخواست).")
    COMPLAINT = strawberry.enum_value("COMPLAINT", description="A complaint (شکایت).")
    CRITICISM = strawberry.enum_value("CRITICISM", description="A criticism (انتقاد).")
    SUGGESTION = strawberry.enum_value("SUGGESTION", description="A suggestion (پیشنهاد).")
    THANKS = strawberry.enum_value("THANKS", description="Thanks (تقدیر و تشکر).")


@strawberry.enum(description="Where a citizen request stands (وضعیت درخواست).")
class CitizenRequestStatus(Enum):
    SUBMITTED = strawberry.enum_value("SUBMITTED", description="Registered (ثبت شده).")
    ASSIGNED = strawberry.enum_value(
        "ASSIGNED", description="Routed to its department (ارجاع به واحد)."
    )
    IN_PROGRESS = strawberry.enum_value(
        "IN_PROGRESS", description="Being worked on (در حال رسیدگی)."
    )
    WAITING_FOR_CITIZEN = strawberry.enum_value(
        "WAITING_FOR_CITIZEN",
        description="Waiting for the citizen (منتظر شهروند); the deadline is paused.",
    )
    RESOLVED = strawberry.enum_value("RESOLVED", description="Answered (پاسخ داده شده).")
    REJECTED = strawberry.enum_value("REJECTED", description="Refused, with why (رد شده).")
    REFERRED = strawberry.enum_value(
        "REFERRED",
        description="Referred to an outside agency (ارجاع به دستگاه دیگر): water, "
        "electricity, gas or police; see referredTo.",
    )
    REOPENED = strawberry.enum_value(
        "REOPENED", description="Reopened after a low rating (بازگشایی شده)."
    )
    CLOSED = strawberry.enum_value("CLOSED", description="Closed (مختومه).")


@strawberry.enum(description="How a request came in (کانال ثبت).")
class CitizenRequestChannel(Enum):
    PORTAL = strawberry.enum_value("PORTAL", description="The citizen portal (سامانه شهروندی).")
    CENTRE_137 = strawberry.enum_value(
        "CENTRE_137", description="A 137 operator on the phone (سامانه ۱۳۷)."
    )
    PARTNER_APP = strawberry.enum_value("PARTNER_APP", description="A partner's app.")
    OPEN311 = strawberry.enum_value("OPEN311", description="An Open311 GeoReport v2 client.")


@strawberry.enum(description="Where a service is answered (نحوه ارائه خدمت).")
class ServiceChannel(Enum):
    PORTAL = strawberry.enum_value(
        "PORTAL", description="On the portal or a specialised system (الکترونیکی)."
    )
    CENTRE_137 = strawberry.enum_value("CENTRE_137", description="By the 137 centre.")
    IN_PERSON = strawberry.enum_value(
        "IN_PERSON", description="In person, by appointment at a region office (حضوری)."
    )
    SEMI_IN_PERSON = strawberry.enum_value(
        "SEMI_IN_PERSON", description="An officer must visit the place (نیمه‌حضوری)."
    )


@strawberry.enum(description="The language of names and descriptions.")
class CatalogueLanguage(Enum):
    FA = strawberry.enum_value("FA", description="Persian (فارسی).")
    EN = strawberry.enum_value("EN", description="English.")


LanguageArgument = Annotated[
    CatalogueLanguage | None,
    strawberry.argument(description="FA (the default) or EN."),
]


def _say(fa: str | None, en: str | None, language: CatalogueLanguage | None) -> str | None:
    return en if language is CatalogueLanguage.EN else fa


# --- The catalogue --------------------------------------------------------------------------


@strawberry.type(description="A group of the services catalogue (گروه خدمات).")
class ServiceGroup:
    code: str = strawberry.field(description="The group's code, e.g. urban_services.")
    name_fa: strawberry.Private[str]
    name_en: strawberry.Private[str]

    @strawberry.field(description="The group's name.")
    def name(self, language: LanguageArgument = None) -> str:
        return _say(self.name_fa, self.name_en, language) or self.name_fa


@strawberry.type(description="One allowed answer to a list question.")
class ServiceQuestionValue:
    key: str = strawberry.field(description="What a request answers (Open311's key).")
    name_fa: strawberry.Private[str]
    name_en: strawberry.Private[str]

    @strawberry.field(description="How the answer reads.")
    def name(self, language: LanguageArgument = None) -> str:
        return _say(self.name_fa, self.name_en, language) or self.name_fa


@strawberry.type(description="A question a request for the service answers (Open311 attribute).")
class ServiceQuestion:
    code: str = strawberry.field(description="The question's code, the key of its answer.")
    datatype: str = strawberry.field(
        description="Open311's datatype: string, number, datetime, text, singlevaluelist, "
        "multivaluelist."
    )
    required: bool = strawberry.field(description="Must be answered.")
    order: int = strawberry.field(description="Where it comes among the service's questions.")
    description_fa: strawberry.Private[str]
    description_en: strawberry.Private[str]
    values: list[ServiceQuestionValue] = strawberry.field(
        description="For a list question, its allowed answers.",
        metadata=cache_hint(Freshness.CATALOGUE),
    )

    @strawberry.field(description="What the question asks.")
    def description(self, language: LanguageArgument = None) -> str:
        return _say(self.description_fa, self.description_en, language) or self.description_fa


@strawberry.type(description="A service of the catalogue (شناسنامه خدمت).")
class CatalogueService:
    definition: strawberry.Private[records.ServiceDefinition]
    code: str = strawberry.field(description="The service's code, e.g. pothole.")
    channel: ServiceChannel = strawberry.field(description="Where it is answered.")
    owner_department: str = strawberry.field(
        description="Its process owner (مالک فرآیند): the department that sets its policy."
    )
    departments: list[str] = strawberry.field(
        description="The departments that execute it (واحد مجری)."
    )
    seen_by: list[str] = strawberry.field(
        description="Departments that only see its requests (واحد ناظر)."
    )
    deadline_days: int = strawberry.field(description="Its deadline, in working days.")
    regions: list[int] = strawberry.field(
        description="The regions where it is enabled (a new service is piloted in one first)."
    )
    referred_agency: str | None = strawberry.field(
        description="The outside agency its matters go to, if any: water, electricity, gas, police."
    )
    active: bool = strawberry.field(description="Offered; a withdrawn service is not.")
    questions: list[ServiceQuestion] = strawberry.field(
        description="What a request for it answers.", metadata=cache_hint(Freshness.CATALOGUE)
    )

    @classmethod
    def from_domain(cls, service: records.ServiceDefinition) -> Self:
        return cls(
            definition=service,
            code=service.code,
            channel=ServiceChannel(service.channel),
            owner_department=service.owner_department,
            departments=list(service.responsible),
            seen_by=list(service.sees),
            deadline_days=service.deadline_days,
            regions=list(service.regions),
            referred_agency=service.referred_agency,
            active=service.active,
            questions=[
                ServiceQuestion(
                    code=str(q["code"]),
                    datatype=str(q["datatype"]),
                    required=bool(q.get("required")),
                    order=int(q.get("order") or 0),
                    description_fa=str(q.get("description_fa") or ""),
                    description_en=str(q.get("description_en") or ""),
                    values=[
                        ServiceQuestionValue(
                            key=str(v["key"]),
                            name_fa=str(v.get("name_fa") or ""),
                            name_en=str(v.get("name_en") or ""),
                        )
                        for v in q.get("values") or ()
                    ],
                )
                for q in service.questions
            ],
        )

    @strawberry.field(description="The service's name.")
    def name(self, language: LanguageArgument = None) -> str:
        d = self.definition
        return _say(d.name_fa, d.name_en, language) or d.name_fa

    @strawberry.field(description="What the service is.")
    def description(self, language: LanguageArgument = None) -> str | None:
        d = self.definition
        return _say(d.description_fa, d.description_en, language)

    @strawberry.field(description="Its group.", metadata=cache_hint(Freshness.CATALOGUE))
    def group(self) -> ServiceGroup:
        d = self.definition
        return ServiceGroup(code=d.group_code, name_fa=d.group_name_fa, name_en=d.group_name_en)


# --- Requests -------------------------------------------------------------------------------


def _mask_mobile(mobile: str) -> str:
    """The operator's prefix only: never the last four digits, which open the request."""
    return f"{mobile[:4]}*******"


def _mask_name(name: str) -> str:
    return f"{name[:1]}***"


def _internal(info: Info) -> bool:
    return info.context.principal.kind.internal


@strawberry.type(description="One step of a request's life (append-only).")
class CitizenRequestHistoryEntry:
    entry: strawberry.Private[records.HistoryEntry]
    status: CitizenRequestStatus = strawberry.field(description="The status it entered.")
    from_status: CitizenRequestStatus | None = strawberry.field(
        description="The status it left (null for the registration)."
    )
    event: str = strawberry.field(
        description="What happened: REGISTERED, TRANSITION, ROUTED, MERGED, SPLIT, REPLIED, "
        "RATED, and the jobs' OVERDUE, REMINDED, ESCALATED, ANONYMISED."
    )
    at: dt.datetime = strawberry.field(description="When.")
    note: str | None = strawberry.field(description="Why, as recorded.")
    department: str | None = strawberry.field(description="The department concerned, if any.")

    @strawberry.field(description="Who (internal callers only; null for the citizen).")
    def actor(self, info: Info) -> str | None:
        return self.entry.actor if _internal(info) else None


def _history(entry: records.HistoryEntry) -> CitizenRequestHistoryEntry:
    return CitizenRequestHistoryEntry(
        entry=entry,
        status=CitizenRequestStatus(entry.to_status),
        from_status=None if entry.from_status is None else CitizenRequestStatus(entry.from_status),
        event=entry.event,
        at=entry.at,
        note=entry.note,
        department=entry.department,
    )


@strawberry.type(description="A reply to the citizen (پاسخ).")
class CitizenRequestReply:
    at: dt.datetime = strawberry.field(description="When it was sent.")
    body: str = strawberry.field(description="The reply, in Persian.")
    department: str | None = strawberry.field(description="The department that replied.")


@node_type(loader=lambda loaders: loaders.citizen_request_by_id, scope=None)
@strawberry.type(
    description="A citizen's request, complaint, criticism, suggestion or thanks, and where it "
    "stands (درخواست شهروندی)."
)
class CitizenRequest(Node):
    record: strawberry.Private[records.CitizenRequest]
    offered: strawberry.Private[tuple[records.CitizenRequest, ...] | None]
    tracking_code: str = strawberry.field(
        description="کد پیگیری: 16 digits, the last a Damm check digit; printed in groups of four."
    )
    kind: CitizenRequestKind = strawberry.field(description="What the citizen brings.")
    status: CitizenRequestStatus = strawberry.field(description="Where it stands.")
    channel: CitizenRequestChannel = strawberry.field(description="How it came in.")
    description: str = strawberry.field(description="The citizen's words, in Persian.")
    latitude: float | None = strawberry.field(description="Where (WGS 84), if given.")
    longitude: float | None = strawberry.field(description="Where (WGS 84), if given.")
    address: str | None = strawberry.field(description="The address, if given.")
    region: int | None = strawberry.field(
        description="The region (منطقه) its location resolved to; null when only an address "
        "was given."
    )
    department: str | None = strawberry.field(
        description="The department it is routed to (واحد مسئول)."
    )
    region_office: str | None = strawberry.field(
        description="The region office that answers it on the ground."
    )
    referred_to: str | None = strawberry.field(
        description="The outside agency it was referred to (water, electricity, gas, police)."
    )
    deadline: dt.datetime | None = strawberry.field(
        description="When it must be answered: the service's working days from its "
        "registration (Saturday to Thursday, skipping Fridays and official holidays), "
        "extended by the working days spent waiting for the citizen."
    )
    registered_at: dt.datetime = strawberry.field(description="When it was registered.")
    resolved_at: dt.datetime | None = strawberry.field(description="When it was resolved.")
    closed_at: dt.datetime | None = strawberry.field(description="When it was closed.")
    rating: int | None = strawberry.field(description="The citizen's rating, 1 to 5.")
    photo_urls: list[str] = strawberry.field(description="Photos the citizen attached.")

    @classmethod
    def from_domain(
        cls,
        request: records.CitizenRequest,
        offered: tuple[records.CitizenRequest, ...] | None = None,
    ) -> Self:
        return cls(
            pk=request.id,
            record=request,
            offered=offered,
            tracking_code=request.tracking_code,
            kind=CitizenRequestKind(request.kind),
            status=CitizenRequestStatus(request.status),
            channel=CitizenRequestChannel(request.channel),
            description=request.description,
            latitude=request.latitude,
            longitude=request.longitude,
            address=request.address,
            region=request.region,
            department=request.department,
            region_office=request.region_office,
            referred_to=request.referred_to,
            deadline=request.deadline_at,
            registered_at=request.registered_at,
            resolved_at=request.resolved_at,
            closed_at=request.closed_at,
            rating=request.rating,
            photo_urls=list(request.photo_urls),
        )

    @strawberry.field(description="The service asked for.")
    async def service(self, info: Info) -> CatalogueService:
        found = await info.context.loaders.service_by_id.load(self.record.service_id)
        assert found is not None
        return CatalogueService.from_domain(found)

    @strawberry.field(description="Its history, oldest first.")
    async def history(self, info: Info) -> list[CitizenRequestHistoryEntry]:
        found = await info.context.loaders.citizen_request_history.load(self.record.id)
        return [_history(entry) for entry in found]

    @strawberry.field(description="Replies to the citizen, oldest first.")
    async def replies(self, info: Info) -> list[CitizenRequestReply]:
        found = await info.context.loaders.citizen_request_replies.load(self.record.id)
        return [CitizenRequestReply(at=r.at, body=r.body, department=r.department) for r in found]

    @strawberry.field(
        description="Past its deadline while open and not waiting for the citizen (معوق)."
    )
    def overdue(self, info: Info) -> bool:
        return self.record.overdue(info.context.wall_clock())

    @strawberry.field(
        description="The citizen's name (personal): masked without personal:read; audited."
    )
    def citizen_name(self, info: Info) -> str | None:
        name = self.record.citizen_name
        if name is None:
            return None
        if info.context.principal.has(Scope.PERSONAL_READ):
            note_personal_read(info, "CitizenRequest", self.record.id)
            return name
        return _mask_name(name)

    @strawberry.field(
        description="The citizen's mobile number (personal): masked without personal:read "
        "(never showing its last four digits); audited."
    )
    def citizen_mobile(self, info: Info) -> str | None:
        mobile = self.record.citizen_mobile
        if mobile is None:
            return None
        if info.context.principal.has(Scope.PERSONAL_READ):
            note_personal_read(info, "CitizenRequest", self.record.id)
            return mobile
        return _mask_mobile(mobile)

    @strawberry.field(description="Who registered it (internal callers only).")
    def registered_by(self, info: Info) -> str | None:
        return self.record.registered_by if _internal(info) else None

    @strawberry.field(
        description="Open requests for the same service close by and recent, offered as "
        "possible duplicates for an officer to merge (internal callers only; empty otherwise), "
        "among the requests the caller may see."
    )
    async def possible_duplicates(self, info: Info) -> list[CitizenRequest]:
        if not _internal(info):
            return []
        loaders = info.context.loaders
        if self.offered is None:
            # Under the caller's row rule, one statement for every request of the level.
            offered = await loaders.citizen_request_duplicates.load(
                (self.record, _duplicate_policy(info))
            )
            return [CitizenRequest.from_domain(other) for other in offered]
        # Those registration found, without a row rule: only the ones the caller may see.
        visible = await loaders.citizen_request_by_id.load_many([o.id for o in self.offered])
        return [CitizenRequest.from_domain(other) for other in visible if other is not None]

    @strawberry.field(description="The request this one was merged into, if any.")
    async def merged_into(self, info: Info) -> CitizenRequest | None:
        if self.record.merged_into_id is None:
            return None
        return await _visible(info, self.record.merged_into_id)

    @strawberry.field(description="The request this one was split from, if any.")
    async def parent(self, info: Info) -> CitizenRequest | None:
        if self.record.parent_id is None:
            return None
        return await _visible(info, self.record.parent_id)


async def _visible(info: Info, request_id: int) -> CitizenRequest | None:
    found = await info.context.loaders.citizen_request_by_id.load(request_id)
    return None if found is None else CitizenRequest.from_domain(found)


def _duplicate_policy(info: Info) -> registration.DuplicatePolicy:
    settings = info.context.settings
    return registration.duplicate_policy(
        settings.request_duplicate_radius_m, settings.request_duplicate_window_hours
    )


@strawberry.type(description="A citizen request in a page, with its cursor (Relay).")
class CitizenRequestEdge:
    cursor: str = strawberry.field(description="Where the request stands in the list.")
    node: CitizenRequest = strawberry.field(description="The request.")


@strawberry.type(description="A page of citizen requests (Relay connection).")
class CitizenRequestConnection:
    edges: list[CitizenRequestEdge] = strawberry.field(description="The page's requests.")
    page_info: PageInfo = strawberry.field(description="Where the page sits in the list.")
    selection: strawberry.Private[search.RequestSearch]

    @strawberry.field(description="How many requests match, on all pages.")
    async def total_count(self, info: Info) -> int:
        context = info.context
        return await search.count(context.databases, context.principal, self.selection)


async def _page(
    info: Info, found: search.RequestSearch, window: Window, *, descending: bool
) -> CitizenRequestConnection:
    context = info.context
    page = await search.find(
        context.databases, context.principal, found, window, descending=descending
    )
    cursors = [encode_cursor("request", request.id) for request in page.items]
    edges = [
        CitizenRequestEdge(cursor=cursor, node=CitizenRequest.from_domain(request))
        for cursor, request in zip(cursors, page.items, strict=True)
    ]
    return CitizenRequestConnection(
        edges=edges, page_info=page_info_of(page, cursors), selection=found
    )


def _tracking_code(text: str) -> str:
    try:
        return parse_tracking_code(text)
    except (InvalidIdentifier, ValueError) as exc:
        raise BadUserInput(str(exc), field="trackingCode") from None


def _client_address(info: Info) -> str:
    """The caller's address as the rate limits name it (one spelling per address)."""
    return client_address(info.context.request.scope)


@strawberry.input(description="Which requests to find (every condition given must hold).")
class CitizenRequestFilter:
    status: CitizenRequestStatus | None = strawberry.field(
        default=None, description="In this status."
    )
    kind: CitizenRequestKind | None = strawberry.field(default=None, description="Of this kind.")
    service_code: str | None = strawberry.field(default=None, description="For this service.")
    region: int | None = strawberry.field(default=None, description="In this region.")
    department: str | None = strawberry.field(default=None, description="Routed to this one.")
    channel: CitizenRequestChannel | None = strawberry.field(
        default=None, description="Come in through this channel."
    )
    overdue: bool | None = strawberry.field(
        default=None, description="Past their deadline (true) or not (false)."
    )
    text: str | None = strawberry.field(
        default=None, description="Words in the description or the address."
    )
    tracking_code: str | None = strawberry.field(default=None, description="This tracking code.")
    registered_from: dt.datetime | None = strawberry.field(
        default=None, description="Registered at or after."
    )
    registered_until: dt.datetime | None = strawberry.field(
        default=None, description="Registered before."
    )


def _search(info: Info, filter: CitizenRequestFilter | None) -> search.RequestSearch:
    if filter is None:
        return search.RequestSearch()
    tracking_code = None
    if filter.tracking_code is not None:
        tracking_code = _tracking_code(filter.tracking_code)
    return search.RequestSearch(
        statuses=() if filter.status is None else (filter.status.name,),
        kind=None if filter.kind is None else filter.kind.name,
        service_code=filter.service_code,
        region=filter.region,
        department=filter.department,
        channel=None if filter.channel is None else filter.channel.name,
        tracking_code=tracking_code,
        text=filter.text,
        registered_from=filter.registered_from,
        registered_until=filter.registered_until,
        overdue=filter.overdue,
        now=None if filter.overdue is None else info.context.wall_clock(),
    )


@strawberry.type
class RequestsQuery:
    @strawberry.field(
        description="A citizen request by its tracking code (Persian digits, spaces and dashes "
        "accepted). With mobileLast4 it is the citizen's own lookup: the request whose mobile "
        "ends in those four digits, else null, alike for a wrong ending and a code never "
        "issued, and rate limited (RATE_LIMITED). Without it, the caller's row rule decides "
        "(the registrar, the 137 centre, the department, operators), null otherwise."
    )
    async def citizen_request(
        self,
        info: Info,
        tracking_code: Annotated[
            str, strawberry.argument(description="The request's tracking code (کد پیگیری).")
        ],
        mobile_last4: Annotated[
            str | None,
            strawberry.argument(
                description="The last four digits of the mobile number it was registered with."
            ),
        ] = None,
    ) -> CitizenRequest | None:
        context = info.context
        code = _tracking_code(tracking_code)
        if mobile_last4 is None:
            if context.principal.kind is PrincipalKind.PUBLIC:
                # Nothing to open it with; counted like any lookup, answered like a miss.
                await lookup.throttle_for(context.settings).admit(_client_address(info), code)
                return None
            found = await context.loaders.citizen_request_by_tracking_code.load(code)
            return None if found is None else CitizenRequest.from_domain(found)
        last4 = lookup.parse_last4(mobile_last4)
        throttle = lookup.throttle_for(context.settings)
        await throttle.admit(_client_address(info), code)
        found = await lookup.find_for_citizen(context.databases, code, last4)
        if found is None:
            await throttle.failed(code)
            return None
        return CitizenRequest.from_domain(found)

    @strawberry.field(
        description="The services catalogue, in group order: of one group, enabled in one "
        "region, or all; withdrawn services only when asked.",
        metadata=cache_hint(Freshness.CATALOGUE),
    )
    async def services(
        self,
        info: Info,
        group: Annotated[
            str | None, strawberry.argument(description="A group's code, e.g. transport.")
        ] = None,
        region: Annotated[
            int | None, strawberry.argument(description="Only services enabled in this region.")
        ] = None,
        include_withdrawn: Annotated[
            bool, strawberry.argument(description="Also services no longer offered.")
        ] = False,
    ) -> list[CatalogueService]:
        async with info.context.databases.engine(records.DATABASE).connect() as connection:
            found = await records.load_services(
                connection, group=group, region=region, include_inactive=include_withdrawn
            )
        return [CatalogueService.from_domain(service) for service in found]

    @strawberry.field(
        description="The catalogue's five groups, in order.",
        metadata=cache_hint(Freshness.CATALOGUE),
    )
    async def service_groups(self, info: Info) -> list[ServiceGroup]:
        found = await search.groups(info.context.databases)
        return [ServiceGroup(code=g.code, name_fa=g.name_fa, name_en=g.name_en) for g in found]

    @strawberry.field(
        description="The requests routed to the caller's department (its queue, صف کارتابل), "
        "oldest first; operators see every department's, or the one `department` names. "
        "FORBIDDEN for callers that are neither."
    )
    async def department_requests(
        self,
        info: Info,
        status: Annotated[
            CitizenRequestStatus | None,
            strawberry.argument(description="Only in this status (default: every open one)."),
        ] = None,
        overdue: Annotated[
            bool | None, strawberry.argument(description="Only past (true) or within deadline.")
        ] = None,
        department: Annotated[
            str | None, strawberry.argument(description="Operators: whose queue.")
        ] = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> CitizenRequestConnection:
        principal = info.context.principal
        whose: str | None
        if principal.kind is PrincipalKind.DEPARTMENT and principal.department is not None:
            whose = principal.department
        elif principal.has(Scope.REQUESTS_ALL):
            whose = department  # None: every department's
        else:
            raise Forbidden("The queue is a department's.", scope="requests:queue")
        window = page_window(
            "request", first=first, after=after, last=last, before=before, cap=MAX_PAGE
        )
        queue = search.RequestSearch(
            statuses=search.open_queue_statuses() if status is None else (status.name,),
            department=whose,
            routed=whose is None,
            overdue=overdue,
            now=None if overdue is None else info.context.wall_clock(),
        )
        return await _page(info, queue, window, descending=False)

    @strawberry.field(
        description="Search citizen requests, newest first, within what the caller may see: "
        "the 137 centre those it registered, a department those routed to it or of its "
        "services, operators and inspection all."
    )
    async def search_citizen_requests(
        self,
        info: Info,
        filter: Annotated[
            CitizenRequestFilter | None, strawberry.argument(description="What to find.")
        ] = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> CitizenRequestConnection:
        window = page_window(
            "request", first=first, after=after, last=last, before=before, cap=MAX_PAGE
        )
        return await _page(info, _search(info, filter), window, descending=True)


# --- Mutations ------------------------------------------------------------------------------


@strawberry.input(description="An answer to one of the service's questions.")
class CitizenRequestAnswerInput:
    code: str = strawberry.field(description="The question's code.")
    value: str = strawberry.field(
        description="The answer (a list question's key; several keys comma-separated)."
    )


@strawberry.input(
    description="A citizen request to register: where (coordinates inside the city, or an "
    "address), the service, what, and who."
)
class SubmitCitizenRequestInput:
    kind: CitizenRequestKind = strawberry.field(description="What the citizen brings.")
    service_code: str = strawberry.field(description="The catalogue service's code.")
    description: str = strawberry.field(description="What is wrong or wanted, in Persian.")
    latitude: float | None = strawberry.field(default=None, description="Where (WGS 84).")
    longitude: float | None = strawberry.field(default=None, description="Where (WGS 84).")
    address: str | None = strawberry.field(
        default=None,
        description="The address: needed when there are no coordinates, or they are outside "
        "the city.",
    )
    citizen_name: str = strawberry.field(description="The citizen's name (personal data).")
    citizen_mobile: str = strawberry.field(
        description="The citizen's mobile, 09xxxxxxxxx (personal data); its last four digits "
        "open the request to the citizen."
    )
    photo_urls: list[str] | None = strawberry.field(
        default=None, description="Photos already uploaded, as http(s) URLs."
    )
    idempotency_key: str = strawberry.field(
        description="The registrar's own key for this registration: the same key again returns "
        "the same request; with a different input it is a CONFLICT."
    )
    renewal_code: str | None = strawberry.field(
        default=None,
        description="The parcel's renewal code (کد نوسازی), when the request is about a parcel.",
    )
    answers: list[CitizenRequestAnswerInput] | None = strawberry.field(
        default=None, description="Answers to the service's questions."
    )
    public_consent: bool = strawberry.field(
        default=False,
        description="The citizen agrees to be named among the most engaged reporters.",
    )


@strawberry.input(description="A question of a service, as an operator defines it.")
class ServiceQuestionInput:
    code: str = strawberry.field(description="A unique lower-case code.")
    datatype: str = strawberry.field(
        description="string, number, datetime, text, singlevaluelist or multivaluelist."
    )
    required: bool = strawberry.field(default=False, description="Must be answered.")
    description_fa: str = strawberry.field(description="What it asks, in Persian.")
    description_en: str = strawberry.field(description="What it asks, in English.")
    values: list[ServiceQuestionValueInput] | None = strawberry.field(
        default=None, description="A list question's allowed answers."
    )


@strawberry.input(description="An allowed answer of a list question.")
class ServiceQuestionValueInput:
    key: str = strawberry.field(description="The answer's key.")
    name_fa: str = strawberry.field(description="How it reads in Persian.")
    name_en: str = strawberry.field(description="How it reads in English.")


@strawberry.input(
    description="A service's whole definition: creates the service or replaces its definition."
)
class SaveServiceInput:
    code: str = strawberry.field(description="The service's code (lower-case, a-z 0-9 _).")
    group: str = strawberry.field(description="Its group's code.")
    name_fa: str = strawberry.field(description="Its name in Persian.")
    name_en: str = strawberry.field(description="Its name in English.")
    channel: ServiceChannel = strawberry.field(description="Where it is answered.")
    owner_department: str = strawberry.field(description="Its process owner.")
    departments: list[str] | None = strawberry.field(
        default=None, description="Executing departments (default: the owner)."
    )
    seen_by: list[str] | None = strawberry.field(
        default=None, description="Departments that only see its requests."
    )
    deadline_days: int = strawberry.field(description="Its deadline in working days.")
    regions: list[int] = strawberry.field(
        description="Where it is enabled: one region for a pilot, more later."
    )
    description_fa: str | None = strawberry.field(default=None, description="In Persian.")
    description_en: str | None = strawberry.field(default=None, description="In English.")
    questions: list[ServiceQuestionInput] | None = strawberry.field(
        default=None, description="What a request for it answers."
    )
    referred_agency: str | None = strawberry.field(
        default=None, description="water, electricity, gas or police, if its matters go there."
    )
    active: bool = strawberry.field(default=True, description="Offered (false: withdrawn).")


@strawberry.input(
    description="A correction of a request's service or place (اصلاح درخواست); give at least one."
)
class CorrectCitizenRequestInput:
    id: strawberry.ID = strawberry.field(description="The request's global id.")
    service_code: str | None = strawberry.field(
        default=None, description="The service it is really about."
    )
    latitude: float | None = strawberry.field(default=None, description="Where it really is.")
    longitude: float | None = strawberry.field(default=None, description="Where it really is.")
    address: str | None = strawberry.field(default=None, description="Its address.")
    note: str = strawberry.field(description="Why: recorded in its history.")


def _request_pk(value: str) -> int:
    type_name, pk = from_global_id(value, field="id")
    if type_name != "CitizenRequest":
        raise BadUserInput("Not a CitizenRequest id.", field="id")
    return pk


@strawberry.type
class RequestsMutation:
    @strawberry.mutation(
        description="Registers a citizen request (the citizen portal's key, a 137 operator, a "
        "partner app): located, routed by the rules, given its tracking code and deadline, "
        "and committed before the answer; possibleDuplicates lists open requests like it. "
        "BAD_USER_INPUT naming the field (a point outside every region without an address, "
        "an unknown service), SERVICE_NOT_AVAILABLE_IN_REGION, CONFLICT for an idempotency "
        "key reused with another input."
    )
    async def submit_citizen_request(
        self,
        info: Info,
        input: Annotated[
            SubmitCitizenRequestInput, strawberry.argument(description="The request.")
        ],
    ) -> CitizenRequest:
        context = info.context
        if context.principal.kind is PrincipalKind.PUBLIC:
            raise Forbidden(
                "Requests are registered through the portal, the 137 centre or a partner app.",
                scope="requests:register",
            )
        submission = registration.Submission(
            kind=input.kind.name,
            service_code=input.service_code,
            description=input.description,
            citizen_name=input.citizen_name,
            citizen_mobile=input.citizen_mobile,
            idempotency_key=input.idempotency_key,
            latitude=input.latitude,
            longitude=input.longitude,
            address=input.address,
            renewal_code=input.renewal_code,
            photo_urls=tuple(input.photo_urls or ()),
            answers={answer.code: answer.value for answer in input.answers or ()},
            public_consent=input.public_consent,
        )
        registered = await registration.register(
            context.databases,
            context.principal,
            submission,
            now=context.wall_clock(),
            duplicates=_duplicate_policy(info),
        )
        # A replay whose original's audit write failed writes the record now.
        await audit_registration(
            context.audit_trail,
            context.audit_trail.append,
            context.audit_entry("change", SUBMIT, "CitizenRequest", str(registered.request.id)),
            created=registered.created,
        )
        return CitizenRequest.from_domain(registered.request, registered.duplicates)

    @strawberry.mutation(
        description="Corrects a request's service or location; the routing rules run again "
        "(department, region office, referral) and the history records both. Operators, the "
        "137 centre and the request's department; NOT_FOUND for a request the caller does not "
        "see, CONFLICT for a finished one, BAD_USER_INPUT and SERVICE_NOT_AVAILABLE_IN_REGION "
        "as at registration."
    )
    async def correct_citizen_request(
        self,
        info: Info,
        input: Annotated[
            CorrectCitizenRequestInput, strawberry.argument(description="The correction.")
        ],
    ) -> CitizenRequest:
        context = info.context
        request_id = _request_pk(input.id)
        if (input.latitude is None) != (input.longitude is None):
            raise BadUserInput(
                "Give both latitude and longitude, or neither.",
                field="latitude" if input.latitude is None else "longitude",
            )
        location = (
            None
            if input.latitude is None or input.longitude is None
            else (input.latitude, input.longitude)
        )
        async with change(info, records.DATABASE) as unit:
            connection = await unit.session.connection()
            corrected = await correction.correct(
                connection,
                context.principal,
                request_id,
                note=input.note,
                now=context.wall_clock(),
                where=search.condition(context.principal),
                service_code=input.service_code,
                location=location,
                address=input.address,
            )
            unit.audit(CORRECT, "CitizenRequest", request_id)
            changed = lifecycle.Changed(corrected, await lifecycle.audiences(connection, corrected))
            for audience, event in changed.events():
                unit.announce(lifecycle.REQUEST_UPDATED, audience, event)
        return CitizenRequest.from_domain(corrected)

    @strawberry.mutation(
        description="Creates a service of the catalogue or replaces its definition (operators); "
        "audited. Enable a new service in one region to pilot it, in more later.",
        permission_classes=[requires(Scope.CATALOGUE_WRITE)],
    )
    async def save_service(
        self,
        info: Info,
        input: Annotated[SaveServiceInput, strawberry.argument(description="The definition.")],
    ) -> CatalogueService:
        change_of = catalogue.ServiceChange(
            code=input.code,
            group=input.group,
            name_fa=input.name_fa,
            name_en=input.name_en,
            channel=input.channel.name,
            owner_department=input.owner_department,
            deadline_days=input.deadline_days,
            regions=tuple(input.regions),
            responsible=tuple(input.departments or ()),
            sees=tuple(input.seen_by or ()),
            description_fa=input.description_fa,
            description_en=input.description_en,
            questions=tuple(
                {
                    "code": q.code,
                    "datatype": q.datatype,
                    "required": q.required,
                    "description_fa": q.description_fa,
                    "description_en": q.description_en,
                    "values": [
                        {"key": v.key, "name_fa": v.name_fa, "name_en": v.name_en}
                        for v in q.values or ()
                    ],
                }
                for q in input.questions or ()
            ),
            referred_agency=input.referred_agency,
            active=input.active,
        )
        async with change(info, records.DATABASE) as unit:
            connection = await unit.session.connection()
            saved, _created = await catalogue.save_service(
                connection, change_of, now=info.context.wall_clock()
            )
            unit.audit(SAVE_SERVICE, "Service", saved.code)
        return CatalogueService.from_domain(saved)


async def citizen_requests_about_parcel(
    info: Info, renewal_code: str, address: str, postal_code: str
) -> list[CitizenRequest]:
    """Parcel.citizenRequests: the requests registered with its renewal code or, without
    one, at its address or within GATEWAY_REQUEST_PARCEL_RADIUS_M of its postal point (the
    postal company's coordinates of its postal code); batched over every parcel of the
    query, the postal look-ups through the agency loader. Without the postal company (down,
    or no such code) the renewal-code and address matches are still the answer."""
    context = info.context
    near: Near | None = None
    try:
        postal = await context.loaders.postal_address.load(postal_code)
    except AgencyError as exc:
        log.warning("Parcel.citizenRequests without the postal point: %s", exc)
        postal = None
    if postal is not None:
        near = Near(
            geo.Point(postal.latitude, postal.longitude), context.settings.request_parcel_radius_m
        )
    found = await context.loaders.citizen_requests_about_parcel.load((renewal_code, address, near))
    return [CitizenRequest.from_domain(request) for request in found]
