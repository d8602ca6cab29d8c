"""Partners' webhooks: configured by an operator on the CLI, a delivery added in the
transaction of the change it reports, POSTed signed to a real receiver on loopback, retried
by the real job engine until the partner takes it or the attempts run out, every attempt
recorded, and listed over GraphQL to its own partner only.

Database-level tests run on SQLite, and on PostgreSQL and MariaDB when their URLs are set;
the job engine runs on SQLite (tests/gateway/jobs covers it on PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import socket
import uuid
from collections.abc import AsyncIterator, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from click.testing import CliRunner, Result
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from db.engines import Databases
from db.gateway import (
    AuditRecord,
    InquiryRecord,
    PartnerWebhook,
    WebhookAttempt,
    WebhookDelivery,
)
from gateway.access.principals import PrincipalKind
from gateway.cli import main
from gateway.edge.app import create_app
from gateway.errors import BadUserInput, NotFound
from gateway.inquiries.runtime import JobRuntime
from gateway.inquiries.tracking import new_tracking_code
from gateway.inquiries.webhooks import (
    INQUIRY_DECIDED,
    INQUIRY_UPDATED,
    UnreadableSecret,
    deliver,
    deliveries_to_start,
    enqueue_delivery,
    parse_webhook_url,
    record_event,
    register_webhook_jobs,
    remove_webhook,
    seal,
    sealing_key_of,
    set_webhook,
    signature,
    unseal,
    verify_signature,
)
from gateway.jobs import JobEngine, JobKinds, JobQueue, JobsConfig, RetryPolicy
from tests.conftest import (
    AUDIT_KEY,
    SECRETS,
    Backend,
    GraphQLClient,
    cli_env,
    make_backend,
    mint_key,
    settings_for,
)
from tests.gateway.jobs.conftest import wait_until

NOW = dt.datetime(2026, 11, 30, 7, 12, 5, tzinfo=dt.UTC)
WEBHOOK_KEY = sealing_key_of(AUDIT_KEY.encode())  # what the tests' settings derive
APPLICANT = "0084575948"  # valid national IDs, which no body may carry
COUNTERPARTY = "0013542419"
# Three attempts, milliseconds apart: the engine's backoff without the waiting.
FAST_RETRY = RetryPolicy(max_attempts=3, base_delay_s=0.01, max_delay_s=0.02)


def fixed_clock() -> dt.datetime:
    return NOW


# --- A partner's server on loopback --------------------------------------------------------


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A partner's server: answers the statuses given, in order, then 200 to everything.
    A 3xx points elsewhere on the same server, which records whether anyone followed it."""

    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            body = await request.body()
            self.received.append(Received(request.url.path, dict(request.headers), body))
            status = self.statuses.pop(0) if self.statuses else 200
            location = {"Location": "/elsewhere"} if 300 <= status < 400 else {}
            return Response("noted", status_code=status, headers=location)

        return Starlette(routes=[Route("/{path:path}", hook, methods=["POST"])])


class _Server(uvicorn.Server):
    """uvicorn on the test's loop, telling the test when it listens."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.listening.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the test runner keeps its signals


@contextlib.asynccontextmanager
async def serve(receiver: Receiver) -> AsyncIterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    server = _Server(
        uvicorn.Config(receiver.app(), lifespan="off", log_config=None, access_log=False)
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        listening = asyncio.create_task(server.listening.wait())
        await asyncio.wait({task, listening}, return_when=asyncio.FIRST_COMPLETED)
        listening.cancel()
        assert not task.done(), task.result()  # a server that stopped says why
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    finally:
        server.should_exit = True
        await task
        sock.close()


@contextlib.contextmanager
def nobody_listening() -> Iterator[str]:
    """A loopback address whose port is held but not listening: every connection is refused
    (and no other test can start listening there meanwhile)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/hook"


# --- Databases and records -----------------------------------------------------------------


@pytest.fixture(scope="module", params=["sqlite", "postgres", "mariadb"])
async def webhook_backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Backend]:
    made, server = await make_backend(
        request.param, tmp_path_factory.mktemp(f"webhooks-{request.param}"), parcels=0
    )
    yield made
    if server is not None:
        await server.drop_all()


