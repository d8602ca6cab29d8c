"""A citizen request's lifecycle in GraphQL: moving it along the table of transitions, replying
to the citizen, the citizen's rating, merging duplicates and splitting a request, and
`requestUpdated`, which tells the citizen's channel of every change.

Each change is one transaction on the contact database (schema/mutation.py), audited under
the caller and announced after it commits to the request's own tracking code and to its
followers' (a merged duplicate, a split request's parent). The domain is in
gateway/requests/lifecycle.py and merging.py.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Annotated

import strawberry

from gateway.context import Info
from gateway.errors import BadUserInput, NotFound
from gateway.guards.ratelimit import client_address
from gateway.inquiries.tracking import parse_tracking_code
from gateway.requests import lookup, merging, records, search
from gateway.requests.lifecycle import (
    REQUEST_UPDATED,
    Changed,
    RatingPolicy,
    RequestStatus,
    rate,
    reply,
    transition,
)
from gateway.schema.mutation import Change, change
from gateway.schema.node import from_global_id
from gateway.schema.requests import CitizenRequest, CitizenRequestStatus
from identifiers import InvalidIdentifier

TRANSITION = "Mutation.transitionCitizenRequest"
REPLY = "Mutation.replyToCitizenRequest"
RATE = "Mutation.rateCitizenRequest"
MERGE = "Mutation.mergeCitizenRequests"
SPLIT = "Mutation.splitCitizenRequest"


def _pk(value: str, field: str) -> int:
    type_name, pk = from_global_id(value, field=field)
    if type_name != "CitizenRequest":
        raise BadUserInput("Not a CitizenRequest id.", field=field)
    return pk


def _tracking_code(text: str) -> str:
    try:
        return parse_tracking_code(text)
    except (InvalidIdentifier, ValueError) as exc:
        raise BadUserInput(str(exc), field="trackingCode") from None


def _rule(info: Info) -> search.Rule:
    return search.rule(info.context.principal)


def _client_address(info: Info) -> str:
    """The caller's address as the rate limits name it (one spelling per address)."""
    return client_address(info.context.request.scope)


def _announce(unit: Change, *changes: Changed) -> None:
    for changed in changes:
        for audience, event in changed.events():
            unit.announce(REQUEST_UPDATED, audience, event)


@strawberry.input(description="A transition of a citizen request (تغییر وضعیت).")
class TransitionCitizenRequestInput:
    id: strawberry.ID = strawberry.field(description="The request's global id.")
    to: CitizenRequestStatus = strawberry.field(
        description="The status to move it to; only the lifecycle's allowed transitions are "
        "made (see the README's table), anything else is a CONFLICT naming the current status."
    )
    note: str = strawberry.field(
        description="Why (1 to 2,000 characters): recorded in the request's history."
    )


@strawberry.input(description="A reply to the citizen (پاسخ به شهروند).")
class ReplyToCitizenRequestInput:
    id: strawberry.ID = strawberry.field(description="The request's global id.")
    body: str = strawberry.field(description="The reply, in Persian (1 to 4,000 characters).")


@strawberry.input(description="The citizen's satisfaction rating (نظرسنجی) of a resolved request.")
class RateCitizenRequestInput:
    tracking_code: str = strawberry.field(description="The request's tracking code (کد پیگیری).")
    mobile_last4: str = strawberry.field(
        description="The last four digits of the mobile number it was registered with."
    )
    rating: int = strawberry.field(
        description="1 (very dissatisfied) to 5 (very satisfied); a low rating reopens it."
    )
    comment: str | None = strawberry.field(default=None, description="What the citizen adds.")


@strawberry.input(description="Two requests about the same thing, merged into one (ادغام).")
class MergeCitizenRequestsInput:
    survivor_id: strawberry.ID = strawberry.field(description="The request that stays open.")
    duplicate_id: strawberry.ID = strawberry.field(
        description="The duplicate: closed into the survivor, its citizen following it."
    )
    note: str = strawberry.field(description="Why they are the same (1 to 2,000 characters).")


@strawberry.input(description="One child of a split: the department that answers it.")
class CitizenRequestPartInput:
    department: str = strawberry.field(description="The department, e.g. transport.")
    description: str | None = strawberry.field(
        default=None, description="What this department is asked (default: the request's words)."
    )


