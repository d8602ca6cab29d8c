"""The inquiry workflow: a partner submits once; every check a machine can answer runs at once,
concurrently: first in the process that accepted the submission, right after its commit, with
a durable job (one an inquiry) as the backstop that finds the work done or finishes it; the
checks that need a person wait in their department's queue; when every check has an outcome
the inquiry is decided and its answer signed.

Exactly once, across crashes and N processes, without a distributed lock: every change is one
transaction on the gateway's database that locks the inquiry's row first (SELECT … FOR UPDATE;
BEGIN IMMEDIATE on SQLite) and changes a check only from the state it expects. A job replayed
after a crash, or run twice by two processes after a takeover, finds the check done and
records nothing; the inquiry is decided by whichever transaction records its last outcome,
once. The job is queued after the transaction that accepts the work commits; a process killed
in between leaves work that `sweep` (run periodically by every process that runs jobs) queues
again, by the same idempotency key, so nothing accepted is lost.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.agencies import Agencies
from connectors.errors import AgencyError
from db.engines import Databases, begin_write, write_turn
from db.gateway import InquiryCheckRecord, InquiryRecord
from gateway.access.principals import Principal, PrincipalKind
from gateway.clock import WallClock
from gateway.errors import BadUserInput, Conflict, Forbidden, NotFound
from gateway.events import Events, Topic
from gateway.inquiries import answers, webhooks
from gateway.inquiries.answering import build_answer, sign_answer
from gateway.inquiries.checks import (
    CHECKS,
    AutomaticCheck,
    CheckOutcome,
    ManualCheck,
    facts_needed,
)
from gateway.inquiries.config import InquirySettings
from gateway.inquiries.facts import Outcome
from gateway.inquiries.reading import find_parcel, read_facts
from gateway.inquiries.records import (
    CHECK_DONE,
    CHECK_PENDING,
    CHECK_QUEUED,
    DECIDED,
    PENDING,
    WAITING_FOR_DEPARTMENT,
    Inquiry,
    InquiryCheck,
    naive,
    stored,
)
from gateway.inquiries.runtime import JobRuntime
from gateway.inquiries.tracking import new_tracking_code
from gateway.jobs import JobContext, JobKinds, JobQueue, Payload, RetryPolicy
from gateway.jobs.queue import job_id
from identifiers import RegistryPlate

log = logging.getLogger("gateway.inquiries")

CHECKS_JOB = "inquiry.checks"  # one job an inquiry, keyed by its id: its pending checks
CHECK_JOB = "inquiry.check"  # one job a check, as queued by earlier versions
# A submission's checks first run at once in the process that accepted it; their durable
# job starts this much later, to find them done or finish them.
BACKSTOP_S = 10.0
# An agency down for hours must not end a check: retries back off to every 5 minutes, for
# about a day; an operator can retry a dead job (gateway jobs retry).
CHECK_RETRY = RetryPolicy(max_attempts=300, base_delay_s=1.0, multiplier=2.0, max_delay_s=300.0)
MAX_IDEMPOTENCY_KEY = 200
# Work accepted this long ago whose job has not started is queued again by `sweep`.
SWEEP_AFTER = dt.timedelta(seconds=30)

# The process's job queue, once its lifespan has opened it (None: no jobs run here).
QueueOf = Callable[[], "JobQueue | None"]


@dataclass(frozen=True)
class InquiryChanged:
    """An inquiry's status changed (subscribers read the rest through the row rules)."""

    tracking_code: str
    status: str


INQUIRY_UPDATED: Topic[InquiryChanged] = Topic("inquiry-updated", InquiryChanged)


def _turn_to_write(databases: Databases) -> contextlib.AbstractAsyncContextManager[None]:
    """This process's turn to write to the gateway's database (db.engines.write_turn)."""
    return write_turn(databases.gateway)


