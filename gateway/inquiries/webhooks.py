"""Partners' webhooks: where an operator points a partner's events, the deliveries an inquiry's
changes add, and the durable job that POSTs each one, signed, until the partner's server
takes it or the retries run out.

A delivery is added in the same transaction as the change it reports (`record_event`), so a
change is never reported that did not commit, nor committed without its delivery; the job
that sends it is started after the commit, by delivery id (`enqueue_delivery`), and a sweeper
restarts what a crash left unstarted (`deliveries_to_start`). Delivery is at least once: a
partner de-duplicates by the `X-Gateway-Delivery` header.

Signature (Stripe's scheme): `X-Gateway-Signature: t=<unix seconds>,v1=<hex>` where hex is
HMAC-SHA256, keyed with the webhook's secret (its UTF-8 bytes), of `<t>.` followed by the raw
body. A partner recomputes it over the body bytes exactly as received (before any JSON
parsing), compares in constant time, and refuses a `t` more than five minutes from its own
clock, so that a captured request cannot be replayed later (`verify_signature` is the
reference).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import ColumnElement, String, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.gateway import (
    InquiryRecord,
    PartnerWebhook,
    PrincipalRecord,
    WebhookAttempt,
    WebhookDelivery,
)
from gateway.access.audit_key import load_audit_key
from gateway.access.principals import Principal
from gateway.access.rows import RULES, sees_none
from gateway.clock import as_utc, naive_utc
from gateway.errors import BadUserInput, NotFound
from gateway.inquiries.runtime import WEBHOOK_TIMEOUT_S, JobRuntime
from gateway.jobs import JobContext, JobKinds, JobQueue, Payload, RetryPolicy
from gateway.paging import Page, Window, beyond, paged, windowed
from gateway.settings import Settings

INQUIRY_UPDATED = "inquiry.updated"  # the inquiry's status changed
INQUIRY_DECIDED = "inquiry.decided"  # it has its verdict and signed answer
EVENTS = frozenset({INQUIRY_UPDATED, INQUIRY_DECIDED})

WEBHOOK_JOB = "inquiry.webhook"
# Waits of 15-30 s, doubling up to an hour: the tenth attempt comes 1.5 to 3 hours after
# the first, so a partner's server may be down for a maintenance window without losing one.
WEBHOOK_RETRY = RetryPolicy(max_attempts=10, base_delay_s=30.0, multiplier=2.0, max_delay_s=3600.0)

SIGNATURE_TOLERANCE_S = 300  # what partners should allow between `t` and their clock
MAX_RESPONSE_BYTES = 65_536  # of a partner's answer read (only its status matters)


def _length(column: ColumnElement[Any]) -> int:
    """A text column's length: what is stored there is cut or refused to fit it."""
    assert isinstance(column.type, String)
    assert column.type.length is not None
    return column.type.length


_ERROR_CHARS = _length(WebhookAttempt.__table__.c.error)
_URL_CHARS = _length(PartnerWebhook.__table__.c.url)

# A partner as its inquiries name it (Principal.partner_code): a bank's three-digit code, or
# its kind and principal id (`notary:12`; a JWT client's is `notary:jwt:<subject>`).
_ORGANISATION = re.compile(
    r"(?P<bank>\d{3})|(?P<kind>notary|bank|counter):(?:(?P<id>[1-9]\d{0,9})|jwt:[\x21-\x7e]{1,150})"
)


class DeliveryFailed(Exception):
    """An attempt the partner's server did not take; the job engine retries it."""


