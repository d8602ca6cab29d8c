"""Citizen requests' figures (computed in gateway/requests/request_stats.py and scores.py):
counts, frequent problems, hotspots, each service's public figures and the departments' and
regions' ranking for anyone, the public included (they name no one); the most engaged
reporters who consented to be named, for callers who may read personal data."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Annotated, Any, Self

import strawberry
from strawberry.permission import BasePermission

from gateway.access.permissions import note_personal_read
from gateway.access.principals import Scope
from gateway.context import Info
from gateway.errors import BadUserInput, Forbidden
from gateway.guards.cost import typical_size
from gateway.requests import request_stats as stats
from gateway.requests.records import DATABASE
from gateway.requests.scores import Component, ScoreWeights
from gateway.settings import Settings

# The range every figure takes: requests registered in [since, until).
Since = Annotated[
    dt.datetime | None,
    strawberry.argument(
        description="Requests registered from this moment (inclusive); none: from the first."
    ),
]
Until = Annotated[
    dt.datetime | None,
    strawberry.argument(description="Requests registered before this moment; none: up to now."),
]

# The most hotspots, frequent problems per region, and engaged citizens one query returns.
MAX_HOTSPOTS = 100
MAX_PROBLEMS = 20
MAX_ENGAGED = 100


def score_weights(settings: Settings) -> ScoreWeights:
    return ScoreWeights(
        timeliness=settings.request_score_weight_timeliness,
        resolution=settings.request_score_weight_resolution,
        reopening=settings.request_score_weight_reopening,
        rating=settings.request_score_weight_rating,
        credibility=settings.request_score_credibility,
    )


@strawberry.enum(
    description="What requestCounts groups by (آمار درخواست‌ها); several together group by each."
)
class RequestCountGrouping(Enum):
    SERVICE = strawberry.enum_value("service", description="The service (خدمت), by its code.")
    REGION = strawberry.enum_value("region", description="The municipal region (منطقه).")
    STATUS = strawberry.enum_value("status", description="Where the request stands now.")
    KIND = strawberry.enum_value(
        "kind", description="Request, complaint, criticism, suggestion or thanks."
    )
    DEPARTMENT = strawberry.enum_value(
        "department", description="The responsible department (واحد مسئول)."
    )
    CHANNEL = strawberry.enum_value(
        "channel", description="How it came in: portal, 137 centre, partner app, Open311."
    )
    MONTH = strawberry.enum_value(
        "month", description="The Jalali month of registration (ماه شمسی), in Tehran."
    )


@strawberry.type(
    description="Counts of one group of citizen requests; a key the grouping does not use is null."
)
class RequestCountGroup:
    service_code: str | None = strawberry.field(description="The service's code.")
    region: int | None = strawberry.field(
        description="The region's number; null in a REGION group: requests without a location."
    )
    status: str | None = strawberry.field(description="The status (a CitizenRequestStatus value).")
    kind: str | None = strawberry.field(description="The kind (a CitizenRequestKind value).")
    department: str | None = strawberry.field(description="The responsible department's code.")
    channel: str | None = strawberry.field(
        description="PORTAL, CENTRE_137, PARTNER_APP or OPEN311."
    )
    month: str | None = strawberry.field(
        description="The Jalali month of registration, as 1405-01 (starting at midnight in Tehran)."
    )
    total: int = strawberry.field(description="Requests registered in the range.")
    open: int = strawberry.field(description="Of them, still open (باز).")
    resolved: int = strawberry.field(description="Of them, resolved (رسیدگی شده) at some point.")
    referred: int = strawberry.field(description="Of them, referred to another agency.")
    overdue: int = strawberry.field(
        description="Of them, open, not waiting for the citizen, and past their deadline now."
    )

    @classmethod
    def from_domain(cls, group: stats.CountGroup) -> Self:
        return cls(
            service_code=group.service,
            region=group.region,
            status=group.status,
            kind=group.kind,
            department=group.department,
            channel=group.channel,
            month=group.month,
            total=group.total,
            open=group.open,
            resolved=group.resolved,
            referred=group.referred,
            overdue=group.overdue,
        )


@strawberry.type(description="A service and how often it was reported.")
class ReportedProblem:
    service_code: str = strawberry.field(description="The service's code.")
    requests: int = strawberry.field(description="Requests, complaints and criticism about it.")


@strawberry.type(description="A region's most frequent problems (مشکلات پرتکرار).")
class RegionProblems:
    region: int | None = strawberry.field(
        description="The region's number; null for requests without a location."
    )
    problems: list[ReportedProblem] = strawberry.field(description="Most reported first.")


@strawberry.type(
    description="A cell of the hotspot grid (نقاط پرتکرار): its bounds (WGS 84) and how many "
    "problems were reported in it."
)
class RequestHotspot:
    south: float = strawberry.field(description="The cell's southern latitude.")
    west: float = strawberry.field(description="The cell's western longitude.")
    north: float = strawberry.field(description="The cell's northern latitude.")
    east: float = strawberry.field(description="The cell's eastern longitude.")
    count: int = strawberry.field(description="Requests, complaints and criticism located in it.")
    top_service_code: str = strawberry.field(description="The service most reported in it.")


@strawberry.type(
    description="A service's public figures (شفافیت): volume, median time to resolution and "
    "share answered on time. Names no one."
)
class ServiceTransparency:
    service_code: str = strawberry.field(description="The service's code.")
    name_fa: str = strawberry.field(description="The service's name in Persian.")
    name_en: str = strawberry.field(description="The service's name in English.")
    group_code: str = strawberry.field(description="The catalogue group's code.")
    requests: int = strawberry.field(description="Requests registered in the range.")
    resolved: int = strawberry.field(description="Of them, resolved.")
    median_days_to_resolution: float | None = strawberry.field(
        description="Median days from registration to resolution; null when none is resolved."
    )
    share_on_time: float | None = strawberry.field(
        description="Of those that fell due (answered, or past the deadline unanswered), the "
        "share answered by the deadline, 0 to 1; null when none fell due."
    )

    @classmethod
    def from_domain(cls, figures: stats.ServiceFigures) -> Self:
        return cls(
            service_code=figures.code,
            name_fa=figures.name_fa,
            name_en=figures.name_en,
            group_code=figures.group,
            requests=figures.requests,
            resolved=figures.resolved,
            median_days_to_resolution=figures.median_days_to_resolution,
            share_on_time=figures.share_on_time,
        )


@strawberry.type(description="One component of a score (README, Citizen requests: scores).")
class ScoreComponent:
    name: str = strawberry.field(
        description="timeliness (answer time against deadline), resolution (resolution rate), "
        "reopening (1 − reopen rate) or rating (citizens' rating, 1–5 as 0–1)."
    )
    weight: float = strawberry.field(description="Its weight in the score (configuration).")
    count: int = strawberry.field(description="The requests behind it.")
    observed: float | None = strawberry.field(
        description="The unit's own rate, 0 to 1; null when none of its requests counts here."
    )
    expected: float | None = strawberry.field(
        description="The rate the city reaches on the same services (the unit's service mix)."
    )
    adjusted: float = strawberry.field(
        description="The city's rate plus observed − expected, blended with the city's rate by "
        "the requests behind it: the figure that counts."
    )

    @classmethod
    def from_domain(cls, component: Component) -> Self:
        return cls(
            name=component.name,
            weight=component.weight,
            count=component.count,
            observed=component.observed,
            expected=component.expected,
            adjusted=component.adjusted,
        )


@strawberry.type(
    description="A department's or region's score (امتیاز عملکرد) and rank, with its components."
)
class UnitScore:
    rank: int = strawberry.field(description="1 is best.")
    unit: str = strawberry.field(
        description="The department's code, or the region's number as text."
    )
    name_fa: str | None = strawberry.field(description="The region's name in Persian.")
    name_en: str | None = strawberry.field(description="The region's name in English.")
    score: float = strawberry.field(description="0 to 100.")
    requests: int = strawberry.field(description="Requests the unit handled in the range.")
    components: list[ScoreComponent] = strawberry.field(description="What the score is made of.")

    @classmethod
    def from_domain(cls, ranked: stats.RankedUnit) -> Self:
        return cls(
            rank=ranked.score.rank,
            unit=ranked.score.unit,
            name_fa=ranked.name_fa,
            name_en=ranked.name_en,
            score=ranked.score.score,
            requests=ranked.score.requests,
            components=[ScoreComponent.from_domain(c) for c in ranked.score.components],
        )


@strawberry.type(
    description="A citizen among the most engaged reporters (شهروندان فعال) who consented to "
    "be named."
)
class EngagedCitizen:
    subject: strawberry.Private[str]
    name: str = strawberry.field(description="The citizen's name (personal data).")
    requests: int = strawberry.field(description="Requests they registered in the range.")
    last_reported_at: dt.datetime = strawberry.field(description="Their latest request.")


class MayReadPersonal(BasePermission):
    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        return bool(info.context.principal.has(Scope.PERSONAL_READ))

    def on_unauthorized(self) -> None:
        raise Forbidden(
            "The most engaged citizens are named: personal:read is needed.",
            scope=Scope.PERSONAL_READ,
        )


def _bounded(value: int, low: int, high: int, field: str) -> int:
    if not low <= value <= high:
        raise BadUserInput(f"{field} must be between {low} and {high}.", field=field)
    return value


def _public_floor(info: Info) -> int | None:
    """The small-cell floor (GATEWAY_REQUEST_HOTSPOT_MIN_COUNT, at least 3) for a caller
    without requests:all; None for one with it, who sees every request anyway."""
    if info.context.principal.has(Scope.REQUESTS_ALL):
        return None
    return info.context.settings.request_hotspot_min_count


@strawberry.type
class RequestStatsQuery:
    @strawberry.field(
        description="Citizen requests registered in [since, until) (at most about three years; "
        "open ends: all of history), counted by the keys given (none: one total group), "
        "ordered by them. Open to anyone: counts name no one; without requests:all a group "
        "under GATEWAY_REQUEST_HOTSPOT_MIN_COUNT (at least 3) is left out and a smaller part "
        "of a group reads 0.",
        metadata=typical_size(60),
    )
    async def request_counts(
        self,
        info: Info,
        group_by: Annotated[
            list[RequestCountGrouping],
            strawberry.argument(description="The keys to group by; none: one total group."),
        ],
        since: Since = None,
        until: Until = None,
    ) -> list[RequestCountGroup]:
        groups = await stats.count_requests(
            info.context.databases.engine(DATABASE),
            [stats.Grouping(g.value) for g in group_by],
            since=since,
            until=until,
            now=info.context.wall_clock(),
        )
        floor = _public_floor(info)
        if floor is not None:
            groups = stats.floor_counts(groups, floor)
        return [RequestCountGroup.from_domain(group) for group in groups]

    @strawberry.field(
        description="Each region's most frequent problems: the services most reported in "
        "requests, complaints and criticism registered in [since, until); without "
        "requests:all, a problem reported fewer than GATEWAY_REQUEST_HOTSPOT_MIN_COUNT times "
        "is left out.",
        metadata=typical_size(10),
    )
    async def frequent_problems(
        self,
        info: Info,
        since: Since = None,
        until: Until = None,
        per_region: Annotated[
            int, strawberry.argument(description=f"Problems per region, 1 to {MAX_PROBLEMS}.")
        ] = 5,
    ) -> list[RegionProblems]:
        found = await stats.frequent_problems(
            info.context.databases.engine(DATABASE),
            since=since,
            until=until,
            per_region=_bounded(per_region, 1, MAX_PROBLEMS, "perRegion"),
            now=info.context.wall_clock(),
        )
        floor = _public_floor(info)
        if floor is not None:
            found = stats.floor_problems(found, floor)
        return [
            RegionProblems(
                region=entry.region,
                problems=[ReportedProblem(service_code=c, requests=n) for c, n in entry.problems],
            )
            for entry in found
        ]

    @strawberry.field(
        description="Hotspots: cells of a grid (GATEWAY_REQUEST_HOTSPOT_CELL_M metres on a "
        "side) holding the most problems reported in [since, until), most first; cells with "
        "fewer than GATEWAY_REQUEST_HOTSPOT_MIN_COUNT are never shown.",
        metadata=typical_size(50),
    )
    async def request_hotspots(
        self,
        info: Info,
        since: Since = None,
        until: Until = None,
        service_code: Annotated[
            str | None, strawberry.argument(description="Only this service's requests.")
        ] = None,
        first: Annotated[
            int, strawberry.argument(description=f"The most cells returned, 1 to {MAX_HOTSPOTS}.")
        ] = 50,
    ) -> list[RequestHotspot]:
        settings = info.context.settings
        found = await stats.hotspots(
            info.context.databases.engine(DATABASE),
            since=since,
            until=until,
            cell_metres=settings.request_hotspot_cell_m,
            min_count=settings.request_hotspot_min_count,
            limit=_bounded(first, 1, MAX_HOTSPOTS, "first"),
            service_code=service_code,
            now=info.context.wall_clock(),
        )
        return [
            RequestHotspot(
                south=h.south,
                west=h.west,
                north=h.north,
                east=h.east,
                count=h.count,
                top_service_code=h.top_service,
            )
            for h in found
        ]

    @strawberry.field(
        description="The public transparency view: each service's volume, median days to "
        "resolution and share answered on time over requests registered in [since, until). "
        "Open to anyone, names no one; without requests:all, figures over fewer than "
        "GATEWAY_REQUEST_HOTSPOT_MIN_COUNT requests (or resolutions) read 0 or null.",
        metadata=typical_size(54),
    )
    async def service_transparency(
        self,
        info: Info,
        since: Since = None,
        until: Until = None,
    ) -> list[ServiceTransparency]:
        figures = await stats.transparency(
            info.context.databases.engine(DATABASE),
            since=since,
            until=until,
            now=info.context.wall_clock(),
        )
        floor = _public_floor(info)
        if floor is not None:
            figures = stats.floor_transparency(figures, floor)
        return [ServiceTransparency.from_domain(f) for f in figures]

    @strawberry.field(
        description="Departments ranked by their score (رتبه‌بندی واحدها) over requests "
        "registered in [since, until): answer time against deadline, resolution rate, reopen "
        "rate and rating, adjusted for service mix and workload; best first, each score's "
        "components shown.",
        metadata=typical_size(12),
    )
    async def department_ranking(
        self,
        info: Info,
        since: Since = None,
        until: Until = None,
    ) -> list[UnitScore]:
        ranked = await stats.ranking(
            info.context.databases.engine(DATABASE),
            stats.Grouping.DEPARTMENT,
            score_weights(info.context.settings),
            since=since,
            until=until,
            now=info.context.wall_clock(),
        )
        return [UnitScore.from_domain(unit) for unit in ranked]

    @strawberry.field(
        description="Regions ranked by the same score as departmentRanking, best first.",
        metadata=typical_size(12),
    )
    async def region_ranking(
        self,
        info: Info,
        since: Since = None,
        until: Until = None,
    ) -> list[UnitScore]:
        ranked = await stats.ranking(
            info.context.databases.engine(DATABASE),
            stats.Grouping.REGION,
            score_weights(info.context.settings),
            since=since,
            until=until,
            now=info.context.wall_clock(),
        )
        return [UnitScore.from_domain(unit) for unit in ranked]

    @strawberry.field(
        description="The citizens who reported most in [since, until), among those who "
        "consented to be named (as Shiraz honours its most engaged citizens); most first. "
        "Needs personal:read; every name served is in the audit trail.",
        permission_classes=[MayReadPersonal],
        metadata=typical_size(18),
    )
    async def engaged_citizens(
        self,
        info: Info,
        since: Since = None,
        until: Until = None,
        first: Annotated[
            int, strawberry.argument(description=f"How many, 1 to {MAX_ENGAGED}.")
        ] = 18,
    ) -> list[EngagedCitizen]:
        found = await stats.engaged_citizens(
            info.context.databases.engine(DATABASE),
            since=since,
            until=until,
            limit=_bounded(first, 1, MAX_ENGAGED, "first"),
            now=info.context.wall_clock(),
        )
        citizens = []
        for citizen in found:
            # Under the citizen's latest request, as every other read of their name is.
            note_personal_read(info, "CitizenRequest", str(citizen.latest_request_id))
            citizens.append(
                EngagedCitizen(
                    subject=str(citizen.latest_request_id),
                    name=citizen.name,
                    requests=citizen.requests,
                    last_reported_at=citizen.last_at,
                )
            )
        return citizens
