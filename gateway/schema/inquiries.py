"""Inquiries (استعلام) in GraphQL: a partner submits and follows its own, a department answers
the checks in its queue, anyone verifies an answer.

Every path to an inquiry (inquiry, inquiries, node(id), inquiryUpdated, a check's inquiry)
loads it through the loaders that carry its row rule (gateway/access/rows.py): a partner sees
its organisation's, a department those holding a check of its own, operators all; for anyone
else it reads as absent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncGenerator
from enum import Enum
from typing import Annotated, Self

import strawberry

from gateway.access.permissions import mask_national_code, note_personal_read
from gateway.access.principals import PrincipalKind, Scope
from gateway.access.replays import audit_registration
from gateway.context import Info
from gateway.errors import BadUserInput, Forbidden
from gateway.inquiries import listing, publication, records, webhooks, workflow
from gateway.inquiries.checks import CHECKS
from gateway.inquiries.facts import Outcome
from gateway.inquiries.records import InquiryCheck as CheckRecord
from gateway.inquiries.status import AnswerStatus
from gateway.inquiries.tracking import parse_tracking_code
from gateway.inquiries.wording import Text
from gateway.schema.inquiry_kinds import InquiryKind
from gateway.schema.mutation import change
from gateway.schema.node import Node, from_global_id, node_type
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
from gateway.schema.scalars import NationalCode, RegistryPlate, RenewalCode
from identifiers import InvalidIdentifier, parse_registry_plate

SUBMIT = "Mutation.submitInquiry"
ANSWER = "Mutation.answerInquiryCheck"
REVOKE = "Mutation.revokeInquiryAnswer"
MAX_PAGE = 100


@strawberry.enum(description="Where an inquiry stands.")
class InquiryStatus(Enum):
    PENDING = strawberry.enum_value(
        "PENDING", description="Checks are running (or waiting on an agency)."
    )
    WAITING_FOR_DEPARTMENT = strawberry.enum_value(
        "WAITING_FOR_DEPARTMENT", description="A check waits for an officer of a department."
    )
    DECIDED = strawberry.enum_value(
        "DECIDED", description="Every check has an outcome, and the verdict is signed."
    )


@strawberry.enum(description="An inquiry's verdict, once every check has an outcome.")
class InquiryVerdict(Enum):
    CLEAR = strawberry.enum_value(
        "CLEAR", description="Every check passed: nothing stands in the way (بلامانع)."
    )
    NOT_CLEAR = strawberry.enum_value(
        "NOT_CLEAR", description="Some check failed (دارای مانع); the reasons say which."
    )


@strawberry.enum(description="One check's outcome: INFO for a statement that judges nothing.")
class CheckOutcome(Enum):
    PASS = strawberry.enum_value("PASS", description="The check holds (e.g. the dues are settled).")
    FAIL = strawberry.enum_value(
        "FAIL", description="The check does not hold; the inquiry is not clear."
    )
    INFO = strawberry.enum_value(
        "INFO", description="A statement for the reader that judges nothing."
    )


@strawberry.enum(description="What an officer answers a check in their queue.")
class OfficerOutcome(Enum):
    PASS = strawberry.enum_value("PASS", description="The check holds.")
    FAIL = strawberry.enum_value("FAIL", description="The check does not hold.")


@strawberry.enum(description="Where a check stands.")
class InquiryCheckStatus(Enum):
    PENDING = strawberry.enum_value("PENDING", description="A machine is answering it.")
    WAITING_FOR_DEPARTMENT = strawberry.enum_value(
        "WAITING_FOR_DEPARTMENT", description="In its department's queue, with a deadline."
    )
    DONE = strawberry.enum_value("DONE", description="It has its outcome.")


@strawberry.enum(description="The language of reasons and titles.")
class Language(Enum):
    EN = strawberry.enum_value("EN", description="English.")
    FA = strawberry.enum_value("FA", description="Persian (فارسی).")


@strawberry.enum(description="An answer's status, as verification reports it.")
class InquiryAnswerStatus(Enum):
    VALID = strawberry.enum_value("VALID", description="Authentic and within its validity period.")
    EXPIRED = strawberry.enum_value(
        "EXPIRED", description="Its validity period is over; ask again."
    )
    SUPERSEDED = strawberry.enum_value(
        "SUPERSEDED", description="A newer answer to the same inquiry replaces it."
    )
    REVOKED = strawberry.enum_value("REVOKED", description="An operator revoked it.")


_CHECK_STATUS = {
    records.CHECK_PENDING: InquiryCheckStatus.PENDING,
    records.CHECK_QUEUED: InquiryCheckStatus.WAITING_FOR_DEPARTMENT,
    records.CHECK_DONE: InquiryCheckStatus.DONE,
}


def _say(texts: tuple[Text, ...], language: Language | None) -> list[str]:
    """In English unless FA is asked for (the letters are Persian)."""
    return [text.fa if language is Language.FA else text.en for text in texts]


def _national_code(info: Info, code: str | None) -> str | None:
    """In full for a caller with personal:read (audited as a read of the person), masked
    otherwise."""
    if code is None:
        return None
    if info.context.principal.has(Scope.PERSONAL_READ):
        note_personal_read(info, "Person", code)
        return code
    return mask_national_code(code)


@node_type(loader=lambda loaders: loaders.check_by_id, scope=None)
@strawberry.type(description="One check of an inquiry: who answers it, its outcome and why.")
class InquiryCheck(Node):
    record: strawberry.Private[CheckRecord]
    name: str = strawberry.field(description="The check's code, e.g. dues_settled.")
    status: InquiryCheckStatus = strawberry.field(description="Where it stands.")
    outcome: CheckOutcome | None = strawberry.field(description="Its outcome; null until answered.")
    department: str = strawberry.field(
        description="The department (revenue, planning…) or agency (land_registry, "
        "civil_registry) that answers it."
    )
    manual: bool = strawberry.field(description="Answered by an officer of the department.")
    due_at: dt.datetime | None = strawberry.field(
        description="For a check in a department's queue: when it is due."
    )
    answered_at: dt.datetime | None = strawberry.field(
        description="When it got its outcome (UTC); null until then."
    )
    attempts: int = strawberry.field(
        description="Failed attempts at reading its data (an agency unavailable)."
    )
    last_error: str | None = strawberry.field(
        description="Why a machine has not answered it yet, e.g. AGENCY_UNAVAILABLE: "
        "land_registry.GetDeed; it is retried with backoff."
    )

    @classmethod
    def from_domain(cls, check: CheckRecord) -> Self:
        return cls(
            pk=check.id,
            record=check,
            name=check.name,
            status=_CHECK_STATUS[check.state],
            outcome=None if check.outcome is None else CheckOutcome(check.outcome),
            department=check.authority,
            manual=check.manual,
            due_at=check.due_at,
            answered_at=check.answered_at,
            attempts=check.attempts,
            last_error=check.last_error,
        )

    @strawberry.field(description="What the check asks.")
    def title(
        self,
        language: Annotated[
            Language | None,
            strawberry.argument(description="The language of the title: FA (the default) or EN."),
        ] = None,
    ) -> str:
        return _say((CHECKS[self.name].title,), language)[0]

    @strawberry.field(description="Why its outcome is what it is.")
    def reasons(
        self,
        language: Annotated[
            Language | None,
            strawberry.argument(description="The language of the reasons: FA (the default) or EN."),
        ] = None,
    ) -> list[str]:
        return _say(self.record.reasons, language)

    @strawberry.field(description="In its department's queue past its deadline.")
    def overdue(self, info: Info) -> bool:
        return self.record.overdue(info.context.wall_clock())

    @strawberry.field(
        description="The officer's note: seen by the check's own department and operators "
        "only (a partner reads the reasons)."
    )
    def note(self, info: Info) -> str | None:
        principal = info.context.principal
        if principal.has(Scope.INQUIRIES_ALL) or (
            principal.kind is PrincipalKind.DEPARTMENT
            and principal.department == self.record.authority
        ):
            return self.record.note
        return None

    @strawberry.field(description="The inquiry this check belongs to.")
    async def inquiry(self, info: Info) -> Inquiry | None:
        found = await info.context.loaders.inquiry_by_id.load(self.record.inquiry_id)
        return None if found is None else Inquiry.from_domain(found)


@node_type(loader=lambda loaders: loaders.inquiry_by_id, scope=None)
@strawberry.type(description="An inquiry (استعلام) about a property, and its answer.")
class Inquiry(Node):
    record: strawberry.Private[records.Inquiry]
    tracking_code: str = strawberry.field(
        description="16 digits, the last a Damm check digit; printed in groups of four."
    )
    kind: InquiryKind = strawberry.field(
        description="What is asked, e.g. PROPERTY_TRANSFER (نقل و انتقال) or MORTGAGE (ترهین)."
    )
    status: InquiryStatus = strawberry.field(description="Where it stands.")
    verdict: InquiryVerdict | None = strawberry.field(description="Null until decided.")
    submitted_at: dt.datetime = strawberry.field(description="When it was submitted (UTC).")
    decided_at: dt.datetime | None = strawberry.field(
        description="When its verdict was reached (UTC); null until decided."
    )
    valid_until: dt.datetime | None = strawberry.field(
        description="Until when the answer may be relied on."
    )
    answer: str | None = strawberry.field(
        description="The municipality's signed answer (compact JWS, Ed25519), null before "
        "the verdict: verify it with verifyInquiry or the keys at /.well-known/jwks.json."
    )
    renewal_code: RenewalCode = strawberry.field(
        description="The renewal code (کد نوسازی) of the parcel asked about."
    )
    registry_plate: RegistryPlate | None = strawberry.field(
        description="The registry plate (پلاک ثبتی) of the parcel, when the inquiry named it."
    )
    partner: str = strawberry.field(description="The organisation that asked.")

    @classmethod
    def from_domain(cls, inquiry: records.Inquiry) -> Self:
        return cls(
            pk=inquiry.id,
            record=inquiry,
            tracking_code=inquiry.tracking_code,
            kind=InquiryKind(inquiry.kind),
            status=InquiryStatus(inquiry.status),
            verdict=None if inquiry.verdict is None else InquiryVerdict(inquiry.verdict),
            submitted_at=inquiry.submitted_at,
            decided_at=inquiry.decided_at,
            valid_until=inquiry.valid_until,
            answer=inquiry.answer,
            renewal_code=RenewalCode(inquiry.renewal_code),
            registry_plate=(
                None if inquiry.registry_plate is None else RegistryPlate(inquiry.registry_plate)
            ),
            partner=inquiry.organisation,
        )

    @strawberry.field(
        description="For NOT_CLEAR, why, one reason per finding (the unpaid due with its "
        "period and amount, the seizure with its issuer…); for a statement, what it states."
    )
    def reasons(
        self,
        language: Annotated[
            Language | None,
            strawberry.argument(description="The language of the reasons: FA (the default) or EN."),
        ] = None,
    ) -> list[str]:
        return _say(self.record.reasons, language)

    @strawberry.field(description="Its checks, in the kind's order.")
    async def checks(self, info: Info) -> list[InquiryCheck]:
        found = await info.context.loaders.checks_by_inquiry.load(self.record.id)
        order = {
            check.name: index
            for index, check in enumerate(info.context.inquiries.kinds[self.record.kind].checks)
        }
        return [
            InquiryCheck.from_domain(c) for c in sorted(found, key=lambda c: order.get(c.name, 99))
        ]

    @strawberry.field(description="A check waits in a department's queue past its deadline.")
    async def overdue(self, info: Info) -> bool:
        found = await info.context.loaders.checks_by_inquiry.load(self.record.id)
        now = info.context.wall_clock()
        return any(check.overdue(now) for check in found)

    @strawberry.field(description="The applicant's national ID: masked without personal:read.")
    def applicant_national_code(self, info: Info) -> NationalCode:
        code = _national_code(info, self.record.applicant_national_code)
        assert code is not None
        return NationalCode(code)

    @strawberry.field(description="The counterparty's national ID, if given (masked likewise).")
    def counterparty_national_code(self, info: Info) -> NationalCode | None:
        code = _national_code(info, self.record.counterparty_national_code)
        return None if code is None else NationalCode(code)

    @strawberry.field(description="The answer's status now (null before the verdict).")
    def answer_status(self, info: Info) -> InquiryAnswerStatus | None:
        inquiry = self.record
        if inquiry.answer is None:
            return None
        if inquiry.revoked_at is not None:
            return InquiryAnswerStatus.REVOKED
        if inquiry.superseded_by is not None:
            return InquiryAnswerStatus.SUPERSEDED
        if inquiry.valid_until is not None and info.context.wall_clock() >= inquiry.valid_until:
            return InquiryAnswerStatus.EXPIRED
        return InquiryAnswerStatus.VALID

    @strawberry.field(description="The printable letter (HTML), for the partner who asked.")
    def letter_url(self, info: Info) -> str | None:
        if self.record.answer is None:
            return None
        return info.context.inquiries.letter_url(self.record.tracking_code)

    @strawberry.field(description="The public verification page printed under the QR code.")
    def verification_url(self, info: Info) -> str | None:
        if self.record.answer is None:
            return None
        return info.context.inquiries.verification_url(self.record.tracking_code)


@strawberry.type(description="An inquiry in a page, with its cursor (Relay).")
class InquiryEdge:
    cursor: str = strawberry.field(description="Where the inquiry stands in the list.")
    node: Inquiry = strawberry.field(description="The inquiry (استعلام).")


@strawberry.type(description="A page of inquiries (Relay connection), newest first.")
class InquiryConnection:
    edges: list[InquiryEdge] = strawberry.field(description="The page's inquiries.")
    page_info: PageInfo = strawberry.field(description="Where the page sits in the list.")
    search: strawberry.Private[listing.InquirySearch]

    @strawberry.field(description="How many inquiries match the filter, on all pages.")
    async def total_count(self, info: Info) -> int:
        context = info.context
        return await listing.count_inquiries(context.databases, context.principal, self.search)


@strawberry.type(description="An inquiry's check in a page, with its cursor (Relay).")
class InquiryCheckEdge:
    cursor: str = strawberry.field(description="Where the check stands in the list.")
    node: InquiryCheck = strawberry.field(description="The check.")


@strawberry.type(description="A page of a department's checks (Relay connection), oldest first.")
class InquiryCheckConnection:
    edges: list[InquiryCheckEdge] = strawberry.field(description="The page's checks.")
    page_info: PageInfo = strawberry.field(description="Where the page sits in the list.")
    search: strawberry.Private[listing.QueueSearch]

    @strawberry.field(description="How many checks match, on all pages.")
    async def total_count(self, info: Info) -> int:
        context = info.context
        return await listing.count_queue(context.databases, context.principal, self.search)


@strawberry.input(description="Which of the caller's inquiries to list.")
class InquiryFilter:
    status: InquiryStatus | None = strawberry.field(
        default=None, description="Only inquiries in this status."
    )
    kind: InquiryKind | None = strawberry.field(
        default=None, description="Only inquiries of this kind."
    )
    verdict: InquiryVerdict | None = strawberry.field(
        default=None, description="Only inquiries with this verdict."
    )


@strawberry.enum(description="Which checks of the department's queue to list.")
class QueueStatus(Enum):
    WAITING = strawberry.enum_value("WAITING", description="Still to answer.")
    ANSWERED = strawberry.enum_value("ANSWERED", description="Answered by the department.")


@strawberry.type(description="What verification says of an answer.")
class InquiryVerification:
    authentic: bool = strawberry.field(
        description="Signed by this municipality, unaltered, and held by it."
    )
    status: InquiryAnswerStatus | None = strawberry.field(description="Null when not authentic.")
    tracking_code: str | None = strawberry.field(
        description="The inquiry's tracking code (کد پیگیری); null when not authentic."
    )
    verdict: InquiryVerdict | None = strawberry.field(
        description="The answer's verdict; null when not authentic."
    )
    kind: InquiryKind | None = strawberry.field(
        description="The inquiry's kind; null when not authentic."
    )
    valid_until: dt.datetime | None = strawberry.field(
        description="Until when the answer is valid (UTC); null when not authentic."
    )
    reason: str | None = strawberry.field(description="Why it is not authentic.")


def _tracking_code(text: str) -> str:
    try:
        return parse_tracking_code(text)
    except InvalidIdentifier as exc:
        raise BadUserInput(str(exc), field="trackingCode") from None
    except ValueError as exc:
        raise BadUserInput(str(exc), field="trackingCode") from None


@strawberry.type
class InquiriesQuery:
    @strawberry.field(
        description="An inquiry by its tracking code (Persian and Arabic-Indic digits, spaces "
        "and dashes accepted); null when it does not exist or is not the caller's to see."
    )
    async def inquiry(
        self,
        info: Info,
        tracking_code: Annotated[
            str, strawberry.argument(description="The inquiry's tracking code (کد پیگیری).")
        ],
    ) -> Inquiry | None:
        code = _tracking_code(tracking_code)
        found = await info.context.loaders.inquiry_by_tracking_code.load(code)
        return None if found is None else Inquiry.from_domain(found)

    @strawberry.field(
        description="The caller's inquiries, newest first: a partner its organisation's, a "
        "department those holding a check of its own, operators all."
    )
    async def inquiries(
        self,
        info: Info,
        filter: Annotated[
            InquiryFilter | None,
            strawberry.argument(description="Only inquiries matching every condition given."),
        ] = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> InquiryConnection:
        window = page_window(
            "inquiry", first=first, after=after, last=last, before=before, cap=MAX_PAGE
        )
        search = listing.InquirySearch()
        if filter is not None:
            search = listing.InquirySearch(
                status=None if filter.status is None else filter.status.name,
                kind=None if filter.kind is None else filter.kind.name,
                verdict=None if filter.verdict is None else filter.verdict.name,
            )
        context = info.context
        page = await listing.inquiries(context.databases, context.principal, search, window)
        found = page.items
        cursors = [encode_cursor("inquiry", inquiry.id) for inquiry in found]
        edges = [
            InquiryEdge(cursor=cursor, node=Inquiry.from_domain(inquiry))
            for cursor, inquiry in zip(cursors, found, strict=True)
        ]
        return InquiryConnection(edges=edges, page_info=page_info_of(page, cursors), search=search)

    @strawberry.field(
        description="The checks waiting for the caller's department (operators: every "
        "department's), oldest first; `overdue` narrows to those past their deadline."
    )
    async def department_queue(
        self,
        info: Info,
        status: Annotated[
            QueueStatus | None,
            strawberry.argument(description="WAITING (the default) or ANSWERED checks."),
        ] = None,
        overdue: Annotated[
            bool | None,
            strawberry.argument(
                description="True: only checks past their deadline; false: only those within it."
            ),
        ] = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> InquiryCheckConnection:
        principal = info.context.principal
        if principal.kind is not PrincipalKind.DEPARTMENT and not principal.has(
            Scope.INQUIRIES_ALL
        ):
            raise Forbidden("The queue is a department's.", scope="inquiries:queue")
        window = page_window(
            "queue", first=first, after=after, last=last, before=before, cap=MAX_PAGE
        )
        search = listing.QueueSearch(
            now=info.context.wall_clock(),
            answered=status is QueueStatus.ANSWERED,
            overdue=overdue,
        )
        page = await listing.queue(info.context.databases, principal, search, window)
        found = page.items
        cursors = [encode_cursor("queue", check.id) for check in found]
        edges = [
            InquiryCheckEdge(cursor=cursor, node=InquiryCheck.from_domain(check))
            for cursor, check in zip(cursors, found, strict=True)
        ]
        return InquiryCheckConnection(
            edges=edges, page_info=page_info_of(page, cursors), search=search
        )

    @strawberry.field(
        description="Whether an answer (the compact JWS, as in a letter's QR code) is "
        "authentic, and if so whether it is VALID, EXPIRED, SUPERSEDED or REVOKED. No login "
        "needed."
    )
    async def verify_inquiry(
        self,
        info: Info,
        answer: Annotated[
            str,
            strawberry.argument(
                description="The answer as a compact JWS (the text of a letter's QR code)."
            ),
        ],
    ) -> InquiryVerification:
        context = info.context
        async with context.databases.session("gateway") as session:
            verification = await publication.verify_answer(
                answer.strip(), session, context.inquiries, context.wall_clock()
            )
        stated = verification.answer
        if not verification.authentic or stated is None:
            return InquiryVerification(
                authentic=False,
                status=None,
                tracking_code=None,
                verdict=None,
                kind=None,
                valid_until=None,
                reason=verification.reason,
            )
        return InquiryVerification(
            authentic=True,
            status=None
            if verification.status is None
            else InquiryAnswerStatus(AnswerStatus(verification.status).value),
            tracking_code=stated.tracking_code,
            verdict=InquiryVerdict.CLEAR
            if stated.verdict.value == "C"
            else InquiryVerdict.NOT_CLEAR,
            kind=InquiryKind(stated.kind),
            valid_until=stated.expires_at,
            reason=None,
        )


@strawberry.input(description="An inquiry to submit; exactly one of renewalCode and registryPlate.")
class SubmitInquiryInput:
    kind: InquiryKind = strawberry.field(description="What is asked.")
    renewal_code: RenewalCode | None = strawberry.field(
        default=None, description="The parcel's renewal code (کد نوسازی); or give registryPlate."
    )
    registry_plate: RegistryPlate | None = strawberry.field(
        default=None, description="The parcel's registry plate (پلاک ثبتی); or give renewalCode."
    )
    applicant_national_code: NationalCode = strawberry.field(
        description="The national ID (کد ملی) of the person the inquiry is for (e.g. the seller)."
    )
    counterparty_national_code: NationalCode | None = strawberry.field(
        default=None,
        description="The other party's national ID (e.g. the buyer), where the kind needs one.",
    )
    idempotency_key: str = strawberry.field(
        description="The partner's own key for this submission: the same key again returns "
        "the same inquiry; with a different input it is a CONFLICT."
    )


@strawberry.input(description="An officer's answer to a check in their department's queue.")
class AnswerInquiryCheckInput:
    check_id: strawberry.ID = strawberry.field(
        description="The check's global id (InquiryCheck.id)."
    )
    outcome: OfficerOutcome = strawberry.field(description="The officer's outcome for the check.")
    note: str = strawberry.field(description="Why: the record of the officer's decision.")


def _check_pk(value: str) -> int:
    type_name, pk = from_global_id(value, field="checkId")
    if type_name != "InquiryCheck":
        raise BadUserInput("Not an InquiryCheck id.", field="checkId")
    return pk


@strawberry.type
class InquiriesMutation:
    @strawberry.mutation(
        description="Submits an inquiry; it is committed before the answer and its checks "
        "start at once. FORBIDDEN for a kind the caller may not ask, NOT_FOUND for a parcel "
        "that does not exist, CONFLICT for an idempotency key reused with another input."
    )
    async def submit_inquiry(
        self,
        info: Info,
        input: Annotated[
            SubmitInquiryInput, strawberry.argument(description="The inquiry to submit.")
        ],
    ) -> Inquiry:
        context = info.context
        try:
            plate = (
                None if input.registry_plate is None else parse_registry_plate(input.registry_plate)
            )
        except InvalidIdentifier as exc:
            raise BadUserInput(str(exc), field="registryPlate") from None
        submission = workflow.Submission(
            kind=input.kind.name,
            renewal_code=None if input.renewal_code is None else str(input.renewal_code),
            registry_plate=plate,
            applicant_national_code=str(input.applicant_national_code),
            counterparty_national_code=(
                None
                if input.counterparty_national_code is None
                else str(input.counterparty_national_code)
            ),
            idempotency_key=input.idempotency_key,
        )
        record, created = await workflow.submit(
            context.databases, context.inquiries, context.principal, submission, context.wall_clock
        )
        # A replay whose original's audit write failed writes the record now.
        await audit_registration(
            context.audit_trail,
            context.audit_changes,
            context.audit_entry("change", SUBMIT, "Inquiry", str(record.id)),
            created=created,
        )
        # The persons it names are read for this partner (the civil registry, the deed, and
        # what the verdict says of them): each is a read of that person, recorded under their
        # national ID with this operation's other reads, even when the answer selects no ID.
        for code in (record.applicant_national_code, record.counterparty_national_code):
            if code is not None:
                note_personal_read(info, "Person", code)
        queue = context.job_queue
        if queue is not None:
            # The durable job before the answer (again on a repeated submission: a job
            # already queued is not queued twice). A process that runs jobs also runs the
            # checks here and at once; the job starts a little later, as their backstop.
            here = created and context.settings.jobs_in_app
            delay = workflow.BACKSTOP_S if here else 0.0
            await workflow.start_checks(queue, [record.id], delay_s=delay)
            if here:
                queue.spawn(
                    workflow.run_checks_at_once(
                        context.databases,
                        context.agencies,
                        context.inquiries,
                        record,
                        context.wall_clock,
                        workflow.announcer(context.events, queue),
                        backstop=queue,
                    )
                )
        return Inquiry.from_domain(record)

    @strawberry.mutation(
        description="Records a department's answer to a check in its queue, with a note. "
        "NOT_FOUND for a check not in the caller's department's queue; CONFLICT for one "
        "answered already. The inquiry is decided once its last check has an outcome."
    )
    async def answer_inquiry_check(
        self,
        info: Info,
        input: Annotated[
            AnswerInquiryCheckInput,
            strawberry.argument(description="The check and the officer's answer."),
        ],
    ) -> InquiryCheck:
        context = info.context
        check_id = _check_pk(input.check_id)
        async with change(info) as unit:
            check, changed = await workflow.answer_check(
                unit.session,
                context.inquiries,
                context.principal,
                check_id,
                Outcome(input.outcome.value),
                input.note,
                context.wall_clock,
            )
            unit.audit(ANSWER, "InquiryCheck", check.id)
            unit.announce(
                workflow.INQUIRY_UPDATED,
                changed.tracking_code,
                workflow.InquiryChanged(changed.tracking_code, changed.status),
            )
        if context.job_queue is not None:
            for delivery in changed.deliveries:
                await webhooks.enqueue_delivery(context.job_queue, delivery)
        return InquiryCheck.from_domain(check)

    @strawberry.mutation(
        description="Withdraws an answer (operators): verification reports it REVOKED, and "
        "the published status list says so.",
    )
    async def revoke_inquiry_answer(
        self,
        info: Info,
        tracking_code: Annotated[
            str,
            strawberry.argument(
                description="The tracking code (کد پیگیری) of the inquiry whose answer to revoke."
            ),
        ],
        reason: Annotated[
            str, strawberry.argument(description="Why it is revoked (recorded in the audit trail).")
        ],
    ) -> Inquiry:
        context = info.context
        if not context.principal.has(Scope.INQUIRIES_ALL):
            raise Forbidden("Revoking an answer is an operator's act.", scope=Scope.INQUIRIES_ALL)
        code = _tracking_code(tracking_code)
        async with change(info) as unit:
            revoked = await listing.revoke(unit.session, code, reason, context.wall_clock)
            unit.audit(REVOKE, "Inquiry", revoked.id)
            unit.announce(
                workflow.INQUIRY_UPDATED, code, workflow.InquiryChanged(code, revoked.status)
            )
        return Inquiry.from_domain(revoked)


@strawberry.type
class InquiriesSubscription:
    @strawberry.subscription(
        description="The inquiry each time it changes (a check answered, the verdict): for "
        "whoever may see it. Ends at once, with nothing, for an inquiry the caller may not see."
    )
    async def inquiry_updated(
        self,
        info: Info,
        tracking_code: Annotated[
            str,
            strawberry.argument(
                description="The tracking code (کد پیگیری) of the inquiry to follow."
            ),
        ],
    ) -> AsyncGenerator[Inquiry, None]:
        context = info.context
        code = _tracking_code(tracking_code)
        if await _visible(info, code) is None:
            return
        async for _event in context.events.listen(workflow.INQUIRY_UPDATED, code):
            found = await _visible(info, code)
            if found is not None:
                yield Inquiry.from_domain(found)


async def _visible(info: Info, code: str) -> records.Inquiry | None:
    """The inquiry as the caller may see it now (a fresh read: loaders cache per request)."""
    return await listing.visible(info.context.databases, info.context.principal, code)
