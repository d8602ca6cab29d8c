"""A partner's webhook deliveries: each event sent to its server and every attempt at it, so
that the partner sees what it missed and why (its server down, an error it answered)."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Self

import strawberry

from gateway.context import Info
from gateway.guards.cost import typical_size
from gateway.inquiries.webhooks import (
    WEBHOOK_RETRY,
    Delivery,
    DeliveryAttempt,
    count_deliveries,
    list_deliveries,
)
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

_CURSOR = "webhookDelivery"


@strawberry.enum(description="Where a webhook delivery stands.")
class WebhookDeliveryState(Enum):
    PENDING = strawberry.enum_value(
        "pending", description="Not delivered yet; retried with backoff."
    )
    DELIVERED = strawberry.enum_value("delivered", description="The partner's server answered 2xx.")
    FAILED = strawberry.enum_value(
        "failed", description="The retries ran out without a 2xx answer."
    )


@strawberry.type(description="One POST of a delivery to the partner's server.")
class WebhookAttempt:
    attempted_at: dt.datetime = strawberry.field(description="When the attempt was made (UTC).")
    status_code: int | None = strawberry.field(
        description="The HTTP status the partner's server answered; null when none came."
    )
    error: str | None = strawberry.field(description="Why no answer came (refused, timed out).")
    duration_ms: int = strawberry.field(
        description="How long the partner's server took to answer, in milliseconds."
    )

    @classmethod
    def from_domain(cls, attempt: DeliveryAttempt) -> Self:
        return cls(
            attempted_at=attempt.attempted_at,
            status_code=attempt.status_code,
            error=attempt.error,
            duration_ms=attempt.duration_ms,
        )


@strawberry.type(description="One event sent, or being sent, to a partner's webhook.")
class WebhookDelivery:
    id: strawberry.ID = strawberry.field(
        description="The delivery's id, as the X-Gateway-Delivery header and the body's id."
    )
    event: str = strawberry.field(description="inquiry.updated or inquiry.decided.")
    tracking_code: str = strawberry.field(
        description="The tracking code of the inquiry the event is about."
    )
    state: WebhookDeliveryState = strawberry.field(description="Where the delivery stands.")
    attempts: int = strawberry.field(description="How many times it was sent.")
    created_at: dt.datetime = strawberry.field(
        description="When the event happened and the delivery was queued (UTC)."
    )
    delivered_at: dt.datetime | None = strawberry.field(
        description="When the partner's server accepted it (UTC); null until then."
    )
    attempt_log: list[WebhookAttempt] = strawberry.field(
        description="Every attempt, oldest first.",
        metadata=typical_size(WEBHOOK_RETRY.max_attempts),
    )

    @classmethod
    def from_domain(cls, delivery: Delivery) -> Self:
        return cls(
            id=strawberry.ID(delivery.delivery_id),
            event=delivery.event,
            tracking_code=delivery.tracking_code,
            state=WebhookDeliveryState(delivery.state),
            attempts=delivery.attempts,
            created_at=delivery.created_at,
            delivered_at=delivery.delivered_at,
            attempt_log=[WebhookAttempt.from_domain(a) for a in delivery.attempt_log],
        )


@strawberry.type(description="A webhook delivery in a page, with its cursor (Relay).")
class WebhookDeliveryEdge:
    node: WebhookDelivery = strawberry.field(description="The delivery.")
    cursor: str = strawberry.field(description="Where the delivery stands in the list.")


@strawberry.type(description="A page of webhook deliveries (Relay connection), newest first.")
class WebhookDeliveryConnection:
    edges: list[WebhookDeliveryEdge] = strawberry.field(description="The page's deliveries.")
    page_info: PageInfo = strawberry.field(description="Where the page sits in the list.")

    @strawberry.field(description="How many deliveries the caller may see, on all pages.")
    async def total_count(self, info: Info) -> int:
        async with info.context.databases.session("gateway") as session:
            return await count_deliveries(session, info.context.principal)


@strawberry.type
class WebhooksQuery:
    @strawberry.field(
        description="Deliveries to the caller's webhook, newest first: a partner's own "
        "organisation's, every partner's for operators; empty for anyone else."
    )
    async def webhook_deliveries(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> WebhookDeliveryConnection:
        window = page_window(
            _CURSOR,
            first=first,
            after=after,
            last=last,
            before=before,
            cap=info.context.settings.max_page_size,
        )
        async with info.context.databases.session("gateway") as session:
            page = await list_deliveries(session, info.context.principal, window)
        edges = [
            WebhookDeliveryEdge(
                node=WebhookDelivery.from_domain(delivery),
                cursor=encode_cursor(_CURSOR, delivery.id),
            )
            for delivery in page.items
        ]
        return WebhookDeliveryConnection(
            edges=edges, page_info=page_info_of(page, [edge.cursor for edge in edges])
        )