@pytest.fixture(scope="module")
async def databases(webhook_backend: Backend) -> AsyncIterator[Databases]:
    databases = Databases({"gateway": webhook_backend.urls["gateway"]})
    yield databases
    await databases.dispose()


@pytest.fixture
async def runtime(webhook_backend: Backend, tmp_path: Path) -> AsyncIterator[JobRuntime]:
    made = JobRuntime(settings_for(webhook_backend, data_dir=tmp_path), wall_clock=fixed_clock)
    yield made
    await made.close()


@dataclass(frozen=True)
class Partner:
    organisation: str  # as its inquiries name it
    key: str


async def new_notary(databases: Databases) -> Partner:
    info, key = await mint_key(databases, PrincipalKind.NOTARY, f"Notary {uuid.uuid4().hex[:8]}")
    return Partner(f"notary:{info.principal_id}", key)


async def new_partner(databases: Databases) -> str:
    """A notary with a key of its own, as its inquiries name it."""
    return (await new_notary(databases)).organisation


async def configure(databases: Databases, organisation: str, url: str) -> str:
    """Sets the organisation's webhook; returns its secret (kept out of every log)."""
    async with databases.session("gateway") as session, session.begin():
        _, secret = await set_webhook(
            session, organisation, url, NOW, production=False, key=WEBHOOK_KEY
        )
    SECRETS.add(secret)
    return secret


async def new_inquiry(databases: Databases, organisation: str, **changes: Any) -> InquiryRecord:
    fields: dict[str, Any] = {
        "tracking_code": new_tracking_code(),
        "kind": "PROPERTY_TRANSFER",
        "partner_kind": "notary",
        "partner_id": organisation.split(":", 1)[1],
        "organisation": organisation,
        "idempotency_key": uuid.uuid4().hex,
        "input_digest": "0" * 64,
        "parcel_id": 7,
        "region": 1,
        "renewal_code": "1-2-3-4",
        "registry_plate": "11-117/23",
        "applicant_national_code": APPLICANT,
        "counterparty_national_code": COUNTERPARTY,
        "status": "PENDING",
        "reasons": [],
        "submitted_at": NOW.replace(tzinfo=None),
    }
    fields.update(changes)
    async with databases.session("gateway") as session, session.begin():
        inquiry = InquiryRecord(**fields)
        session.add(inquiry)
    return inquiry


async def event(
    databases: Databases, inquiry: InquiryRecord, name: str = INQUIRY_UPDATED
) -> list[str]:
    async with databases.session("gateway") as session, session.begin():
        merged = await session.merge(inquiry)
        return await record_event(session, merged, name, NOW)


async def delivery_row(databases: Databases, delivery_id: str) -> WebhookDelivery:
    async with databases.session("gateway") as session:
        found = await session.scalar(
            select(WebhookDelivery).where(WebhookDelivery.delivery_id == delivery_id)
        )
    assert found is not None
    return found


async def attempt_rows(databases: Databases, delivery_id: str) -> list[WebhookAttempt]:
    row = await delivery_row(databases, delivery_id)
    async with databases.session("gateway") as session:
        found = await session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == row.id)
            .order_by(WebhookAttempt.id)
        )
        return list(found)


# --- Signatures ----------------------------------------------------------------------------


def test_a_signature_verifies_with_its_secret_and_time_only() -> None:
    body = b'{"id":"whd_x","event":"inquiry.decided"}'
    header = signature("whsec_right", body, int(NOW.timestamp()))
    assert verify_signature("whsec_right", body, header, NOW)
    assert verify_signature("whsec_right", body, header, NOW + dt.timedelta(minutes=5))
    assert not verify_signature("whsec_wrong", body, header, NOW)
    assert not verify_signature("whsec_right", body + b" ", header, NOW)
    # A request captured and replayed later is refused: five minutes' tolerance.
    assert not verify_signature("whsec_right", body, header, NOW + dt.timedelta(minutes=6))
    assert not verify_signature("whsec_right", body, header, NOW - dt.timedelta(minutes=6))
    assert not verify_signature("whsec_right", body, "v1=" + header.split("v1=")[1], NOW)


