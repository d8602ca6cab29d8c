"""Subscriptions over WebSocket: graphql-transport-ws on /graphql, under the credentials,
limits and rate limits of the HTTP path.

- Credentials: `connection_init` carries `{"Authorization": "Bearer <API key or JWT>"}` in its
  payload (browsers cannot set headers on a WebSocket; an Authorization header on the upgrade
  works too), checked by the HTTP path's Authenticator with its cache and failed-attempt
  throttle. A credential that is not valid closes the socket with 4403 "Forbidden" before
  anything is acknowledged; an address that keeps failing, with 4429; an authentication
  outage, with 4500. Without a credential the connection is the anonymous public's, which may
  subscribe only to public events.
- Each subscribe counts as one operation against the caller's rate limit, and a connection
  and a principal (anonymous: a client address) hold at most so many subscriptions at once in
  a process; over either, the subscribe is answered with an `error` message, RATE_LIMITED.
- A subscription runs through the schema's extensions like any operation (trusted documents
  in production, depth, fields, cost), and its errors carry the documented codes. Only
  subscriptions: queries and mutations go over HTTP (BAD_REQUEST here). Personal data an
  event serves is written to the audit trail before the event is sent, as over HTTP.
- The credential is checked again at each subscribe and before each event is sent, so a
  connection whose key is revoked or expires is closed with 4403 within GATEWAY_AUTH_CACHE_S.
- The connection reads the client's next message only once a subscription listens: a `pong`
  to a `ping` sent after `subscribe` means the subscription is live.
- A message over GATEWAY_WEBSOCKET_MAX_MESSAGE_BYTES closes the socket with 1009.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections import Counter
from collections.abc import AsyncGenerator, Mapping
from json import JSONDecodeError
from typing import Any, Protocol, cast

from graphql import GraphQLError
from starlette.websockets import WebSocketDisconnect, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.exceptions import (
    NonJsonMessageReceived,
    NonTextMessageReceived,
    WebSocketDisconnected,
)
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    CompleteMessage,
    ConnectionInitMessage,
    SubscribeMessage,
)
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.utils.aio import aclosing

from connectors import correlation
from gateway.access.authentication import (
    AuthenticationFailed,
    AuthenticationThrottled,
    AuthenticationUnavailable,
    Authenticator,
)
from gateway.access.permissions import PersonalReads, operation_reads
from gateway.access.principals import Principal
from gateway.context import Context
from gateway.edge.errors import format_error
from gateway.edge.requests import client_address
from gateway.errors import AuditUnavailable, GatewayError
from gateway.events import CONFIRM_TIMEOUT_S, listening
from gateway.guards.ratelimit import RateLimits
from gateway.loaders import Loaders
from gateway.settings import Settings

log = logging.getLogger("gateway.edge.websocket")

# Close codes: graphql-transport-ws's own (4400 bad message, 4401 subscribe before the ack,
# 4408 no connection_init in time, 4409 an id in use, 4429 a second connection_init), and ours.
CLOSE_FORBIDDEN = 4403  # a credential that is not valid, at connection_init or since
CLOSE_THROTTLED = 4429  # too many failed authentications from this address
CLOSE_UNAVAILABLE = 4500  # the credential could not be checked
CLOSE_TOO_BIG = 1009  # a message over the size limit (RFC 6455)

LIVE_WAIT_S = CONFIRM_TIMEOUT_S + 1  # past Redis's own time to confirm a channel

WEBSOCKET_ONLY_SUBSCRIPTIONS = (
    "Only subscriptions are served over WebSocket; send queries and mutations over HTTP."
)


class Refused(Exception):
    """A subscribe that may not run: `error` is what the client is told."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error["message"])
        self.error = error


class SubscriptionGate:
    """One app's subscriptions: who the connection is, whether a subscribe may run (the rate
    limit, the caps), and the slots held (per principal, in this process)."""

    def __init__(
        self, settings: Settings, authenticator: Authenticator, rate_limits: RateLimits
    ) -> None:
        self.authenticator = authenticator
        self.rate_limits = rate_limits
        self.per_connection = settings.subscriptions_per_connection
        self.per_principal = settings.subscriptions_per_principal
        self.running: Counter[str] = Counter()

    async def authenticate(self, authorization: str, client_ip: str) -> Principal:
        return await self.authenticator.authenticate(authorization, client_ip)

    async def admit(self, principal: Principal, client_ip: str, on_connection: int) -> str:
        """Takes a slot for one subscription (released with `release`) and counts it against
        the rate limit; Refused when it may not run."""
        _, holder = self.rate_limits.window(principal, client_ip)
        if on_connection >= self.per_connection:
            raise Refused(_cap("This connection", self.per_connection, "Connection"))
        if self.running[holder] >= self.per_principal:
            raise Refused(_cap("This caller", self.per_principal, "Principal"))
        retry_after = await self.rate_limits.charge(principal, client_ip)
        if retry_after is not None:
            raise Refused(
                {
                    "message": f"Too many requests; try again in {retry_after} s.",
                    "extensions": {"code": "RATE_LIMITED", "retryAfter": retry_after},
                }
            )
        self.running[holder] += 1
        return holder

    def release(self, holder: str) -> None:
        self.running[holder] -= 1
        if self.running[holder] <= 0:
            del self.running[holder]


