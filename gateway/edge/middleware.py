"""The middleware around the view, outermost first: request ids, security headers, internal
errors, (trusted proxies,) CORS, body size, authentication, rate limits.

- `RequestIds` (outermost) gives every request the gateway's own id, keeps the caller's
  X-Request-Id beside it when it is sane, and answers every response with the gateway's id.
- `InternalErrors` answers anything nothing else handled as a JSON INTERNAL error, so that no
  answer is plain text and no connection is dropped for it.

Each is pure ASGI and answers its refusals in the documented JSON shape
(gateway/edge/requests.py). The decisions live elsewhere: who is calling in
gateway/access/authentication.py, the caller's limits in gateway/guards/ratelimit.py.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Collection
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from gateway.access.addresses import limit_key
from gateway.access.authentication import (
    PUBLIC_PATHS,
    AuthenticationFailed,
    AuthenticationThrottled,
    AuthenticationUnavailable,
    Authenticator,
)
from gateway.access.principals import ANONYMOUS, Principal
from gateway.edge.requests import client_address, rate_limited, refusal, request_ids
from gateway.guards.ratelimit import RateLimits
from gateway.settings import Settings

log = logging.getLogger("gateway.edge")


class RequestIds:
    """Outermost: every request gets its ids first, every response (an error, a refusal,
    /healthz) carries the gateway's id in X-Request-Id, so its log lines can be found."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id, _ = request_ids(scope)

        async def send_with_id(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.http.response.start"):
                MutableHeaders(scope=message)["x-request-id"] = request_id
            await send(message)

        await self.app(scope, receive, send_with_id)


class InternalErrors:
    """Inside the security headers: an exception nothing else handled becomes a JSON INTERNAL
    error with the request id, logged once. Starlette's own handler would answer plain text
    outside every header, then re-raise, and the server would drop the connection."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watching_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watching_send)
        except Exception:
            request_id, _ = request_ids(scope)
            # No path or body: they are the caller's data, and the request id finds the rest.
            log.exception("unhandled error (request %s from %s)", request_id, client_address(scope))
            if started:
                raise  # half an answer went out: only closing the connection can end it
            response = refusal(500, "Internal error.", "INTERNAL", requestId=request_id)
            await response(scope, receive, send)


CONTENT_SECURITY_POLICY = (
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


class SecurityHeaders:
    """Adds security headers to every HTTP response; a response that brings its own
    Content-Security-Policy (the GraphiQL page, the inquiry pages) keeps it."""

    def __init__(self, app: ASGIApp, *, development: bool, graphql_path: str = "/graphql"):
        self.app = app
        self.development = development
        self.graphql_path = graphql_path
        self.common = [
            ("x-content-type-options", "nosniff"),
            ("referrer-policy", "no-referrer"),
            ("x-frame-options", "DENY"),
        ]
        if not development:
            self.common.append(("strict-transport-security", "max-age=31536000"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        graphql = scope["path"] == self.graphql_path

        async def send_with_headers(message: Message) -> None:
            # A WebSocket's handshake refused with an HTTP answer (401, 429) carries them too.
            if message["type"] in ("http.response.start", "websocket.http.response.start"):
                headers = MutableHeaders(scope=message)
                for name, value in self.common:
                    headers.setdefault(name, value)
                headers.setdefault("content-security-policy", CONTENT_SECURITY_POLICY)
                if graphql:  # unless the response cache says otherwise (gateway/edge/view.py)
                    headers.setdefault("cache-control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)


# Every header the README tells callers to send: the credential, JSON, the GraphQL-over-HTTP
# media type, the language, Open311's idempotency key, their own request id, the case
# (X-Road) and the cost report (tests/gateway/test_cors.py reads the README for them).
CLIENT_HEADERS = (
    "accept",
    "accept-language",
    "authorization",
    "content-type",
    "idempotency-key",
    "x-gateway-debug",
    "x-request-id",
    "x-road-issue",
)
# In development, a front-end dev server on this machine (any port) may call the gateway.
DEVELOPMENT_ORIGINS = r"http://(localhost|127\.0\.0\.1)(:[0-9]{1,5})?"


def development_origin(settings: Settings, origin: str) -> bool:
    """Whether `origin` is a local dev server's, allowed in development (WebSockets too)."""
    return settings.development and re.fullmatch(DEVELOPMENT_ORIGINS, origin) is not None


def cors_options(settings: Settings) -> dict[str, Any]:
    """Options for starlette's CORSMiddleware: bearer tokens, so no cookies are allowed."""
    return {
        "allow_origins": settings.cors_allowed_origins,
        "allow_origin_regex": DEVELOPMENT_ORIGINS if settings.development else None,
        "allow_methods": ["GET", "POST"],
        "allow_headers": list(CLIENT_HEADERS),
        "expose_headers": ["x-request-id", "retry-after"],
        "allow_credentials": False,
        "max_age": 600,
    }


class BodySizeLimit:
    """Refuses request bodies over the limit before anything reads them whole."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await _too_large(self.max_bytes)(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Any:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, counting_receive, send)
        except _BodyTooLarge:
            await _too_large(self.max_bytes)(scope, receive, send)


class _BodyTooLarge(Exception):
    pass


def _too_large(max_bytes: int) -> Response:
    return refusal(
        413, f"The request body exceeds {max_bytes} bytes.", "QUERY_TOO_COMPLEX", limit="body"
    )


class AuthenticationMiddleware:
    """Pure ASGI, before GraphQL: leaves `scope["principal"]`, or refuses the request."""

    def __init__(
        self,
        app: ASGIApp,
        authenticator: Authenticator,
        public_paths: Collection[str] = PUBLIC_PATHS,
        self_authenticating: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.authenticator = authenticator
        # Every other path is authenticated, so routes added later cannot forget to be.
        self.public_paths = frozenset(public_paths)
        # Path prefixes whose handlers authenticate with this authenticator themselves, to
        # answer in their own protocol's shape (Open311: a key in the form, a 403 in XML).
        self.self_authenticating = self_authenticating

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] not in ("http", "websocket")
            or scope["path"] in self.public_paths
            or scope["path"].startswith(self.self_authenticating)
        ):
            await self.app(scope, receive, send)
            return
        found = [value for name, value in scope["headers"] if name == b"authorization"]
        try:
            if len(found) > 1:
                raise AuthenticationFailed
            authorization = found[0].decode("latin-1") if found else None
            scope["principal"] = await self.authenticator.authenticate(
                authorization, client_address(scope)
            )
        except AuthenticationFailed:
            response = refusal(
                401,
                "Authentication failed.",
                "UNAUTHENTICATED",
                headers={"WWW-Authenticate": 'Bearer realm="gateway"'},
            )
        except AuthenticationThrottled as throttled:
            response = refusal(
                429,
                "Too many failed authentication attempts; retry later.",
                "RATE_LIMITED",
                headers={"Retry-After": str(throttled.retry_after)},
            )
        except AuthenticationUnavailable:
            request_id, _ = request_ids(scope)
            log.exception("authentication unavailable (request %s)", request_id)
            response = refusal(
                503, "Authentication is unavailable; try again.", "INTERNAL", requestId=request_id
            )
        else:
            await self.app(scope, receive, send)
            return
        await send_refusal(scope, receive, send, response)


class ChargedPath:
    """An address that counts against the caller's window: a path, or a template with
    `{name}` segments as routes write them (each matches one non-empty segment), optionally
    after a method ("POST /v"); without one, every method is charged. GET includes HEAD."""

    def __init__(self, spec: str) -> None:
        method, _, path = spec.rpartition(" ")
        methods = {method, "HEAD"} if method == "GET" else {method} if method else set()
        self.methods = frozenset(methods)
        parts = re.split(r"\{[A-Za-z_][A-Za-z0-9_]*\}", path)
        self.pattern = re.compile("[^/]+".join(re.escape(part) for part in parts) + r"\Z")

    def matches(self, method: str, path: str) -> bool:
        return (not self.methods or method in self.methods) and bool(self.pattern.match(path))


class RateLimit:
    """Pure ASGI; must run after authentication, which leaves `scope["principal"]`. Charges
    the requests to `paths` (ChargedPath specs: "/graphql", "GET /inquiries/{code}/letter"),
    a WebSocket's opening handshake (a GET) among them: each connection is one operation
    (its subscribes are charged again, gateway/edge/websocket.py), and a client address holds
    at most `websockets_per_address` open connections in a process, so that an idle
    connection, which costs nothing to keep open, cannot be multiplied until the process
    runs out of sockets."""

    def __init__(
        self,
        app: ASGIApp,
        limits: RateLimits,
        paths: Collection[str],
        websockets_per_address: int | None = None,
    ) -> None:
        self.app = app
        self.limits = limits
        self.paths = tuple(ChargedPath(spec) for spec in paths)
        self.websockets_per_address = websockets_per_address
        self.open_websockets: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        method = scope.get("method", "GET")  # a WebSocket opens with a GET
        if kind not in ("http", "websocket") or not any(
            charged.matches(method, scope["path"]) for charged in self.paths
        ):
            await self.app(scope, receive, send)
            return
        address = client_address(scope)
        if kind == "websocket":
            held = limit_key(address)  # an IPv6 caller counts under its /64
            most = self.websockets_per_address
            if most is not None and self.open_websockets[held] >= most:
                refused = refusal(
                    429,
                    f"This address holds {most} WebSocket connections, the most it may at once.",
                    "RATE_LIMITED",
                    limit="websocketsPerAddress",
                    max=most,
                )
                await send_refusal(scope, receive, send, refused)
                return
        principal: Principal = scope.get("principal", ANONYMOUS)
        retry_after = await self.limits.charge(principal, address)
        if retry_after is not None:
            await send_refusal(scope, receive, send, rate_limited(retry_after))
            return
        if kind == "http":
            await self.app(scope, receive, send)
            return
        self.open_websockets[held] += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.open_websockets[held] -= 1
            if self.open_websockets[held] <= 0:
                del self.open_websockets[held]


async def send_refusal(scope: Scope, receive: Receive, send: Send, response: Response) -> None:
    """Answers a refused request: over HTTP with `response`; a WebSocket's handshake with it
    where the server can send an HTTP answer to one, else by closing (the server answers
    403)."""
    if scope["type"] == "http":
        await response(scope, receive, send)
        return
    websocket = WebSocket(scope, receive, send)
    if "websocket.http.response" in scope.get("extensions", {}):
        await websocket.send_denial_response(response)
    else:
        await websocket.close(code=1008)  # policy violation
