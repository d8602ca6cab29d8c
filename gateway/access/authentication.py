"""Who is calling: `Authorization: Bearer <API key or JWT>` becomes a Principal.

`Authenticator` decides, without HTTP; `AuthenticationMiddleware` (gateway/edge/middleware.py)
carries its answer over ASGI before GraphQL runs: the principal goes into `scope["principal"]`
(ANONYMOUS when no credential is sent), and a credential that is present but not valid is answered
401. The 401 never says why (unknown, wrong, revoked, expired) and never repeats the credential.

Verified credentials are cached in-process for `auth_cache_s` (10 s by default), so a key's
revocation takes effect within that time; a JWT is cached no longer than it is valid.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import jwt
from limits import parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from sqlalchemy import String
from sqlalchemy.exc import SQLAlchemyError

from db.engines import Databases
from db.gateway import AuditRecord
from gateway.access import keys
from gateway.access.addresses import limit_key
from gateway.access.principals import ANONYMOUS, Principal, PrincipalKind, scopes_for
from gateway.clock import WallClock, utc_now
from gateway.errors import BadUserInput
from gateway.settings import Settings
from gateway.shared import limits_storage

log = logging.getLogger("gateway.access.authentication")

# Asymmetric only: the gateway holds no issuer secret, and `none`/HS256 tricks cannot apply.
JWT_ALGORITHMS = ("RS256", "ES256")
JWT_REQUIRED_CLAIMS = ("exp", "iss", "aud", "sub")
MAX_TOKEN_LENGTH = 8192
PUBLIC_PATHS = frozenset({"/healthz", "/readyz"})
# A JWT principal's id is its subject under this prefix, and must fit the audit trail's
# principal_id column, as every id that reads personal data must.
JWT_PRINCIPAL_PREFIX = "jwt:"
_PRINCIPAL_ID_TYPE = AuditRecord.__table__.c.principal_id.type
assert isinstance(_PRINCIPAL_ID_TYPE, String)
assert _PRINCIPAL_ID_TYPE.length is not None
MAX_PRINCIPAL_ID: int = _PRINCIPAL_ID_TYPE.length


class AuthenticationFailed(Exception):
    """The credential is not valid. The reason is kept from the client on purpose."""


class AuthenticationUnavailable(Exception):
    """The credential could not be checked: its database or its issuer is unreachable."""


class _Cache:
    """Verified credentials by the SHA-256 of the token, each until its own deadline."""

    def __init__(
        self,
        ttl_s: float,
        max_size: int,
        clock: Callable[[], float],
        wall_clock: WallClock = utc_now,
    ) -> None:
        self.ttl_s = ttl_s
        self.max_size = max_size
        self.clock = clock
        self.wall_clock = wall_clock  # for credentials' expiry, a moment
        self._entries: OrderedDict[bytes, tuple[Principal, float]] = OrderedDict()

    def get(self, digest: bytes) -> Principal | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        principal, deadline = entry
        if self.clock() >= deadline:
            del self._entries[digest]
            return None
        return principal

    def put(self, digest: bytes, principal: Principal, valid_until: dt.datetime | None) -> None:
        ttl = self.ttl_s
        if valid_until is not None:
            ttl = min(ttl, (valid_until - self.wall_clock()).total_seconds())
        if ttl <= 0:
            return
        self._entries[digest] = (principal, self.clock() + ttl)
        self._entries.move_to_end(digest)
        while len(self._entries) > self.max_size:
            self._entries.popitem(last=False)  # the oldest entry goes first


class JwksKeys:
    """The issuer's signing keys, fetched from its JWKS URL and kept for `max_age_s`.

    A token naming an unknown key id (the issuer rotated its keys) fetches them again, but no
    more often than every `min_refresh_s`, so that invented key ids cannot hammer the issuer.
    A failed fetch keeps the keys held so far.
    """

    def __init__(
        self,
        url: str,
        *,
        max_age_s: float = 300,
        min_refresh_s: float = 30,
        timeout_s: float = 5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # PyJWKClient does the fetch: http(s) only, no redirects, a timeout. We cache.
        self._client = jwt.PyJWKClient(url, cache_jwk_set=False, timeout=timeout_s)
        self.max_age_s = max_age_s
        self.min_refresh_s = min_refresh_s
        self.clock = clock
        self.fetches = 0
        self._keys: dict[str, jwt.PyJWK] | None = None
        self._checked_at = float("-inf")  # the last attempt, successful or not
        self._lock = asyncio.Lock()

    async def get(self, kid: str) -> jwt.PyJWK | None:
        if self.clock() - self._checked_at >= self.max_age_s:
            await self._refresh(self.max_age_s)
        if self._keys is None:
            raise AuthenticationUnavailable("the issuer's keys could not be fetched")
        key = self._keys.get(kid)
        if key is None and self.clock() - self._checked_at >= self.min_refresh_s:
            await self._refresh(self.min_refresh_s)
            key = self._keys.get(kid)
        return key

    async def _refresh(self, older_than_s: float) -> None:
        async with self._lock:
            if self.clock() - self._checked_at < older_than_s:
                return  # another request refreshed them while this one waited
            self.fetches += 1
            try:
                # urllib blocks: fetch in a thread, off the event loop.
                data = await asyncio.to_thread(self._client.fetch_data)
                found = jwt.PyJWKSet.from_dict(data)
            except (jwt.PyJWTError, OSError, ValueError, TypeError, AttributeError):
                log.warning("could not fetch the JWT issuer's keys", exc_info=True)
                # Try again after min_refresh_s rather than on every request.
                self._checked_at = self.clock() - self.max_age_s + self.min_refresh_s
                return
            self._keys = {
                key.key_id: key
                for key in found
                if key.key_id is not None
                and key.algorithm_name in JWT_ALGORITHMS
                and key.public_key_use in (None, "sig")
            }
            self._checked_at = self.clock()


def principal_from_claims(claims: Mapping[str, Any]) -> Principal:
    """A verified token's claims → its principal. A token's `scope` narrows, never widens."""
    sub = claims.get("sub")
    kind_text = claims.get("gateway_kind")
    if not isinstance(sub, str) or not sub or not isinstance(kind_text, str):
        raise AuthenticationFailed
    if len(JWT_PRINCIPAL_PREFIX + sub) > MAX_PRINCIPAL_ID:
        # Its reads could never be written to the audit trail under its id, so it could read
        # no personal data at all; said once in the log, for the issuer's operators.
        log.warning("a JWT's sub is longer than %d characters: refused", MAX_PRINCIPAL_ID)
        raise AuthenticationFailed
    try:
        kind, department = keys.parse_kind(kind_text)
    except BadUserInput:
        raise AuthenticationFailed from None
    name = next(
        (
            value
            for value in (claims.get("name"), claims.get("client_id"), sub)
            if isinstance(value, str) and value
        ),
        sub,
    )
    scopes = scopes_for(kind, department)
    requested = claims.get("scope")
    if requested is not None:
        # OAuth 2 writes scopes space-separated; some issuers send a list.
        if isinstance(requested, str):
            scopes &= frozenset(requested.split())
        elif isinstance(requested, list) and all(isinstance(s, str) for s in requested):
            scopes &= frozenset(requested)
        else:
            raise AuthenticationFailed
    # A bank's bank code (its payment references start with it); other kinds carry none.
    organisation = claims.get("gateway_organisation")
    if organisation is not None and not isinstance(organisation, str):
        raise AuthenticationFailed
    try:
        organisation = keys.parse_organisation(kind, organisation)
    except BadUserInput:
        raise AuthenticationFailed from None
    return Principal(
        kind=kind,
        id=JWT_PRINCIPAL_PREFIX + sub,
        name=name,
        department=department,
        scopes=scopes,
        organisation=organisation,
    )


class JwtVerifier:
    """Verifies client-credentials JWTs from one issuer against its published keys."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.monotonic):
        if not (settings.jwt_issuer and settings.jwt_audience and settings.jwt_jwks_url):
            raise ValueError(
                "JWT authentication needs GATEWAY_JWT_ISSUER, GATEWAY_JWT_AUDIENCE "
                "and GATEWAY_JWT_JWKS_URL together"
            )
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self.leeway_s = settings.jwt_leeway_s
        self.keys = JwksKeys(
            settings.jwt_jwks_url,
            max_age_s=settings.jwt_jwks_cache_s,
            min_refresh_s=settings.jwt_jwks_min_refresh_s,
            clock=clock,
        )

    async def verify(self, token: str) -> tuple[Principal, dt.datetime]:
        """The token's principal and its expiry; AuthenticationFailed if not valid."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthenticationFailed from None
        kid = header.get("kid")
        # Refuse other algorithms before fetching anything for them.
        if header.get("alg") not in JWT_ALGORITHMS or not isinstance(kid, str):
            raise AuthenticationFailed
        key = await self.keys.get(kid)
        if key is None:
            raise AuthenticationFailed
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=list(JWT_ALGORITHMS),
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": list(JWT_REQUIRED_CLAIMS)},
            )
        except jwt.PyJWTError:
            raise AuthenticationFailed from None
        expires = dt.datetime.fromtimestamp(claims["exp"], dt.UTC)
        return principal_from_claims(claims), expires


class Authenticator:
    """Finds the principal behind an `Authorization` header: API key, JWT, or nobody."""

    def __init__(
        self,
        settings: Settings,
        databases: Databases,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: WallClock = utc_now,
    ) -> None:
        self.databases = databases
        self.wall_clock = wall_clock  # keys' expiry, the throttle's window (gateway/clock.py)
        self.jwt = JwtVerifier(settings, clock=clock) if settings.jwt_issuer else None
        self._cache = _Cache(settings.auth_cache_s, settings.auth_cache_size, clock, wall_clock)
        # Failed attempts per client address: past the limit, credentials the cache does not
        # already know are refused before they cost a database look-up or a JWKS fetch.
        # Counted in Redis, across every process, when it is configured (gateway/shared.py).
        self._failure_limit = parse(settings.auth_failures_per_ip)
        self._failures = MovingWindowRateLimiter(limits_storage(settings, "auth-failures"))
        self._warned_at = float("-inf")

    async def authenticate(
        self, authorization: str | None, client_ip: str | None = None
    ) -> Principal:
        """ANONYMOUS without a header; AuthenticationFailed for any credential not valid;
        AuthenticationThrottled while `client_ip` has failed too often."""
        if authorization is None:
            return ANONYMOUS
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        bearer = scheme.lower() == "bearer"
        digest = hashlib.sha256(token.encode()).digest()
        # The cache answers for Bearer credentials only, as verification does: a cached key
        # sent under another scheme (Basic) fails like any other malformed header.
        cached = self._cache.get(digest) if bearer else None
        if cached is not None:
            return cached
        if client_ip is not None:
            client_ip = limit_key(client_ip)  # an IPv6 caller counts under its /64
            await self._check_throttle(client_ip)
        try:
            if not bearer:
                raise AuthenticationFailed
            return await self._verify(token, digest)
        except AuthenticationFailed:
            if client_ip is not None:
                with contextlib.suppress(StorageError):  # Redis down: uncounted, as said
                    await self._failures.hit(self._failure_limit, "auth-failures", client_ip)
            raise

    async def _check_throttle(self, client_ip: str) -> None:
        """AuthenticationThrottled while `client_ip` is over its failures; when the shared
        counter (Redis) cannot be reached, attempts go through, verified as always."""
        try:
            if await self._failures.test(self._failure_limit, "auth-failures", client_ip):
                return
            stats = await self._failures.get_window_stats(
                self._failure_limit, "auth-failures", client_ip
            )
        except StorageError:
            if time.monotonic() - self._warned_at >= 60:  # once a minute, not once a request
                self._warned_at = time.monotonic()
                log.warning("the failed-authentication throttle is unavailable", exc_info=True)
            return
        now = self.wall_clock().timestamp()
        raise AuthenticationThrottled(max(1, math.ceil(stats.reset_time - now)))

    async def _verify(self, token: str, digest: bytes) -> Principal:
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise AuthenticationFailed
        valid_until: dt.datetime | None
        if token.startswith(f"{keys.KEY_MARK}_"):
            try:
                verified = await keys.check_key(self.databases, token, now=self.wall_clock())
            except SQLAlchemyError as exc:
                raise AuthenticationUnavailable("the gateway database is unreachable") from exc
            if verified is None:
                raise AuthenticationFailed
            principal, valid_until = verified.principal, verified.expires_at
        elif self.jwt is not None and token.count(".") == 2:
            principal, valid_until = await self.jwt.verify(token)
        else:
            raise AuthenticationFailed
        if principal.kind is PrincipalKind.PUBLIC:
            raise AuthenticationFailed
        self._cache.put(digest, principal, valid_until)
        return principal


class AuthenticationThrottled(Exception):
    """Too many failed attempts from one address; `retry_after` in seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after