@dataclass(frozen=True, slots=True)
class Webhook:
    """A partner's webhook as an operator sees it: never its secret."""

    id: int
    organisation: str
    url: str
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    attempted_at: dt.datetime
    status_code: int | None  # None when no answer came (error says why)
    error: str | None
    duration_ms: int


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event for a partner, and how its attempts went."""

    id: int
    delivery_id: str
    event: str
    tracking_code: str
    state: str  # pending | delivered | failed
    attempts: int
    created_at: dt.datetime
    delivered_at: dt.datetime | None
    attempt_log: tuple[DeliveryAttempt, ...]


# --- Configuration, by an operator ---------------------------------------------------------


def parse_organisation(text: str) -> str:
    """The partner a webhook serves, as its inquiries name it; BAD_USER_INPUT otherwise."""
    if _ORGANISATION.fullmatch(text) is None:
        raise BadUserInput(
            "An organisation is a bank's three-digit code or <notary|bank|counter>:<principal "
            "id>, as `gateway keys create` prints it.",
            field="organisation",
        )
    return text


def parse_webhook_url(text: str, *, production: bool) -> str:
    """An http(s) URL without credentials (a secret in a URL ends up in logs); https only in
    production, where the body and its signature must not cross the network in clear."""
    allowed = ("https",) if production else ("http", "https")
    try:
        url = httpx.URL(text.strip())
    except (httpx.InvalidURL, TypeError):
        url = None
    if url is None or url.scheme not in allowed or not url.host:
        raise BadUserInput(
            f"A webhook's URL must be {' or '.join(allowed)}, with a host.", field="url"
        )
    if url.userinfo:
        raise BadUserInput("A webhook's URL may not carry credentials.", field="url")
    if len(str(url)) > _URL_CHARS:
        raise BadUserInput(f"A webhook's URL has at most {_URL_CHARS} characters.", field="url")
    return str(url)


def new_secret() -> str:
    """32 random bytes, in a form a partner pastes into its configuration."""
    return "whsec_" + secrets.token_urlsafe(32)


# --- Secrets at rest ------------------------------------------------------------------------
# HMAC needs the secret itself, so it cannot be kept as a hash; it is kept sealed instead
# (AES-256-GCM), under a key derived from the audit key, which lives outside the database
# (GATEWAY_AUDIT_KEY, gateway/access/audit_key.py): a reader of the database alone cannot sign
# as the gateway. The organisation is the associated data, so a sealed secret copied onto
# another partner's row does not open. Changing the audit key means setting each webhook again.

_SEALED = "v1:"
_NONCE_BYTES = 12


class UnreadableSecret(Exception):
    """A stored webhook secret does not open with this key (the audit key changed since it
    was set: `gateway webhooks set` again), or was tampered with."""


def sealing_key(settings: Settings) -> bytes:
    """The key webhook secrets are sealed with, derived from the audit key."""
    return sealing_key_of(load_audit_key(settings))


def sealing_key_of(audit_key: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"gateway webhook secrets v1"
    ).derive(audit_key)


def seal(key: bytes, organisation: str, secret: str) -> str:
    nonce = secrets.token_bytes(_NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, secret.encode(), organisation.encode())
    return _SEALED + base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")


def unseal(key: bytes, organisation: str, stored: str) -> str:
    if not stored.startswith(_SEALED):
        raise UnreadableSecret("the webhook's secret is not sealed: set the webhook again")
    text = stored.removeprefix(_SEALED)
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        opened = AESGCM(key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], organisation.encode())
        return opened.decode()
    except (ValueError, InvalidTag) as exc:
        raise UnreadableSecret(
            "the webhook's secret does not open with this audit key: set the webhook again"
        ) from exc


async def set_webhook(
    session: AsyncSession,
    organisation: str,
    url: str,
    now: dt.datetime,
    *,
    production: bool,
    key: bytes,
) -> tuple[Webhook, str]:
    """Creates or replaces the organisation's webhook with a new secret; returns it with the
    secret, which is shown this once and stored sealed under `key` (sealing_key).
    Deliveries not yet delivered go to the new URL."""
    organisation = parse_organisation(organisation)
    url = parse_webhook_url(url, production=production)
    await _must_be_a_partner(session, organisation)
    secret = new_secret()
    found = await session.scalar(
        select(PartnerWebhook).where(PartnerWebhook.organisation == organisation)
    )
    if found is None:
        found = PartnerWebhook(organisation=organisation)
        session.add(found)
    found.url, found.created_at = url, naive_utc(now)
    found.secret = seal(key, organisation, secret)
    await session.flush()
    return _webhook(found), secret


async def _must_be_a_partner(session: AsyncSession, organisation: str) -> None:
    """A principal named by id must exist and be of the kind named: a typo would otherwise
    configure a webhook that never fires. Bank codes and JWT clients have no record here."""
    match = _ORGANISATION.fullmatch(organisation)
    assert match is not None
    if match["id"] is None:
        return
    kind = await session.scalar(
        select(PrincipalRecord.kind).where(PrincipalRecord.id == int(match["id"]))
    )
    if kind != match["kind"]:
        raise NotFound(f"No {match['kind']} has the principal id {match['id']}.")


async def list_webhooks(session: AsyncSession) -> list[Webhook]:
    found = await session.scalars(select(PartnerWebhook).order_by(PartnerWebhook.organisation))
    return [_webhook(row) for row in found]


async def remove_webhook(session: AsyncSession, organisation: str) -> Webhook:
    """Removes the organisation's webhook (NOT_FOUND if it has none). Its deliveries not yet
    delivered keep their retries, and fail unless a webhook is set again before the last."""
    found = await session.scalar(
        select(PartnerWebhook).where(PartnerWebhook.organisation == organisation)
    )
    if found is None:
        raise NotFound("This organisation has no webhook.")
    removed = _webhook(found)
    await session.delete(found)
    await session.flush()
    return removed


def _webhook(row: PartnerWebhook) -> Webhook:
    return Webhook(row.id, row.organisation, row.url, as_utc(row.created_at))


# --- Events --------------------------------------------------------------------------------


def new_delivery_id() -> str:
    """A delivery's id: random, not secret (the partner lists it, the receiver gets it in a
    header), so drawn apart from the secrets this module mints with token_urlsafe (the
    test suite's secret scan watches those draws). 22 characters, 128 random bits."""
    return "whd_" + base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=").decode()


async def record_event(
    session: AsyncSession, inquiry: InquiryRecord, event: str, now: dt.datetime
) -> list[str]:
    """In the caller's transaction: a pending delivery of `event` about `inquiry` (flushed,
    so that it has its id) when its organisation has a webhook; returns the delivery ids to
    start once the transaction commits (none without a webhook). The body carries nothing
    personal: no national ID, no parcel."""
    if event not in EVENTS:
        raise ValueError(f"not a webhook event: {event!r}")
    url = await session.scalar(
        select(PartnerWebhook.url).where(PartnerWebhook.organisation == inquiry.organisation)
    )
    if url is None:
        return []
    delivery_id = new_delivery_id()
    body = {
        "id": delivery_id,
        "event": event,
        "trackingCode": inquiry.tracking_code,
        "kind": inquiry.kind,
        "status": inquiry.status,
        "verdict": inquiry.verdict,
        "occurredAt": as_utc(now).isoformat(timespec="milliseconds"),
    }
    session.add(
        WebhookDelivery(
            delivery_id=delivery_id,
            organisation=inquiry.organisation,
            inquiry_id=inquiry.id,
            event=event,
            url=url,
            body=json.dumps(body, separators=(",", ":"), ensure_ascii=False),
            state="pending",
            attempts=0,
            created_at=naive_utc(now),
        )
    )
    return [delivery_id]


async def enqueue_delivery(queue: JobQueue, delivery_id: str) -> str:
    """Starts a delivery's job (after the commit that added it); idempotent by delivery id."""
    return await queue.enqueue(WEBHOOK_JOB, {"delivery": delivery_id}, idempotency_key=delivery_id)


async def deliveries_to_start(session: AsyncSession, older_than: dt.datetime) -> list[str]:
    """Deliveries still pending that were added before `older_than`: a process that died
    between a commit and its enqueue left them unstarted (enqueueing a started one again is
    harmless). Oldest first."""
    found = await session.scalars(
        select(WebhookDelivery.delivery_id)
        .where(WebhookDelivery.state == "pending")
        .where(WebhookDelivery.created_at < naive_utc(older_than))
        .order_by(WebhookDelivery.id)
    )
    return list(found)


# --- Signatures ----------------------------------------------------------------------------


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """The X-Gateway-Signature header's value for `body` sent at `timestamp`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify_signature(
    secret: str,
    body: bytes,
    header: str,
    now: dt.datetime,
    *,
    tolerance_s: int = SIGNATURE_TOLERANCE_S,
) -> bool:
    """What a partner does with a delivery: true when one `v1` in `header` is the body's
    HMAC under `secret` and its `t` is within `tolerance_s` of `now`."""
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1":
            candidates.append(value)
    if timestamp is None or abs(now.timestamp() - timestamp) > tolerance_s:
        return False
    expected = signature(secret, body, timestamp).rpartition("v1=")[2]
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)


# --- Delivery, as a durable job ------------------------------------------------------------


def register_webhook_jobs(
    kinds: JobKinds, runtime: JobRuntime, *, retry: RetryPolicy = WEBHOOK_RETRY
) -> None:
    """Registers `inquiry.webhook` (payload `{"delivery": <delivery id>}`).

    Each attempt is one recorded step: after a crash, the attempts already made are replayed
    from their record instead of being sent again (a crash during one sends it again: at
    least once). An attempt the partner did not take raises, so the engine retries it with
    backoff; the last one marks the delivery failed first, and its job ends dead, which an
    operator may retry (JobQueue.retry): a failed delivery is then attempted again."""

    async def deliver_job(job: JobContext, payload: Payload) -> None:
        delivery_id = str(payload["delivery"])
        final = job.attempt >= retry.max_attempts

        async def attempt() -> dict[str, str]:
            return await deliver(runtime, delivery_id, final=final)

        outcome = await job.step("deliver", attempt)
        if outcome["state"] in ("pending", "failed"):
            raise DeliveryFailed(f"delivery {delivery_id}: {outcome['outcome']}")

    kinds.register(WEBHOOK_JOB, deliver_job, retry=retry)


@dataclass(frozen=True, slots=True)
class _Pending:
    pk: int
    event: str
    body: str
    state: str
    url: str | None  # None: the organisation has no webhook any more
    secret: str | None


async def deliver(runtime: JobRuntime, delivery_id: str, *, final: bool) -> dict[str, str]:
    """One attempt at a delivery, recorded with its outcome in its own transaction; `final`
    (the job's last attempt) marks the delivery failed when this attempt fails. Returns the
    delivery's state (`missing` for an unknown id) and the outcome in words, as the job
    records them. A delivery already delivered is not sent again."""
    pending = await _load(runtime, delivery_id)
    if pending is None:
        return {"state": "missing", "outcome": "no such delivery"}
    if pending.state == "delivered":
        return {"state": "delivered", "outcome": "delivered already"}
    if pending.url is None or pending.secret is None:
        # Attempted like any other, so that a webhook set again within the retries still
        # receives it.
        missing = "the partner has no webhook"
        state = await _record(runtime, pending.pk, None, missing, 0, final=final)
        return {"state": state, "outcome": missing}
    moment = runtime.wall_clock()
    body = pending.body.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "municipal-gateway-webhooks",
        "X-Gateway-Delivery": delivery_id,
        "X-Gateway-Event": pending.event,
        "X-Gateway-Signature": signature(pending.secret, body, int(moment.timestamp())),
    }
    started = time.monotonic()
    status_code, error = await _post(runtime.webhooks, pending.url, body, headers)
    duration_ms = round((time.monotonic() - started) * 1000)
    state = await _record(
        runtime, pending.pk, status_code, error, duration_ms, final=final, url=pending.url
    )
    return {"state": state, "outcome": str(error) if status_code is None else f"HTTP {status_code}"}


async def _load(runtime: JobRuntime, delivery_id: str) -> _Pending | None:
    """The delivery with its organisation's webhook as it is now (a webhook set again since
    the event was recorded gets it at its new URL)."""
    statement = (
        select(
            WebhookDelivery.id,
            WebhookDelivery.event,
            WebhookDelivery.body,
            WebhookDelivery.state,
            WebhookDelivery.organisation,
            PartnerWebhook.url,
            PartnerWebhook.secret,
        )
        .outerjoin(PartnerWebhook, PartnerWebhook.organisation == WebhookDelivery.organisation)
        .where(WebhookDelivery.delivery_id == delivery_id)
    )
    async with runtime.databases.session("gateway") as session:
        row = (await session.execute(statement)).one_or_none()
    if row is None:
        return None
    secret = None
    if row.secret is not None:
        secret = unseal(sealing_key(runtime.settings), row.organisation, row.secret)
    return _Pending(row.id, row.event, row.body, row.state, row.url, secret)


async def _post(
    client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str]
) -> tuple[int | None, str | None]:
    """POSTs once: never following a redirect (the partner's URL is the one configured), and
    reading at most MAX_RESPONSE_BYTES of the answer within WEBHOOK_TIMEOUT_S in all."""
    try:
        async with asyncio.timeout(WEBHOOK_TIMEOUT_S):
            request = client.build_request("POST", url, content=body, headers=headers)
            response = await client.send(request, stream=True, follow_redirects=False)
            try:
                read = 0
                async for chunk in response.aiter_raw():
                    read += len(chunk)
                    if read >= MAX_RESPONSE_BYTES:
                        break
            finally:
                await response.aclose()
            return response.status_code, None
    except TimeoutError:
        return None, f"no answer within {WEBHOOK_TIMEOUT_S:g} s"
    except httpx.HTTPError as exc:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return None, text[:_ERROR_CHARS]


async def _record(
    runtime: JobRuntime,
    pk: int,
    status_code: int | None,
    error: str | None,
    duration_ms: int,
    *,
    final: bool,
    url: str | None = None,
) -> str:
    """Records one attempt and its consequence for the delivery; returns its new state. A
    delivery once delivered stays so, whatever a late duplicate attempt saw."""
    moment = naive_utc(runtime.wall_clock())
    delivered = status_code is not None and 200 <= status_code < 300
    state = "delivered" if delivered else "failed" if final else "pending"
    column = WebhookDelivery.state
    values: dict[str, Any] = {
        "attempts": WebhookDelivery.attempts + 1,
        "state": case((column == "delivered", column), else_=state),
    }
    if delivered:
        values["delivered_at"] = func.coalesce(WebhookDelivery.delivered_at, moment)
    if url is not None:
        values["url"] = url
    async with runtime.databases.session("gateway") as session, session.begin():
        session.add(
            WebhookAttempt(
                delivery_id=pk,
                attempted_at=moment,
                status_code=status_code,
                error=error,
                duration_ms=duration_ms,
            )
        )
        await session.execute(
            update(WebhookDelivery).where(WebhookDelivery.id == pk).values(values)
        )
        now_state = await session.scalar(select(column).where(WebhookDelivery.id == pk))
    return str(now_state)


# --- What a partner reads ------------------------------------------------------------------

_DELIVERIES = select(
    WebhookDelivery.id,
    WebhookDelivery.delivery_id,
    WebhookDelivery.event,
    WebhookDelivery.state,
    WebhookDelivery.attempts,
    WebhookDelivery.created_at,
    WebhookDelivery.delivered_at,
    InquiryRecord.tracking_code,
).join_from(WebhookDelivery, InquiryRecord, WebhookDelivery.inquiry_id == InquiryRecord.id)


async def count_deliveries(session: AsyncSession, principal: Principal) -> int:
    """How many deliveries `principal` may see (the WebhookDelivery rule)."""
    visible = RULES.condition(WebhookDelivery, principal)
    if sees_none(visible):
        return 0
    statement = select(func.count()).select_from(WebhookDelivery).where(visible)
    return int((await session.execute(statement)).scalar_one())


async def list_deliveries(
    session: AsyncSession, principal: Principal, window: Window
) -> Page[Delivery]:
    """A page of the deliveries `principal` may see (the WebhookDelivery rule: its
    organisation's, or all for operators), newest first, in `window`."""
    visible = RULES.condition(WebhookDelivery, principal)
    if sees_none(visible):
        return Page([], has_next=False, has_previous=False)
    statement = windowed(_DELIVERIES.where(visible), WebhookDelivery.id, window, descending=True)
    rows = (await session.execute(statement)).all()
    other_side = beyond(WebhookDelivery.id, [visible], window, descending=True)
    past = other_side is not None and bool((await session.execute(other_side)).scalar())
    found = paged(rows, window, beyond_cursor=past)
    page = found.items
    log: dict[int, list[DeliveryAttempt]] = {row.id: [] for row in page}
    if page:
        attempts = await session.execute(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(list(log)))
            .order_by(WebhookAttempt.id)
        )
        for attempt in attempts.scalars():
            log[attempt.delivery_id].append(
                DeliveryAttempt(
                    as_utc(attempt.attempted_at),
                    attempt.status_code,
                    attempt.error,
                    attempt.duration_ms,
                )
            )
    deliveries = [
        Delivery(
            id=row.id,
            delivery_id=row.delivery_id,
            event=row.event,
            tracking_code=row.tracking_code,
            state=row.state,
            attempts=row.attempts,
            created_at=as_utc(row.created_at),
            delivered_at=None if row.delivered_at is None else as_utc(row.delivered_at),
            attempt_log=tuple(log[row.id]),
        )
        for row in page
    ]
    return Page(deliveries, has_next=found.has_next, has_previous=found.has_previous)