# --- Events --------------------------------------------------------------------------------


async def test_an_event_for_a_partner_without_a_webhook_adds_nothing(
    databases: Databases,
) -> None:
    inquiry = await new_inquiry(databases, await new_partner(databases))
    assert await event(databases, inquiry) == []
    async with databases.session("gateway") as session:
        found = await session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.inquiry_id == inquiry.id)
        )
        assert list(found) == []


async def test_an_event_adds_one_pending_delivery_whose_body_holds_nothing_personal(
    databases: Databases,
) -> None:
    organisation = await new_partner(databases)
    await configure(databases, organisation, "https://partner.example/hooks/gateway")
    inquiry = await new_inquiry(
        databases, organisation, status="DECIDED", verdict="NOT_CLEAR", reasons=[]
    )
    (delivery_id,) = await event(databases, inquiry, INQUIRY_DECIDED)

    row = await delivery_row(databases, delivery_id)
    assert (row.state, row.attempts, row.organisation) == ("pending", 0, organisation)
    assert row.url == "https://partner.example/hooks/gateway"
    assert delivery_id.startswith("whd_")
    assert len(delivery_id) == 26
    assert json.loads(row.body) == {
        "id": delivery_id,
        "event": "inquiry.decided",
        "trackingCode": inquiry.tracking_code,
        "kind": "PROPERTY_TRANSFER",
        "status": "DECIDED",
        "verdict": "NOT_CLEAR",
        "occurredAt": "2026-11-30T07:12:05.000+00:00",
    }
    assert APPLICANT not in row.body
    assert COUNTERPARTY not in row.body
    # A second event is a second delivery, with an id of its own.
    (second,) = await event(databases, inquiry, INQUIRY_DECIDED)
    assert second != delivery_id


async def test_deliveries_left_unstarted_are_found_for_the_sweeper(databases: Databases) -> None:
    organisation = await new_partner(databases)
    await configure(databases, organisation, "https://partner.example/hook")
    inquiry = await new_inquiry(databases, organisation)
    (delivery_id,) = await event(databases, inquiry)
    async with databases.session("gateway") as session:
        before = await deliveries_to_start(session, NOW)
        after = await deliveries_to_start(session, NOW + dt.timedelta(seconds=1))
    assert delivery_id not in before  # added at NOW: not older than NOW
    assert delivery_id in after


# --- Delivery, attempt by attempt ----------------------------------------------------------


async def test_a_receiver_failing_twice_gets_three_signed_attempts_then_it_is_delivered(
    databases: Databases, runtime: JobRuntime
) -> None:
    receiver = Receiver(statuses=[500, 307])  # a redirect is an answer, never followed
    organisation = await new_partner(databases)
    async with serve(receiver) as url:
        secret = await configure(databases, organisation, url)
        (delivery_id,) = await event(databases, await new_inquiry(databases, organisation))

        first = await deliver(runtime, delivery_id, final=False)
        second = await deliver(runtime, delivery_id, final=False)
        third = await deliver(runtime, delivery_id, final=False)
        again = await deliver(runtime, delivery_id, final=True)

    assert [first["state"], second["state"], third["state"]] == ["pending", "pending", "delivered"]
    assert [first["outcome"], second["outcome"], third["outcome"]] == [
        "HTTP 500",
        "HTTP 307",
        "HTTP 200",
    ]
    assert again == {"state": "delivered", "outcome": "delivered already"}
    assert [r.path for r in receiver.received] == ["/hook"] * 3  # nothing sent to /elsewhere

    row = await delivery_row(databases, delivery_id)
    assert (row.state, row.attempts) == ("delivered", 3)
    assert row.delivered_at == NOW.replace(tzinfo=None)
    attempts = await attempt_rows(databases, delivery_id)
    assert [a.status_code for a in attempts] == [500, 307, 200]
    assert all(a.error is None and a.duration_ms >= 0 for a in attempts)

    for received in receiver.received:
        headers = received.headers
        assert headers["content-type"] == "application/json"
        assert headers["x-gateway-delivery"] == delivery_id
        assert headers["x-gateway-event"] == "inquiry.updated"
        assert received.body == row.body.encode()
        assert headers["x-gateway-signature"].startswith(f"t={int(NOW.timestamp())},v1=")
        assert verify_signature(secret, received.body, headers["x-gateway-signature"], NOW)
        assert not verify_signature(
            "whsec_" + "A" * 43, received.body, headers["x-gateway-signature"], NOW
        )