# --- Submitting ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Submission:
    kind: str
    renewal_code: str | None
    registry_plate: RegistryPlate | None
    applicant_national_code: str
    counterparty_national_code: str | None
    idempotency_key: str

    def digest(self) -> str:
        """What "the same input" means for an idempotency key: every field but the key."""
        canonical = json.dumps(
            [
                self.kind,
                self.renewal_code,
                None if self.registry_plate is None else str(self.registry_plate),
                self.applicant_national_code,
                self.counterparty_national_code,
            ],
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


def _check_submission(
    submission: Submission, config: InquirySettings, principal: Principal
) -> None:
    kind = config.kinds.get(submission.kind)
    if kind is None:
        raise BadUserInput("Unknown inquiry kind.", field="kind")
    if not kind.may_ask(principal.kind) or principal.partner_code is None:
        raise Forbidden(
            f"A {principal.kind.value} may not ask a {submission.kind} inquiry.",
            scope=f"inquiries:ask:{submission.kind}",
        )
    if (submission.renewal_code is None) == (submission.registry_plate is None):
        raise BadUserInput(
            "Name the property by exactly one of renewalCode and registryPlate.",
            field="renewalCode",
        )
    key = submission.idempotency_key
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY or not key.isprintable() or key != key.strip():
        raise BadUserInput(
            f"An idempotency key is 1 to {MAX_IDEMPOTENCY_KEY} printable characters.",
            field="idempotencyKey",
        )
    if submission.counterparty_national_code == submission.applicant_national_code:
        raise BadUserInput(
            "The counterparty is another person than the applicant.",
            field="counterpartyNationalCode",
        )


async def _existing(
    session: AsyncSession, principal: Principal, submission: Submission
) -> InquiryRecord | None:
    found = await session.scalar(
        select(InquiryRecord).where(
            InquiryRecord.partner_id == principal.id,
            InquiryRecord.idempotency_key == submission.idempotency_key,
        )
    )
    if found is not None and found.input_digest != submission.digest():
        raise Conflict(
            "This idempotency key was used for another inquiry with a different input.",
            field="idempotencyKey",
            trackingCode=found.tracking_code,
        )
    return found


async def submit(
    databases: Databases,
    config: InquirySettings,
    principal: Principal,
    submission: Submission,
    now: WallClock,
) -> tuple[Inquiry, bool]:
    """The inquiry (a domain record), committed before this returns, and whether this call
    created it; see _submit."""
    record, created = await _submit(databases, config, principal, submission, now)
    return Inquiry.from_row(record), created


async def _submit(
    databases: Databases,
    config: InquirySettings,
    principal: Principal,
    submission: Submission,
    now: WallClock,
) -> tuple[InquiryRecord, bool]:
    """The inquiry, committed before this returns, and whether this call created it (False:
    the same key from the same partner named it already). Refused, with nothing stored: an
    unknown kind or one this partner may not ask, a property named twice or not at all, a
    parcel that does not exist, a key reused with another input (CONFLICT)."""
    _check_submission(submission, config, principal)
    # A key used before is found by the insert's unique constraint (below), not by a read
    # ahead of every submission: a repeat is rare, a new submission is not.
    parcel = await find_parcel(
        databases, renewal_code=submission.renewal_code, plate=submission.registry_plate
    )
    if parcel is None:
        async with databases.session("gateway") as session:
            found = await _existing(session, principal, submission)
        if found is not None:
            return found, False
        field = "renewalCode" if submission.renewal_code is not None else "registryPlate"
        raise NotFound("No parcel has this code.", field=field)
    kind = config.kinds[submission.kind]
    partner = principal.partner_code
    assert partner is not None
    for _attempt in range(5):  # a tracking code already taken: draw another
        moment = naive(now())
        inquiry = InquiryRecord(
            tracking_code=new_tracking_code(),
            kind=kind.name,
            partner_kind=principal.kind.value,
            partner_id=principal.id,
            organisation=partner,
            idempotency_key=submission.idempotency_key,
            input_digest=submission.digest(),
            parcel_id=parcel.id,
            region=parcel.region_id,
            renewal_code=parcel.renewal_code,
            registry_plate=parcel.registry_plate,
            applicant_national_code=submission.applicant_national_code,
            counterparty_national_code=submission.counterparty_national_code,
            status=PENDING,
            submitted_at=moment,
        )
        async with _turn_to_write(databases), databases.session("gateway") as session:
            try:
                async with session.begin():
                    # Writers take SQLite's lock up front, with short retries (db/engines.py).
                    await begin_write(await session.connection())
                    session.add(inquiry)
                    await session.flush()
                    # One statement for every check (executemany), not one each.
                    await session.execute(
                        insert(InquiryCheckRecord),
                        [
                            {
                                "inquiry_id": inquiry.id,
                                "name": check.name,
                                "authority": check.authority.name,
                                "manual": isinstance(check, ManualCheck),
                                "state": CHECK_PENDING,
                                "attempts": 0,
                            }
                            for check in kind.checks
                        ],
                    )
                return inquiry, True
            except IntegrityError:
                pass
        # Either the same key arrived at the same moment (it won: answer with its inquiry)
        # or the tracking code was taken (draw again).
        async with databases.session("gateway") as session:
            found = await _existing(session, principal, submission)
            if found is not None:
                return found, False
    raise RuntimeError("no free tracking code after five draws")


async def start_checks(queue: JobQueue, inquiry_ids: Sequence[int], *, delay_s: float = 0) -> None:
    """Queues each inquiry's checks job, to start after `delay_s`; the inquiry's id is the
    job's idempotency key, so queueing it again (a retried submission, the sweeper) starts
    nothing new."""
    for inquiry_id in inquiry_ids:
        await queue.enqueue(
            CHECKS_JOB, {"inquiry": inquiry_id}, idempotency_key=str(inquiry_id), delay_s=delay_s
        )


# --- Recording outcomes, deciding ---------------------------------------------------------


async def _lock(session: AsyncSession, inquiry_id: int) -> InquiryRecord:
    await begin_write(await session.connection())
    inquiry = await session.scalar(
        select(InquiryRecord)
        .where(InquiryRecord.id == inquiry_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert inquiry is not None
    return inquiry


async def _checks_of(session: AsyncSession, inquiry_id: int) -> list[InquiryCheckRecord]:
    # A locking read: under REPEATABLE READ (MariaDB) a plain one would see the snapshot of
    # the transaction's first read, taken before the inquiry's lock, and miss an outcome
    # another transaction recorded in between (then neither would decide).
    return list(
        await session.scalars(
            select(InquiryCheckRecord)
            .where(InquiryCheckRecord.inquiry_id == inquiry_id)
            .order_by(InquiryCheckRecord.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    )


def _apply(check: InquiryCheckRecord, outcome: CheckOutcome) -> None:
    check.state = CHECK_DONE
    check.outcome = outcome.outcome.value
    check.reasons = stored(outcome.reasons)
    check.details = outcome.details
    check.read_at = naive(outcome.read_at)
    check.officer_role = outcome.officer_role
    check.note = outcome.note
    check.last_error = None


async def _advance(
    session: AsyncSession,
    inquiry: InquiryRecord,
    config: InquirySettings,
    now: dt.datetime,
) -> bool:
    """Moves the inquiry to where its checks put it; decides and signs when every check has
    an outcome. Returns whether its status changed."""
    checks = await _checks_of(session, inquiry.id)
    before = inquiry.status
    if any(check.state != CHECK_DONE for check in checks):
        queued = any(check.state == CHECK_QUEUED for check in checks)
        inquiry.status = WAITING_FOR_DEPARTMENT if queued else PENDING
        return inquiry.status != before
    await _decide(session, inquiry, checks, config, now)
    return True


async def _decide(
    session: AsyncSession,
    inquiry: InquiryRecord,
    checks: list[InquiryCheckRecord],
    config: InquirySettings,
    now: dt.datetime,
) -> None:
    # A newer answer for the same parcel and kind supersedes the older ones.
    older = list(
        await session.scalars(
            select(InquiryRecord)
            .where(
                InquiryRecord.parcel_id == inquiry.parcel_id,
                InquiryRecord.kind == inquiry.kind,
                InquiryRecord.answer_id.is_not(None),
                InquiryRecord.superseded_by.is_(None),
                InquiryRecord.id != inquiry.id,
            )
            .order_by(InquiryRecord.decided_at.desc(), InquiryRecord.id.desc())
            .with_for_update()
        )
    )
    decide(inquiry, checks, config, issued_at=now, answer_id=answers.new_answer_id(), older=older)


def decide(
    inquiry: InquiryRecord,
    checks: Sequence[InquiryCheckRecord],
    config: InquirySettings,
    *,
    issued_at: dt.datetime,
    answer_id: str,
    older: Sequence[InquiryRecord],
) -> None:
    """Gives an inquiry whose every check has an outcome its verdict, reasons and signed
    answer, issued at `issued_at` (to the second); the answer supersedes `older`, the
    parcel's answers for the same kind still in force, newest first, which are marked
    superseded. The one way an inquiry is decided: the workflow's, and the demo's past
    inquiries (gateway/inquiries/demo.py)."""
    kind = config.kinds[inquiry.kind]
    by_name = {check.name: check for check in checks}
    ordered = [by_name[definition.name] for definition in kind.checks]
    failed = [check for check in ordered if check.outcome == Outcome.FAIL.value]
    if failed:
        reasons = [reason for check in failed for reason in check.reasons or ()]
    else:  # a statement-only kind reports its statements (gateway/inquiries/verdict.py)
        reasons = [
            reason
            for check in ordered
            if check.outcome == Outcome.INFO.value
            for reason in check.reasons or ()
        ]
    issued = issued_at.astimezone(dt.UTC).replace(microsecond=0)
    answer = build_answer(
        inquiry,
        ordered,
        config,
        issued_at=issued,
        answer_id=answer_id,
        supersedes=older[0].answer_id if older else None,
    )
    inquiry.status = DECIDED
    inquiry.verdict = "NOT_CLEAR" if failed else "CLEAR"
    inquiry.reasons = reasons
    inquiry.decided_at = naive(issued)
    inquiry.valid_until = naive(answer.expires_at)
    inquiry.answer_id = answer.answer_id
    inquiry.answer = sign_answer(answer, config)
    for previous in older:
        previous.superseded_by = inquiry.id


@dataclass(frozen=True)
class Changed:
    """What a committed change must tell: the inquiry's new status and the webhook
    deliveries it recorded (queued by the caller)."""

    tracking_code: str
    status: str
    deliveries: tuple[str, ...]


async def _events(
    session: AsyncSession, inquiry: InquiryRecord, now: dt.datetime
) -> tuple[str, ...]:
    event = "inquiry.decided" if inquiry.status == DECIDED else "inquiry.updated"
    return tuple(await webhooks.record_event(session, inquiry, event, now))


async def record_outcomes(
    databases: Databases,
    config: InquirySettings,
    inquiry_id: int,
    outcomes: Mapping[str, CheckOutcome | None],
    now: WallClock,
) -> Changed | None:
    """Records, in one transaction, machines' answers to an inquiry's pending checks (by the
    check's name), each None sending a manual check to its department's queue with its
    deadline. A check no longer pending (a replayed or duplicated job, or another process
    that was quicker) is left as it is: the first recording stands. None when nothing
    changed."""
    async with _turn_to_write(databases), databases.session("gateway") as session:
        inquiry = await _lock(session, inquiry_id)
        moment = now()
        recorded = False
        for check in await _checks_of(session, inquiry_id):
            if check.name not in outcomes or check.state != CHECK_PENDING:
                continue
            outcome = outcomes[check.name]
            if outcome is None:
                kind = config.kinds[inquiry.kind]
                check.state = CHECK_QUEUED
                check.queued_at = naive(moment)
                check.due_at = naive(kind.manual_due_at(moment))
                check.last_error = None
            else:
                _apply(check, outcome)
            recorded = True
        if not recorded:
            await session.rollback()
            return None
        changed = await _advance(session, inquiry, config, moment)
        deliveries = await _events(session, inquiry, moment) if changed else ()
        result = Changed(inquiry.tracking_code, inquiry.status, deliveries)
        await session.commit()
    return result


async def note_failures(databases: Databases, inquiry_id: int, errors: Mapping[str, str]) -> None:
    """Why a machine has not answered these checks of an inquiry yet (by the check's name),
    as the partner sees it."""
    async with (
        _turn_to_write(databases),
        databases.session("gateway") as session,
        session.begin(),
    ):
        await begin_write(await session.connection())
        for name, error in errors.items():
            await session.execute(
                update(InquiryCheckRecord)
                .where(
                    InquiryCheckRecord.inquiry_id == inquiry_id,
                    InquiryCheckRecord.name == name,
                    InquiryCheckRecord.state == CHECK_PENDING,
                )
                .values(attempts=InquiryCheckRecord.attempts + 1, last_error=error[:200])
            )


async def answer_check(
    session: AsyncSession,
    config: InquirySettings,
    principal: Principal,
    check_id: int,
    outcome: Outcome,
    note: str,
    now: WallClock,
) -> tuple[InquiryCheck, Changed]:
    """An officer's answer to a check in their department's queue, inside the mutation's
    transaction. NOT_FOUND for a check that is not their department's (another department's
    reads as absent); CONFLICT for one answered already or not (yet) in the queue."""
    if principal.kind is not PrincipalKind.DEPARTMENT or principal.department is None:
        raise NotFound("No check with this id waits for your department.", field="checkId")
    if outcome is Outcome.INFO:
        raise BadUserInput("An officer answers PASS or FAIL.", field="outcome")
    note = note.strip()
    if not note or len(note) > 2000:
        raise BadUserInput("A note of 1 to 2,000 characters says why.", field="note")
    check = await session.get(InquiryCheckRecord, check_id)
    if check is None or check.authority != principal.department:
        raise NotFound("No check with this id waits for your department.", field="checkId")
    inquiry = await _lock(session, check.inquiry_id)
    await session.refresh(check, with_for_update=True)
    if check.state == CHECK_DONE:
        raise Conflict("This check has been answered already.", field="checkId")
    if check.state != CHECK_QUEUED:
        raise Conflict("This check is not in your department's queue yet.", field="checkId")
    definition = CHECKS[check.name]
    assert isinstance(definition, ManualCheck)
    moment = now()
    answered = definition.answer(outcome, note=note, officer_role="officer", answered_at=moment)
    _apply(check, answered)
    check.answered_by = principal.id
    check.answered_at = naive(moment)
    changed = await _advance(session, inquiry, config, moment)
    deliveries = await _events(session, inquiry, moment) if changed else ()
    return InquiryCheck.from_row(check), Changed(inquiry.tracking_code, inquiry.status, deliveries)


async def revoke(
    session: AsyncSession, tracking_code: str, reason: str, now: WallClock
) -> InquiryRecord:
    """Withdraws a decided inquiry's answer (an operator's act): its status reads REVOKED."""
    reason = reason.strip()
    if not reason or len(reason) > 500:
        raise BadUserInput("A reason of 1 to 500 characters is recorded.", field="reason")
    inquiry = await session.scalar(
        select(InquiryRecord).where(InquiryRecord.tracking_code == tracking_code)
    )
    if inquiry is None:
        raise NotFound("No inquiry has this tracking code.", field="trackingCode")
    inquiry = await _lock(session, inquiry.id)
    if inquiry.answer is None:
        raise Conflict("The inquiry has no answer yet.", field="trackingCode")
    if inquiry.revoked_at is not None:
        raise Conflict("The answer is revoked already.", field="trackingCode")
    inquiry.revoked_at = naive(now())
    inquiry.revocation_reason = reason
    return inquiry


# --- Jobs -----------------------------------------------------------------------------------


def _describe(error: Exception) -> str:
    if isinstance(error, AgencyError):
        return f"{error.code}: {error.agency}.{error.operation}"
    return type(error).__name__


class ChecksUnanswered(Exception):
    """Some of an inquiry's checks could not be answered yet (an agency down): the job that
    ran them is retried, with backoff, for those alone."""


@dataclass(frozen=True)
class Run:
    """What one run of an inquiry's checks did: the change it committed (None: nothing was
    pending any more, or nothing could be answered) and, by check name, why those it left
    pending could not be answered yet."""

    changed: Changed | None
    errors: Mapping[str, str]


@dataclass(frozen=True)
class Pending:
    """What a run of an inquiry's checks works from: the inquiry's property, applicant and
    tracking code, and the names of its checks still pending."""

    inquiry_id: int
    parcel_id: int
    applicant_national_code: str
    tracking_code: str
    checks: tuple[str, ...]

    @classmethod
    def fresh(cls, inquiry: Inquiry, config: InquirySettings) -> Pending:
        """An inquiry just submitted: every check of its kind is pending (submit)."""
        return cls(
            inquiry.id,
            inquiry.parcel_id,
            inquiry.applicant_national_code,
            inquiry.tracking_code,
            tuple(check.name for check in config.kinds[inquiry.kind].checks),
        )


async def pending_checks(databases: Databases, inquiry_id: int) -> Pending | None:
    """An inquiry's checks still pending, in one statement; None when none is (or there is
    no such inquiry)."""
    async with databases.gateway.connect() as connection:
        rows = (
            await connection.execute(
                select(
                    InquiryCheckRecord.name,
                    InquiryRecord.parcel_id,
                    InquiryRecord.applicant_national_code,
                    InquiryRecord.tracking_code,
                )
                .join(InquiryRecord, InquiryRecord.id == InquiryCheckRecord.inquiry_id)
                .where(
                    InquiryCheckRecord.inquiry_id == inquiry_id,
                    InquiryCheckRecord.state == CHECK_PENDING,
                )
                .order_by(InquiryCheckRecord.id)
            )
        ).all()
    if not rows:
        return None
    first = rows[0]
    return Pending(inquiry_id, first[1], first[2], first[3], tuple(str(row[0]) for row in rows))


async def run_checks(
    databases: Databases,
    agencies: Agencies,
    config: InquirySettings,
    inquiry_id: int,
    now: WallClock,
    *,
    pending: Pending | None = None,
) -> Run:
    """Runs every pending check of an inquiry at once: reads the facts they need once (the
    department databases and the agencies concurrently), judges each check, and records
    every outcome in one transaction. A check whose facts could not be read stays pending
    with why; the others are recorded all the same. Safe to run twice, or in two processes
    at once: only the first recording of a check stands (record_outcomes). `pending`, when
    the caller knows it (an inquiry it has just submitted), spares reading it again."""
    if pending is None:
        pending = await pending_checks(databases, inquiry_id)
        if pending is None:
            return Run(None, {})
    definitions = [CHECKS[name] for name in pending.checks]
    parcel_id, applicant = pending.parcel_id, pending.applicant_national_code
    tracking_code = pending.tracking_code
    reading = await read_facts(
        databases,
        agencies,
        parcel_id=parcel_id,
        applicant_national_code=applicant,
        tracking_code=tracking_code,
        needs=facts_needed(definitions),
        now=now,
    )
    outcomes: dict[str, CheckOutcome | None] = {}
    errors: dict[str, str] = {}
    for definition in definitions:
        failed = [reading.failures[fact] for fact in definition.needs if fact in reading.failures]
        if failed:
            errors[definition.name] = _describe(failed[0])
        elif isinstance(definition, AutomaticCheck):
            outcomes[definition.name] = definition.evaluate(reading.facts, config.checks)
        else:
            outcomes[definition.name] = definition.screened(reading.facts, config.checks)
    changed = None
    if outcomes:
        changed = await record_outcomes(databases, config, inquiry_id, outcomes, now)
    if errors:
        await note_failures(databases, inquiry_id, errors)
    return Run(changed, errors)


def register_jobs(kinds: JobKinds, runtime: JobRuntime, queue_of: QueueOf) -> None:
    """The inquiry's checks job, on every process that runs jobs."""

    async def run(inquiry_id: int) -> None:
        config, now = runtime.config, runtime.wall_clock
        run = await runtime.at_home(
            lambda databases, agencies: run_checks(databases, agencies, config, inquiry_id, now)
        )
        if run.changed is not None:
            await tell(runtime, queue_of(), run.changed)
        if run.errors:
            raise ChecksUnanswered("; ".join(sorted(set(run.errors.values()))))

    @kinds.handler(CHECKS_JOB, retry=CHECK_RETRY)
    async def run_inquiry_checks(job: JobContext, payload: Payload) -> None:
        await run(int(payload["inquiry"]))

    @kinds.handler(CHECK_JOB, retry=CHECK_RETRY)
    async def run_check(job: JobContext, payload: Payload) -> None:
        # One check's job, as queued before checks ran by the inquiry: runs its inquiry's.
        async def inquiry_of(databases: Databases, _agencies: Agencies) -> int | None:
            async with databases.gateway.connect() as connection:
                return await connection.scalar(
                    select(InquiryCheckRecord.inquiry_id).where(
                        InquiryCheckRecord.id == int(payload["check"])
                    )
                )

        inquiry_id = await runtime.at_home(inquiry_of)
        if inquiry_id is not None:
            await run(inquiry_id)


async def run_checks_at_once(
    databases: Databases,
    agencies: Agencies,
    config: InquirySettings,
    inquiry: Inquiry,
    now: WallClock,
    told: Callable[[Changed], Awaitable[None]],
    *,
    backstop: JobQueue | None = None,
) -> None:
    """A submission's first run of its checks, in the process that accepted it, right after
    the commit (JobQueue.spawn), from the inquiry it has just created (every check pending;
    nothing read again): the verdict does not wait for the job queue to be polled. Its
    durable job, queued on `backstop` to start BACKSTOP_S later, finishes the work after an
    agency's failure (with backoff), or when this process died meanwhile; when this run
    leaves nothing pending, the job is withdrawn before it starts (it would find nothing
    to do, at the cost of a job's bookkeeping)."""
    pending = Pending.fresh(inquiry, config)
    run = await run_checks(databases, agencies, config, inquiry.id, now, pending=pending)
    if run.changed is not None:
        await told(run.changed)
    if backstop is not None and not run.errors:
        # Every check this run started from (all of the inquiry's) has its outcome or its
        # department's queue, recorded here or by another run: none is pending, none can be
        # again, and the backstop, not started yet, would only find that out.
        await backstop.withdraw([job_id(CHECKS_JOB, str(inquiry.id))])


def announcer(events: Events, queue: JobQueue | None) -> Callable[[Changed], Awaitable[None]]:
    """What a committed change tells, from the loop `events` serves: subscribers hear of it,
    and its webhook deliveries start."""

    async def told(changed: Changed) -> None:
        event = InquiryChanged(changed.tracking_code, changed.status)
        await events.publish(INQUIRY_UPDATED, changed.tracking_code, event)
        if queue is not None:
            for delivery in changed.deliveries:
                await webhooks.enqueue_delivery(queue, delivery)

    return told


async def tell(runtime: JobRuntime, queue: JobQueue | None, changed: Changed) -> None:
    """After the commit: subscribers hear of the change, and its webhook deliveries start."""
    runtime.notify(changed.tracking_code, changed.status)
    if queue is not None:
        for delivery in changed.deliveries:
            await webhooks.enqueue_delivery(queue, delivery)


async def sweep(databases: Databases, queue: JobQueue, now: WallClock) -> int:
    """Queues again the accepted work whose job never started (a process killed between a
    commit and its queueing). Returns how many jobs it queued (most already exist: queueing
    is idempotent)."""
    before = naive(now() - SWEEP_AFTER)
    async with databases.session("gateway") as session:
        inquiries = list(
            await session.scalars(
                select(InquiryCheckRecord.inquiry_id)
                .join(InquiryRecord, InquiryRecord.id == InquiryCheckRecord.inquiry_id)
                .where(
                    InquiryCheckRecord.state == CHECK_PENDING,
                    InquiryRecord.submitted_at < before,
                )
                .distinct()
                .limit(10_000)
            )
        )
        deliveries = await webhooks.deliveries_to_start(session, before)
    await start_checks(queue, inquiries)
    for delivery in deliveries:
        await webhooks.enqueue_delivery(queue, delivery)
    return len(inquiries) + len(deliveries)