@strawberry.input(description="A request split into child requests for departments (تفکیک).")
class SplitCitizenRequestInput:
    id: strawberry.ID = strawberry.field(description="The request to split; it stays as it is.")
    parts: list[CitizenRequestPartInput] = strawberry.field(
        description="2 to 10 parts, each for another department."
    )
    note: str = strawberry.field(description="Why (1 to 2,000 characters).")


@strawberry.type
class RequestLifecycleMutation:
    @strawberry.mutation(
        description="Moves a citizen request to another status, with a note in its history, "
        "for operators, the 137 centre and the department it is assigned to. NOT_FOUND for a "
        "request the caller may not see, FORBIDDEN for one it sees but does not handle "
        "(scope requests:handle), CONFLICT naming the current status (extensions.status) for "
        "a transition the lifecycle does not allow."
    )
    async def transition_citizen_request(
        self,
        info: Info,
        input: Annotated[
            TransitionCitizenRequestInput,
            strawberry.argument(description="The request, the status to move it to, and why."),
        ],
    ) -> CitizenRequest:
        context = info.context
        request_id = _pk(input.id, "id")
        to = RequestStatus(input.to.name)
        async with change(info, records.DATABASE) as unit:
            connection = await unit.session.connection()
            changed = await transition(
                connection,
                context.principal,
                request_id,
                to,
                input.note,
                context.wall_clock(),
                where=_rule(info),
            )
            unit.audit(TRANSITION, "CitizenRequest", request_id)
            _announce(unit, changed)
        return CitizenRequest.from_domain(changed.request)

    @strawberry.mutation(
        description="Sends the citizen a reply, recorded with the request (not to a CLOSED "
        "one: CONFLICT); the same callers as a transition."
    )
    async def reply_to_citizen_request(
        self,
        info: Info,
        input: Annotated[
            ReplyToCitizenRequestInput,
            strawberry.argument(description="The request and the reply."),
        ],
    ) -> CitizenRequest:
        context = info.context
        request_id = _pk(input.id, "id")
        async with change(info, records.DATABASE) as unit:
            connection = await unit.session.connection()
            _, changed = await reply(
                connection,
                context.principal,
                request_id,
                input.body,
                context.wall_clock(),
                where=_rule(info),
            )
            unit.audit(REPLY, "CitizenRequest", request_id)
            _announce(unit, changed)
        return CitizenRequest.from_domain(changed.request)

    @strawberry.mutation(
        description="The citizen rates a RESOLVED request, proven by its tracking code and "
        "the mobile's last four digits (no key needed): a rating at or below "
        "GATEWAY_REQUEST_REOPEN_RATING_MAX reopens it (REOPENED, with a new deadline), any "
        "other closes it. NOT_FOUND alike for a wrong code and wrong digits (rate limited as "
        "lookups are: RATE_LIMITED); CONFLICT for a request not RESOLVED."
    )
    async def rate_citizen_request(
        self,
        info: Info,
        input: Annotated[
            RateCitizenRequestInput,
            strawberry.argument(description="The citizen's proof and rating."),
        ],
    ) -> CitizenRequest:
        context = info.context
        code = _tracking_code(input.tracking_code)
        last4 = lookup.parse_last4(input.mobile_last4)
        throttle = lookup.throttle_for(context.settings)
        await throttle.admit(_client_address(info), code)
        policy = RatingPolicy(reopen_at_most=context.settings.request_reopen_rating_max)
        try:
            async with change(info, records.DATABASE) as unit:
                connection = await unit.session.connection()
                changed = await rate(
                    connection, code, last4, input.rating, input.comment, context.wall_clock(),
                    policy,
                )  # fmt: skip
                unit.audit(RATE, "CitizenRequest", changed.request.id)
                _announce(unit, changed)
        except NotFound:
            await throttle.failed(code)
            raise
        return CitizenRequest.from_domain(changed.request)

    @strawberry.mutation(
        description="Merges a duplicate into the surviving request: the duplicate is CLOSED "
        "into it, its citizen hears the survivor's updates through their own tracking code, "
        "and both histories stay. Returns the survivor. BAD_USER_INPUT for a request merged "
        "into itself, CONFLICT for one merged or finished already."
    )
    async def merge_citizen_requests(
        self,
        info: Info,
        input: Annotated[
            MergeCitizenRequestsInput,
            strawberry.argument(description="The surviving request, the duplicate, and why."),
        ],
    ) -> CitizenRequest:
        context = info.context
        survivor_id = _pk(input.survivor_id, "survivorId")
        duplicate_id = _pk(input.duplicate_id, "duplicateId")
        async with change(info, records.DATABASE) as unit:
            connection = await unit.session.connection()
            kept, closed = await merging.merge(
                connection,
                context.principal,
                survivor_id,
                duplicate_id,
                input.note,
                context.wall_clock(),
                where=_rule(info),
            )
            unit.audit(MERGE, "CitizenRequest", duplicate_id)
            _announce(unit, kept, closed)
        return CitizenRequest.from_domain(kept.request)

    @strawberry.mutation(
        description="Splits a request into child requests, one per department, each ASSIGNED "
        "with the service's deadline; the parent stays and hears its children's updates. "
        "Returns the children."
    )
    async def split_citizen_request(
        self,
        info: Info,
        input: Annotated[
            SplitCitizenRequestInput, strawberry.argument(description="The request and its parts.")
        ],
    ) -> list[CitizenRequest]:
        context = info.context
        request_id = _pk(input.id, "id")
        parts = [merging.Part(part.department, part.description) for part in input.parts]
        async with change(info, records.DATABASE) as unit:
            connection = await unit.session.connection()
            split = await merging.split(
                connection,
                context.principal,
                request_id,
                parts,
                input.note,
                context.wall_clock(),
                where=_rule(info),
            )
            unit.audit(SPLIT, "CitizenRequest", request_id)
            _announce(unit, split.parent)
        return [CitizenRequest.from_domain(child) for child in split.children]


