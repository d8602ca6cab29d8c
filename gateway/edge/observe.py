"""The edge's part in operations: one log line, the metrics and a span for every HTTP
request (`Observe`), `/metrics` for operators, and the job queue's figures read now and then.

`Observe` sits right inside RequestIds, so that every request (401s, 429s, refusals, 500s)
passes it once and leaves exactly one line on `gateway.access`: method, route, status, error
codes, operation names and types, duration, request id, trace id, and the principal's kind
and id, never a credential, a variable or an answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.access.principals import ANONYMOUS, Principal, PrincipalKind
from gateway.clock import WallClock, utc_now
from gateway.edge.requests import refusal, request_ids
from gateway.jobs import JobQueue
from gateway.jobs.config import WORKFLOW_NAME
from gateway.observe import metrics, tracing
from gateway.observe.logs import fields
from gateway.observe.requests import Observation, current
from gateway.observe.tracing import RequestSpan

log = logging.getLogger("gateway.access")
jobs_log = logging.getLogger("gateway.jobs")

CLIENT_CLOSED = 499  # no answer was started: the caller went away first


class Observe:
    """Pure ASGI: an Observation, a span and, once answered, the line and the metrics."""

    def __init__(self, app: ASGIApp, routes: Iterable[BaseRoute]) -> None:
        self.app = app
        # Routes and mounts by their templates (a WebSocket route shares its path).
        self.routes = [route for route in routes if isinstance(route, Route | Mount)]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await self._websocket(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id, _ = request_ids(scope)
        # The span's name only when there is a span (tracing on): off, its route is not sought.
        name = f"{scope['method']} {self._route(scope)}" if tracing.enabled() else ""
        span = RequestSpan(scope["headers"], name)
        observation = Observation(request_id, span.trace_id)
        token = current.set(observation)
        status: int | None = None

        async def watching_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watching_send)
        except BaseException:
            status = status or 500
            raise
        finally:
            seconds = time.perf_counter() - started
            answered = status if status is not None else CLIENT_CLOSED
            span.end(answered)
            current.reset(token)
            self._record(scope, observation, answered, seconds)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A WebSocket connection: its ids and trace for what it logs and calls, and one line
        when it ends (101 when it was accepted, else the refusal's status; its close code)."""
        started = time.perf_counter()
        request_id, _ = request_ids(scope)
        name = f"WEBSOCKET {self._route(scope)}" if tracing.enabled() else ""
        span = RequestSpan(scope["headers"], name)
        observation = Observation(request_id, span.trace_id)
        token = current.set(observation)
        status: int | None = None
        close_code: int | None = None

        async def watching_send(message: Message) -> None:
            nonlocal status, close_code
            kind = message["type"]
            if kind == "websocket.accept":
                status = 101
            elif kind == "websocket.http.response.start":
                status = message["status"]
            elif kind == "websocket.close":
                close_code = message.get("code", 1000)
                status = status or 403  # closed before it was accepted: the server answers 403
            await send(message)

        try:
            await self.app(scope, receive, watching_send)
        finally:
            span.end(None)
            current.reset(token)
            seconds = time.perf_counter() - started
            answered = status if status is not None else CLIENT_CLOSED
            self._record(scope, observation, answered, seconds, close_code=close_code)

    def _route(self, scope: Scope) -> str:
        """The route's template (never a tracking code in a path), or `other`."""
        route = scope.get("route")
        if isinstance(route, Route | Mount):
            return route.path or "/"
        path = scope["path"]
        for candidate in self.routes:
            if candidate.path_regex.match(path):
                return candidate.path
        return "other"

    def _record(
        self,
        scope: Scope,
        observation: Observation,
        status: int,
        seconds: float,
        *,
        close_code: int | None = None,
    ) -> None:
        method = scope.get("method") or "WEBSOCKET"
        principal: Principal | None = scope.get("principal")
        if principal is not None:
            caller, caller_id = principal.kind.value, principal.id
        elif any(name == b"authorization" for name, _ in scope["headers"]):
            caller, caller_id = "unauthenticated", None  # a credential refused or not checked
        else:
            caller, caller_id = ANONYMOUS.kind.value, ANONYMOUS.id
        route = self._route(scope)
        operations = observation.operation_name
        extra = {} if close_code is None else {"close_code": close_code}
        try:
            # A WebSocket is a connection, not a request: its subscriptions are not timed here.
            if method != "WEBSOCKET":
                metrics.observe_request(
                    route,
                    operations or "-",
                    observation.outcome,
                    seconds,
                    observation.limits,
                    status,
                    caller,
                )
        except Exception:  # the answer has gone: metrics must never fail a request
            log.exception("metrics failed")
        level = logging.ERROR if status >= 500 else logging.INFO
        if not log.isEnabledFor(level):
            return  # below GATEWAY_LOG_LEVEL: not even the line's fields are gathered
        log.log(
            level,
            "%s %s %d",
            method,
            route,
            status,
            extra=fields(
                request_id=observation.request_id,
                trace_id=observation.trace_id,
                method=method,
                path=route,
                status=status,
                codes=observation.codes,
                operation_name=operations,
                operation_type=observation.operation_type,
                duration_ms=round(seconds * 1000, 2),
                principal_kind=caller,
                principal_id=caller_id,
                client=_peer(scope),
                **extra,
            ),
        )