def _cap(who: str, most: int, per: str) -> dict[str, Any]:
    return {
        "message": f"{who} holds {most} subscriptions, the most it may at once.",
        "extensions": {"code": "RATE_LIMITED", "limit": f"subscriptionsPer{per}", "max": most},
    }


class SubscriptionView(Protocol):
    """What the connection needs of the GraphQL view (gateway/edge/view.py)."""

    settings: Settings
    subscriptions: SubscriptionGate

    async def audit_reads(self, context: Context, reads: PersonalReads) -> bool: ...


def websocket_error(error: GraphQLError, request_id: str) -> dict[str, Any]:
    """An error in a subscription's `error` or `next` message: the HTTP path's shape and codes."""
    original = error.original_error
    if isinstance(original, InvalidOperationTypeError):
        return {"message": WEBSOCKET_ONLY_SUBSCRIPTIONS, "extensions": {"code": "BAD_REQUEST"}}
    if isinstance(original, CannotGetOperationTypeError):
        return {"message": error.message, "extensions": {"code": "BAD_REQUEST"}}
    return format_error(error, request_id)


def _graphql_error(error: Exception) -> GraphQLError:
    return (
        error if isinstance(error, GraphQLError) else GraphQLError(str(error), original_error=error)
    )


class BoundedWebSocket(ASGIWebSocketAdapter):
    """strawberry's adapter, closing the socket on a message over the size limit (uvicorn
    also refuses frames over it, before they are assembled)."""

    async def iter_json(self, *, ignore_parsing_errors: bool = False) -> AsyncGenerator[object]:
        view: SubscriptionView = self.view  # type: ignore[assignment]
        limit = view.settings.websocket_max_message_bytes
        try:
            while self.ws.application_state != WebSocketState.DISCONNECTED:
                text = await self.ws.receive_text()
                if len(text) > limit or len(text.encode()) > limit:
                    await self.ws.close(CLOSE_TOO_BIG, f"Messages are limited to {limit} bytes")
                    return
                try:
                    yield self.view.decode_json(text)
                except JSONDecodeError as exc:
                    if not ignore_parsing_errors:
                        raise NonJsonMessageReceived from exc
        except KeyError as exc:  # a binary message
            raise NonTextMessageReceived from exc
        except WebSocketDisconnect:
            pass

    async def send_json(self, message: Mapping[str, object]) -> None:
        # graphql-transport-ws speaks in text frames: the view's JSON is bytes (orjson), which
        # strawberry would send as a binary frame, and browsers' graphql-ws (GraphiQL's) reads
        # one as a Blob and drops the connection ("Message is missing the 'type' property").
        encoded = self.view.encode_json(message)
        text = encoded.decode() if isinstance(encoded, bytes) else encoded
        try:
            await self.ws.send_text(text)
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc


class GatewayTransportWS(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws with the gateway's credentials, limits, codes and audit."""

    context: Context

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        view: SubscriptionView = self.view  # type: ignore[assignment]
        self.subscriptions = view.subscriptions
        self.audit_reads = view.audit_reads
        scope = self.context.request.scope
        self.client_ip = client_address(scope)
        self.request_id = self.context.request_id
        # The credential the connection stands on, checked again before every event.
        self.authorization: str | None = self.context.request.headers.get("authorization")
        self.closed = False

    async def close(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(RuntimeError):  # the client went away first
            await self.websocket.close(code=code, reason=reason)

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        payload = message.get("payload", {})
        if self.connection_init_received or not isinstance(payload, dict):
            await super().handle_connection_init(message)  # closes: 4429, 4400
            return
        authorization = payload.get("Authorization", payload.get("authorization"))
        if authorization is not None:
            if self.connection_init_timeout_task:
                self.connection_init_timeout_task.cancel()
            principal = await self._authenticate(authorization)
            if principal is None:
                return
            self.authorization = str(authorization)
            self._act_as(principal)
        await super().handle_connection_init(message)

    async def _authenticate(self, authorization: object) -> Principal | None:
        try:
            if not isinstance(authorization, str):
                raise AuthenticationFailed
            return await self.subscriptions.authenticate(authorization, self.client_ip)
        except AuthenticationFailed:
            await self.close(CLOSE_FORBIDDEN, "Forbidden")
        except AuthenticationThrottled:
            await self.close(CLOSE_THROTTLED, "Too many failed authentication attempts")
        except AuthenticationUnavailable:
            log.exception("authentication unavailable (request %s)", self.request_id)
            await self.close(CLOSE_UNAVAILABLE, "Authentication is unavailable")
        return None

    def _act_as(self, principal: Principal) -> None:
        context = self.context
        context.principal = principal
        context.loaders = Loaders(context.databases, context.agencies, principal)
        current = correlation.current.get(None)
        if current is not None:
            correlation.current.set(dataclasses.replace(current, user_id=principal.label))

    async def still_authenticated(self) -> bool:
        """Whether the connection's credential still names its principal; else it is closed."""
        if self.authorization is None:
            return True
        try:
            principal = await self.subscriptions.authenticate(self.authorization, self.client_ip)
        except AuthenticationUnavailable:
            return True  # an outage is not a revocation; nothing can be revoked meanwhile
        except (AuthenticationFailed, AuthenticationThrottled):
            principal = None
        if principal != self.context.principal:
            await self.close(CLOSE_FORBIDDEN, "Forbidden")
            return False
        return True

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        if not self.connection_acknowledged:
            await self.close(4401, "Unauthorized")
            return
        if message["id"] in self.operations:
            await self.close(4409, f"Subscriber for {message['id']} already exists")
            return
        payload: object = message["payload"]
        if not isinstance(payload, dict):
            await self.close(4400, "Invalid subscribe payload")
            return
        query, variables, name = (payload.get(k) for k in ("query", "variables", "operationName"))
        if not (
            isinstance(message["id"], str)
            and isinstance(query, str)
            and isinstance(variables, dict | None)
            and isinstance(name, str | None)
        ):
            await self.close(4400, "Invalid subscribe payload")
            return
        operation = Operation(self, message["id"], query, variables, name)
        if not await self.still_authenticated():
            return
        try:
            holder = await self.subscriptions.admit(
                self.context.principal, self.client_ip, len(self.operations)
            )
        except Refused as refused:
            await self.send_message(
                cast(Any, {"id": operation.id, "type": "error", "payload": [refused.error]})
            )
            return
        live = asyncio.Event()
        operation.task = asyncio.create_task(self._run(operation, live, holder))
        operation.task.add_done_callback(self._task_done)
        self.operations[operation.id] = operation
        # The next message is read once the subscription listens (gateway/events.py says
        # so), has sent something or has ended; a subscription that listens to nothing the
        # events module knows holds the connection no longer than LIVE_WAIT_S.
        waiting = asyncio.ensure_future(live.wait())
        try:
            await asyncio.wait(
                {waiting, operation.task},
                timeout=LIVE_WAIT_S,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            waiting.cancel()

    async def handle_complete(self, message: CompleteMessage) -> None:
        operation = self.operations.get(message["id"])
        await super().handle_complete(message)  # cancels it
        if operation is not None and operation.task is not None:
            # Its slot is free before the client's next message is read.
            await asyncio.wait({operation.task})

    async def _run(
        self, operation: Operation[Context, None], live: asyncio.Event, holder: str
    ) -> None:
        token = listening.set(live)
        try:
            stream = await self.schema.subscribe(
                operation.query,
                variable_values=operation.variables,
                context_value=self.context,
                root_value=self.root_value,
                operation_name=operation.operation_name,
            )
            async with aclosing(stream):
                first = True
                while True:
                    with operation_reads() as reads:
                        try:
                            result = await anext(stream)
                        except StopAsyncIteration:
                            break
                        except (GraphQLError, GatewayError) as exc:
                            if not first:
                                raise
                            # Refused before execution by an extension (the parser cache, the
                            # trusted documents, the cost): a request error, as over HTTP.
                            result = PreExecutionError(data=None, errors=[_graphql_error(exc)])
                    if first and isinstance(result, PreExecutionError):
                        errors = [websocket_error(e, self.request_id) for e in result.errors or []]
                        await operation.send_operation_message(
                            cast(Any, {"id": operation.id, "type": "error", "payload": errors})
                        )
                        return
                    first = False
                    live.set()
                    if not await self.still_authenticated():
                        return
                    payload = await self._payload(result, reads)
                    await operation.send_operation_message(
                        cast(Any, {"id": operation.id, "type": "next", "payload": payload})
                    )
            await operation.send_operation_message({"id": operation.id, "type": "complete"})
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("subscription failed (request %s)", self.request_id)
            with contextlib.suppress(Exception):
                await operation.send_operation_message({"id": operation.id, "type": "complete"})
        finally:
            listening.reset(token)
            self.subscriptions.release(holder)

    async def _payload(self, result: ExecutionResult, reads: PersonalReads) -> dict[str, Any]:
        errors = list(result.errors or [])
        data = result.data
        if reads and not await self.audit_reads(self.context, reads):
            # Personal data that cannot be accounted for is not served.
            data = None
            errors = [GraphQLError("Internal error.", original_error=AuditUnavailable())]
        payload: dict[str, Any] = {"data": data}
        if errors:
            payload["errors"] = [websocket_error(e, self.request_id) for e in errors]
        return payload