@strawberry.type
class RequestLifecycleSubscription:
    @strawberry.subscription(
        description="A citizen request each time it changes status, is replied to, merged or "
        "split: for the citizen (with mobileLast4) and whoever may see it (the registering "
        "portal or partner app, the department, operators). A merged duplicate's subscribers "
        "hear the surviving request's changes, and a split request's its children's; those "
        "come without the other citizen's name and mobile. Ends at once, with nothing, for a "
        "request the caller may not see."
    )
    async def request_updated(
        self,
        info: Info,
        tracking_code: Annotated[
            str, strawberry.argument(description="The request's tracking code (کد پیگیری).")
        ],
        mobile_last4: Annotated[
            str | None,
            strawberry.argument(
                description="The citizen's proof: the last four digits of the mobile number "
                "the request was registered with."
            ),
        ] = None,
    ) -> AsyncGenerator[CitizenRequest, None]:
        context = info.context
        code = _tracking_code(tracking_code)
        last4 = None if mobile_last4 is None else lookup.parse_last4(mobile_last4)
        if last4 is not None:
            throttle = lookup.throttle_for(context.settings)
            await throttle.admit(_client_address(info), code)
            if await _own(info, code, last4) is None:
                await throttle.failed(code)
                return
        elif await _own(info, code, None) is None:
            return
        async for event in context.events.listen(REQUEST_UPDATED, code):
            own = await _own(info, code, last4)
            if own is None:  # no longer the caller's to see (erased, say)
                return
            if event.tracking_code == code:
                yield CitizenRequest.from_domain(own)
                continue
            followed = await _followed(info, own, event.tracking_code)
            if followed is not None:
                yield CitizenRequest.from_domain(followed)


async def _own(info: Info, code: str, last4: str | None) -> records.CitizenRequest | None:
    """The request as the caller may see it now (a fresh read: loaders cache per request)."""
    context = info.context
    if last4 is not None:
        return await lookup.find_for_citizen(context.databases, code, last4)
    return await search.visible(context.databases, context.principal, code)


async def _followed(
    info: Info, follower: records.CitizenRequest, code: str
) -> records.CitizenRequest | None:
    """The request `follower` follows, by its tracking code: with its citizen's name and
    mobile only for a caller whose row rule shows it anyway."""
    return await search.followed(info.context.databases, info.context.principal, follower, code)