def _peer(scope: Scope) -> str | None:
    """The client's address as the server (or a trusted proxy's header) gave it: for the log
    line only, where requests.client_address's canonical spelling is not worth its cost."""
    client = scope.get("client")
    return str(client[0]) if client else None


async def metrics_endpoint(request: Request) -> Response:
    """`/metrics` on the gateway's port: operators only (their key); the public is refused,
    and so is every other kind of caller. GATEWAY_METRICS_PORT serves it without a key."""
    principal: Principal = request.scope.get("principal", ANONYMOUS)
    if principal.kind is PrincipalKind.PUBLIC:
        return refusal(
            401,
            "Authentication failed.",
            "UNAUTHENTICATED",
            headers={"WWW-Authenticate": 'Bearer realm="gateway"'},
        )
    if principal.kind is not PrincipalKind.OPERATOR:
        return refusal(403, "Metrics are for operators.", "FORBIDDEN", scope="operator")
    body = await asyncio.to_thread(metrics.render)
    return Response(body, media_type=metrics.CONTENT_TYPE)


JOB_STATES = {"ENQUEUED": "queued", "DELAYED": "scheduled", "PENDING": "running"}


async def read_jobs(queue: JobQueue, kinds: Iterable[str], now: float) -> None:
    """One reading of the queue into the job gauges: how many jobs wait in each state, and
    how long the oldest due one has waited (queued since it was enqueued, or waiting past
    its next attempt's time)."""
    found = await queue.client.list_workflows_async(
        name=WORKFLOW_NAME, status=list(JOB_STATES), load_input=False, load_output=False
    )
    counts: dict[tuple[str, str], int] = {}
    oldest: dict[str, float] = {}
    for status in found:
        kind = status.workflow_id.split(":", 1)[0]
        state = JOB_STATES[status.status]
        counts[kind, state] = counts.get((kind, state), 0) + 1
        attributes: dict[str, Any] = status.attributes or {}
        due_since: float | None = None
        if state == "queued" and status.created_at:
            due_since = status.created_at / 1000
        elif state == "running" and attributes.get("next_attempt_at") is not None:
            due_since = float(attributes["next_attempt_at"])
        if due_since is not None and due_since <= now:
            oldest[kind] = max(oldest.get(kind, 0.0), now - due_since)
    metrics.observe_jobs(counts, oldest, {*kinds, *(kind for kind, _ in counts)})


@contextlib.asynccontextmanager
async def reading_jobs(
    queue: JobQueue | None,
    kinds: Iterable[str],
    every_s: float = 15.0,
    wall_clock: WallClock = utc_now,
) -> AsyncIterator[None]:
    """Reads the job queue into the metrics every `every_s` while the app runs; how long a
    job has waited is measured to `wall_clock`'s now."""
    if queue is None:
        yield
        return
    names = list(kinds)

    async def read_forever() -> None:
        while True:
            try:
                await read_jobs(queue, names, wall_clock().timestamp())
            except Exception:
                jobs_log.warning("jobs: could not read the queue for the metrics", exc_info=True)
            await asyncio.sleep(every_s)

    task = asyncio.create_task(read_forever())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