async def test_a_receiver_that_is_down_ends_failed_at_the_last_attempt(
    databases: Databases, runtime: JobRuntime
) -> None:
    organisation = await new_partner(databases)
    with nobody_listening() as url:
        await configure(databases, organisation, url)
        (delivery_id,) = await event(databases, await new_inquiry(databases, organisation))
        early = await deliver(runtime, delivery_id, final=False)
        last = await deliver(runtime, delivery_id, final=True)
    assert early["state"] == "pending"
    assert last["state"] == "failed"
    assert "ConnectError" in last["outcome"]
    row = await delivery_row(databases, delivery_id)
    assert (row.state, row.attempts, row.delivered_at) == ("failed", 2, None)
    attempts = await attempt_rows(databases, delivery_id)
    assert [a.status_code for a in attempts] == [None, None]
    assert all(a.error is not None and "ConnectError" in a.error for a in attempts)


async def test_a_removed_webhook_fails_its_pending_deliveries_without_sending(
    databases: Databases, runtime: JobRuntime
) -> None:
    receiver = Receiver()
    organisation = await new_partner(databases)
    async with serve(receiver) as url:
        await configure(databases, organisation, url)
        (delivery_id,) = await event(databases, await new_inquiry(databases, organisation))
        async with databases.session("gateway") as session, session.begin():
            await remove_webhook(session, organisation)
        outcome = await deliver(runtime, delivery_id, final=True)
    assert outcome == {"state": "failed", "outcome": "the partner has no webhook"}
    assert receiver.received == []
    (attempt,) = await attempt_rows(databases, delivery_id)
    assert (attempt.status_code, attempt.error) == (None, "the partner has no webhook")


# --- Delivery through the real job engine --------------------------------------------------


@dataclass
class Engine:
    databases: Databases
    queue: JobQueue


@pytest.fixture(scope="module")
async def engine(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Engine]:
    """The job engine of this process, running `inquiry.webhook` with three fast attempts;
    its handlers run on the engine's own loop, the receivers on the test's."""
    tmp = tmp_path_factory.mktemp("webhook-jobs")
    backend, _ = await make_backend("sqlite", tmp / "databases", parcels=0)
    runtime = JobRuntime(settings_for(backend, data_dir=tmp / "data"), wall_clock=fixed_clock)
    kinds = JobKinds()
    register_webhook_jobs(kinds, runtime, retry=FAST_RETRY)
    config = JobsConfig(
        database_url=f"sqlite:///{tmp / 'jobs.sqlite3'}",
        polling_interval_s=0.05,
        heartbeat_interval_s=0.2,
        lease_s=1.5,
    )
    jobs = JobEngine(config, kinds)
    await asyncio.to_thread(jobs.start)
    queue = await JobQueue(config).open()
    databases = Databases({"gateway": backend.urls["gateway"]})
    try:
        yield Engine(databases, queue)
    finally:
        await databases.dispose()
        await queue.close()
        await runtime.close()
        await asyncio.to_thread(jobs.stop)


async def _state_is(engine: Engine, delivery_id: str, state: str) -> bool:
    return (await delivery_row(engine.databases, delivery_id)).state == state


async def _job_is(engine: Engine, job_id: str, state: str) -> bool:
    job = await engine.queue.get(job_id)
    return job is not None and job.state == state


