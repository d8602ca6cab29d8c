"""inquiryStats: inquiry figures by region, kind, Jalali month or partner (computed in
gateway/inquiries/stats.py), for operators and inspection over all, for anyone else over
what they may read."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Annotated, Any, Self

import strawberry
from strawberry.permission import BasePermission

from gateway.access.principals import PrincipalKind, Scope
from gateway.context import Info
from gateway.errors import Forbidden
from gateway.guards.cost import typical_size
from gateway.inquiries import stats
from gateway.schema.inquiry_kinds import InquiryKind


@strawberry.enum(description="What inquiryStats groups by; several together group by each.")
class InquiryStatsGrouping(Enum):
    REGION = strawberry.enum_value("region", description="The parcel's planning region.")
    KIND = strawberry.enum_value("kind", description="The inquiry's kind.")
    MONTH = strawberry.enum_value("month", description="The Jalali month of submission, in Tehran.")
    PARTNER = strawberry.enum_value("partner", description="The organisation that asked.")


@strawberry.type(
    description="Figures of one group of inquiries; a key the grouping does not use is null."
)
class InquiryStatsGroup:
    region: int | None = strawberry.field(
        description="The planning region's id (in the demo city, its number) of the parcels "
        "asked about."
    )
    kind: InquiryKind | None = strawberry.field(
        description="The group's inquiry kind, when grouped by KIND."
    )
    month: str | None = strawberry.field(
        description="The Jalali month of submission, as 1404-07 (the month starts at midnight "
        "in Tehran)."
    )
    partner: str | None = strawberry.field(
        description="The organisation that asked: a bank's code, notary:<id>, counter:<id>."
    )
    total: int = strawberry.field(description="Inquiries submitted in the group.")
    pending: int = strawberry.field(description="A machine is still answering a check.")
    waiting_for_department: int = strawberry.field(
        description="A check waits in a department's queue."
    )
    decided: int = strawberry.field(description="Inquiries with a verdict.")
    clear: int = strawberry.field(description="Inquiries decided CLEAR.")
    not_clear: int = strawberry.field(description="Inquiries decided NOT_CLEAR.")
    overdue: int = strawberry.field(
        description="Open, with a check in a department's queue past its deadline now."
    )
    median_seconds_to_verdict: float | None = strawberry.field(
        description="From submission to verdict, over the decided ones; null when none is."
    )
    p90_seconds_to_verdict: float | None = strawberry.field(
        description="The 90th percentile of the same (linear interpolation)."
    )

    @classmethod
    def from_domain(cls, group: stats.StatsGroup) -> Self:
        return cls(
            region=group.region,
            kind=None if group.kind is None else InquiryKind(group.kind),
            month=group.month,
            partner=group.partner,
            total=group.total,
            pending=group.pending,
            waiting_for_department=group.waiting_for_department,
            decided=group.decided,
            clear=group.clear,
            not_clear=group.not_clear,
            overdue=group.overdue,
            median_seconds_to_verdict=group.median_seconds_to_verdict,
            p90_seconds_to_verdict=group.p90_seconds_to_verdict,
        )


class MayCountInquiries(BasePermission):
    """Any caller who may read some inquiries: a partner its own, a department those holding
    its checks, operators and inspection (inquiries:stats) all. The anonymous public none."""

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        return info.context.principal.kind is not PrincipalKind.PUBLIC

    def on_unauthorized(self) -> None:
        raise Forbidden(
            "inquiryStats needs a partner's, a department's or an operator's credentials.",
            scope=Scope.INQUIRY_STATS_ALL,
        )


@strawberry.type
class InquiryStatsQuery:
    @strawberry.field(
        description="Inquiry figures grouped by the keys given (none: one total group), over "
        "inquiries submitted in [since, until) (at most about three years), ordered by the "
        "keys. Operators and the inspection department count every inquiry; a partner its "
        "own; a department those holding one of its checks.",
        permission_classes=[MayCountInquiries],
        metadata=typical_size(36),
    )
    async def inquiry_stats(
        self,
        info: Info,
        group_by: Annotated[
            list[InquiryStatsGrouping],
            strawberry.argument(description="The keys to group by, in order; empty for one total."),
        ],
        since: Annotated[
            dt.datetime | None,
            strawberry.argument(
                description=(
                    "Count inquiries submitted from this moment on (inclusive); "
                    "null: from the first."
                )
            ),
        ] = None,
        until: Annotated[
            dt.datetime | None,
            strawberry.argument(
                description=(
                    "Count inquiries submitted before this moment (exclusive); null: to the last."
                )
            ),
        ] = None,
    ) -> list[InquiryStatsGroup]:
        groups = await stats.inquiry_stats(
            info.context.databases.gateway,
            info.context.principal,
            [stats.Grouping(grouping.value) for grouping in group_by],
            since=since,
            until=until,
            now=info.context.wall_clock(),
        )
        return [InquiryStatsGroup.from_domain(group) for group in groups]
