"""A partner's webhook deliveries: each event sent to its server and every attempt at it, so
that the partner sees what it missed and why (its server down, an error it answered)."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Self

import strawberry

from gateway.context import Info
from gateway.errors import BadUserInput
from gateway.guards.cost import typical_size
from gateway.inquiries.webhooks import WEBHOOK_RETRY, Delivery, DeliveryAttempt, list_deliveries
from gateway.schema.pages import PageInfo, decode_cursor, encode_cursor, page_info

_CURSOR = "webhookDelivery"


@strawberry.enum
class WebhookDeliveryState(Enum):
    PENDING = "pending"  # not taken yet; retried with backoff
    DELIVERED = "delivered"  # the partner's server answered 2xx
    FAILED = "failed"  # no attempt was taken, and the retries ran out


@strawberry.type(description="One POST of a delivery to the partner's server.")
class WebhookAttempt:
    attempted_at: dt.datetime
    status_code: int | None = strawberry.field(
        description="The HTTP status the partner's server answered; null when none came."
    )
    error: str | None = strawberry.field(description="Why no answer came (refused, timed out).")
    duration_ms: int

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
    tracking_code: str
    state: WebhookDeliveryState
    attempts: int
    created_at: dt.datetime
    delivered_at: dt.datetime | None
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


@strawberry.type
class WebhookDeliveryEdge:
    node: WebhookDelivery
    cursor: str


@strawberry.type
class WebhookDeliveryConnection:
    edges: list[WebhookDeliveryEdge]
    page_info: PageInfo


@strawberry.type
class WebhooksQuery:
    @strawberry.field(
        description="Deliveries to the caller's webhook, newest first: a partner's own "
        "organisation's, every partner's for operators; empty for anyone else."
    )
    async def webhook_deliveries(
        self, info: Info, first: int = 20, after: str | None = None
    ) -> WebhookDeliveryConnection:
        cap = info.context.settings.max_page_size
        if not 1 <= first <= cap:
            raise BadUserInput(f"first must be between 1 and {cap}.", field="first")
        after_id = decode_cursor(_CURSOR, after)
        async with info.context.databases.session("gateway") as session:
            found, has_next = await list_deliveries(
                session, info.context.principal, first=first, after_id=after_id
            )
        edges = [
            WebhookDeliveryEdge(
                node=WebhookDelivery.from_domain(delivery),
                cursor=encode_cursor(_CURSOR, delivery.id),
            )
            for delivery in found
        ]
        return WebhookDeliveryConnection(
            edges=edges, page_info=page_info(has_next, after, [edge.cursor for edge in edges])
        )