async def test_the_job_engine_retries_a_delivery_until_the_partner_takes_it(
    engine: Engine,
) -> None:
    receiver = Receiver(statuses=[500, 500])
    databases = engine.databases
    organisation = await new_partner(databases)
    async with serve(receiver) as url:
        secret = await configure(databases, organisation, url)
        (delivery_id,) = await event(databases, await new_inquiry(databases, organisation))
        job_id = await enqueue_delivery(engine.queue, delivery_id)
        assert await enqueue_delivery(engine.queue, delivery_id) == job_id  # idempotent

        await wait_until(lambda: _job_is(engine, job_id, "done"), timeout_s=30, what="the job done")
    row = await delivery_row(databases, delivery_id)
    assert (row.state, row.attempts) == ("delivered", 3)
    attempts = await attempt_rows(databases, delivery_id)
    assert [a.status_code for a in attempts] == [500, 500, 200]
    assert len(receiver.received) == 3
    assert {r.headers["x-gateway-delivery"] for r in receiver.received} == {delivery_id}
    assert all(
        verify_signature(secret, r.body, r.headers["x-gateway-signature"], NOW)
        for r in receiver.received
    )


async def test_the_job_engine_gives_up_on_a_partner_that_is_down_and_the_delivery_fails(
    engine: Engine,
) -> None:
    databases = engine.databases
    organisation = await new_partner(databases)
    with nobody_listening() as url:
        await configure(databases, organisation, url)
        (delivery_id,) = await event(databases, await new_inquiry(databases, organisation))
        job_id = await enqueue_delivery(engine.queue, delivery_id)
        await wait_until(
            lambda: _job_is(engine, job_id, "dead"), timeout_s=30, what="the job given up"
        )
    assert await _state_is(engine, delivery_id, "failed")
    row = await delivery_row(databases, delivery_id)
    assert row.attempts == FAST_RETRY.max_attempts
    job = await engine.queue.get(job_id)
    assert job is not None
    assert job.attempts == FAST_RETRY.max_attempts
    assert job.last_error is not None
    assert job.last_error.startswith(f"DeliveryFailed: delivery {delivery_id}: ConnectError")

    # The partner's server moved: set again, an operator's retry delivers it there.
    receiver = Receiver()
    async with serve(receiver) as url:
        secret = await configure(databases, organisation, url)
        await engine.queue.retry(job_id)
        await wait_until(
            lambda: _job_is(engine, job_id, "done"), timeout_s=30, what="the retried job done"
        )
    row = await delivery_row(databases, delivery_id)
    assert (row.state, row.attempts, row.url) == ("delivered", 4, url)
    (received,) = receiver.received
    assert verify_signature(secret, received.body, received.headers["x-gateway-signature"], NOW)


# --- What a partner reads over GraphQL -----------------------------------------------------

DELIVERIES = """
query ($first: Int!, $after: String) {
  webhookDeliveries(first: $first, after: $after) {
    edges { cursor node { id event trackingCode state attempts createdAt deliveredAt
      attemptLog { attemptedAt statusCode error durationMs } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


async def test_a_partner_lists_its_own_deliveries_only(
    webhook_backend: Backend, databases: Databases, runtime: JobRuntime, tmp_path: Path
) -> None:
    me, them = await new_notary(databases), await new_notary(databases)
    mine, theirs = me.organisation, them.organisation
    _, operator = await mint_key(databases, PrincipalKind.OPERATOR, f"Ops {uuid.uuid4().hex[:8]}")
    _, department = await mint_key(
        databases, PrincipalKind.DEPARTMENT, f"Revenue {uuid.uuid4().hex[:8]}", "revenue"
    )

    receiver = Receiver(statuses=[503])
    async with serve(receiver) as url:
        await configure(databases, mine, url)
        await configure(databases, theirs, url)
        first_inquiry = await new_inquiry(databases, mine)
        (older,) = await event(databases, first_inquiry)
        (newer,) = await event(databases, first_inquiry, INQUIRY_DECIDED)
        (foreign,) = await event(databases, await new_inquiry(databases, theirs))
        await deliver(runtime, older, final=False)  # 503
        await deliver(runtime, older, final=False)  # 200

    app = create_app(settings_for(webhook_backend, data_dir=tmp_path), kinds=JobKinds())
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        client = GraphQLClient(http, me.key)
        page = await client(DELIVERIES, {"first": 10})
        assert "errors" not in page, page
        nodes = [edge["node"] for edge in page["data"]["webhookDeliveries"]["edges"]]
        assert [node["id"] for node in nodes] == [newer, older]  # newest first
        assert nodes[0]["attemptLog"] == []
        assert nodes[0]["state"] == "PENDING"
        assert nodes[1]["state"] == "DELIVERED"
        assert nodes[1]["trackingCode"] == first_inquiry.tracking_code
        assert nodes[1]["event"] == "inquiry.updated"
        assert nodes[1]["attempts"] == 2
        assert nodes[1]["createdAt"] == "2026-11-30T07:12:05+00:00"
        assert nodes[1]["deliveredAt"] == "2026-11-30T07:12:05+00:00"
        assert [a["statusCode"] for a in nodes[1]["attemptLog"]] == [503, 200]

        # One at a time, by cursor.
        one = (await client(DELIVERIES, {"first": 1}))["data"]["webhookDeliveries"]
        assert [edge["node"]["id"] for edge in one["edges"]] == [newer]
        assert one["pageInfo"]["hasNextPage"] is True
        rest = await client(DELIVERIES, {"first": 1, "after": one["pageInfo"]["endCursor"]})
        rest_page = rest["data"]["webhookDeliveries"]
        assert [edge["node"]["id"] for edge in rest_page["edges"]] == [older]
        assert rest_page["pageInfo"]["hasNextPage"] is False

        theirs_page = await client.as_key(them.key)(DELIVERIES, {"first": 10})
        edges = theirs_page["data"]["webhookDeliveries"]["edges"]
        assert [edge["node"]["id"] for edge in edges] == [foreign]

        everyone = await client.as_key(operator)(DELIVERIES, {"first": 100})
        seen = {edge["node"]["id"] for edge in everyone["data"]["webhookDeliveries"]["edges"]}
        assert {older, newer, foreign} <= seen

        for outsider in (department, None):
            empty = await client.as_key(outsider)(DELIVERIES, {"first": 10})
            assert empty["data"]["webhookDeliveries"]["edges"] == [], outsider

        refused = await client(DELIVERIES, {"first": 10, "after": "bm90LWEtY3Vyc29y"})
        assert refused["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert refused["errors"][0]["extensions"]["field"] == "after"


# --- The operator's command ----------------------------------------------------------------


async def _webhooks_cli(backend: Backend, *args: str, env: dict[str, str] | None = None) -> Result:
    result = await asyncio.to_thread(
        CliRunner().invoke, main, ["webhooks", *args], env={**cli_env(backend), **(env or {})}
    )
    if args[0] == "set" and result.exit_code == 0:  # the secret, alone on the last line
        SECRETS.add(result.output.strip().splitlines()[-1])
    return result


async def test_the_webhooks_command_sets_lists_replaces_and_removes_audited(
    webhook_backend: Backend, databases: Databases
) -> None:
    organisation = await new_partner(databases)
    created = await _webhooks_cli(
        webhook_backend, "set", "--organisation", organisation, "--url", "https://a.example/h"
    )
    assert created.exit_code == 0, created.output
    secret = created.output.strip().splitlines()[-1]
    assert secret.startswith("whsec_")
    assert len(secret) == len("whsec_") + 43  # 32 random bytes

    listed = await _webhooks_cli(webhook_backend, "list")
    assert listed.exit_code == 0, listed.output
    line = next(line for line in listed.output.splitlines() if line.startswith(organisation))
    assert line.endswith("https://a.example/h")
    assert "whsec_" not in listed.output

    replaced = await _webhooks_cli(
        webhook_backend, "set", "--organisation", organisation, "--url", "https://b.example/h"
    )
    assert replaced.exit_code == 0, replaced.output
    assert replaced.output.strip().splitlines()[-1] != secret  # a new secret
    listed = await _webhooks_cli(webhook_backend, "list")
    assert f"{organisation} " in listed.output
    assert "https://b.example/h" in listed.output
    assert "https://a.example/h" not in listed.output

    removed = await _webhooks_cli(webhook_backend, "remove", "--organisation", organisation)
    assert removed.exit_code == 0, removed.output
    assert f"{organisation} " not in (await _webhooks_cli(webhook_backend, "list")).output
    again = await _webhooks_cli(webhook_backend, "remove", "--organisation", organisation)
    assert again.exit_code == 1
    assert "no webhook" in again.output
    assert "Traceback" not in again.output

    async with databases.session("gateway") as session:
        operations = await session.scalars(
            select(AuditRecord.operation)
            .where(AuditRecord.subject_type == "PartnerWebhook")
            .where(AuditRecord.principal_kind == "operator")
            .order_by(AuditRecord.id.desc())
            .limit(3)
        )
        assert list(operations)[::-1] == ["webhooks.set", "webhooks.set", "webhooks.remove"]


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (("--url", "ftp://partner.example/h"), "--url"),
        (("--url", "https://user:pass@partner.example/h"), "--url"),
        (("--url", "not a url"), "--url"),
        (("--organisation", "Notary 12"), "--organisation"),
        (("--organisation", "operator:1"), "--organisation"),
    ],
)
async def test_the_webhooks_command_refuses_bad_urls_and_organisations(
    webhook_backend: Backend, databases: Databases, args: tuple[str, str], option: str
) -> None:
    given = {"--organisation": await new_partner(databases), "--url": "https://p.example/h"}
    given[args[0]] = args[1]
    result = await _webhooks_cli(
        webhook_backend, "set", *(x for pair in given.items() for x in pair)
    )
    assert result.exit_code == 2, result.output  # click's usage error, naming the option
    assert option in result.output
    assert "whsec_" not in result.output
    assert "user:pass" not in result.output  # a refused URL is not repeated


async def test_a_webhook_for_a_principal_that_does_not_exist_is_refused(
    databases: Databases,
) -> None:
    async with databases.session("gateway") as session:
        with pytest.raises(NotFound):
            await set_webhook(
                session,
                "notary:999999",
                "https://p.example",
                NOW,
                production=False,
                key=WEBHOOK_KEY,
            )
        with pytest.raises(BadUserInput):
            await set_webhook(
                session, "notary:", "https://p.example", NOW, production=False, key=WEBHOOK_KEY
            )


def test_production_takes_https_webhooks_only() -> None:
    assert parse_webhook_url("https://p.example/h", production=True) == "https://p.example/h"
    assert parse_webhook_url("http://p.example/h", production=False) == "http://p.example/h"
    with pytest.raises(BadUserInput) as raised:
        parse_webhook_url("http://p.example/h", production=True)
    assert raised.value.extensions["field"] == "url"


async def test_a_stored_secret_is_sealed_and_opens_only_for_its_partner_with_the_audit_key(
    databases: Databases,
) -> None:
    organisation = await new_partner(databases)
    secret = await configure(databases, organisation, "https://p.example/hook")
    async with databases.gateway.connect() as connection:
        stored = await connection.scalar(
            select(PartnerWebhook.secret).where(PartnerWebhook.organisation == organisation)
        )
    assert stored is not None
    assert secret not in stored
    assert secret.removeprefix("whsec_") not in stored
    assert unseal(WEBHOOK_KEY, organisation, stored) == secret
    # Copied onto another partner's row, or read with another key, it does not open.
    with pytest.raises(UnreadableSecret):
        unseal(WEBHOOK_KEY, "notary:1", stored)
    with pytest.raises(UnreadableSecret):
        unseal(sealing_key_of(b"another-audit-key-of-enough-length"), organisation, stored)
    with pytest.raises(UnreadableSecret):
        unseal(WEBHOOK_KEY, organisation, secret)  # a secret stored in clear is refused
    tampered = stored[:-2] + ("A" if stored[-2] != "A" else "B") + stored[-1]
    with pytest.raises(UnreadableSecret):
        unseal(WEBHOOK_KEY, organisation, tampered)
    # Sealing twice gives two different texts (a fresh nonce each time).
    assert seal(WEBHOOK_KEY, organisation, secret) != seal(WEBHOOK_KEY, organisation, secret)
