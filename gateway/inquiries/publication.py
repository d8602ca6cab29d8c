"""What the municipality publishes about its answers, and what it tells whoever holds one: the
signed status list every answer names, an answer verified against the database, and a decided
inquiry with its answer for the letter and the public verification page (served by
gateway/edge/inquiries.py; GraphQL's verifyInquiry calls `verify_answer` too).

The status list carries only what an answer's holder may learn from it anyway (withdrawn or
not, by index). It is short-lived (`STATUS_LIST_LIFETIME`) so that a revocation reaches every
verifier within minutes, and rebuilt at most every `REBUILD_AFTER` however many verifiers ask
(`StatusListCache`). Building it reads only the answers that are not VALID, plus the highest
index: the others are the list's zeros. On SQLite, with 1% of answers withdrawn, 100,000
answered inquiries build in about 0.04 s and a million in about 0.5 s, nearly all of it the
scan of the table (compressing and signing take a few milliseconds); the token stays a few
kilobytes.
"""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.gateway import InquiryCheckRecord, InquiryRecord
from gateway.errors import Conflict
from gateway.inquiries import answers, jws, status
from gateway.inquiries.answering import CHECK_CODES
from gateway.inquiries.answers import NotAuthentic
from gateway.inquiries.config import InquirySettings
from gateway.inquiries.status import AnswerStatus, TokenStatus, Verification

__all__ = [
    "REBUILD_AFTER",
    "STATUS_LIST_LIFETIME",
    "STATUS_LIST_TTL",
    "StatusListCache",
    "letter_reasons",
    "published_answer",
    "status_list_token",
    "verify_answer",
]

# A verifier may rely on a fetched list this long (exp), and should fetch it again after
# STATUS_LIST_TTL: a revocation is seen within minutes, by every verifier.
STATUS_LIST_LIFETIME = dt.timedelta(minutes=10)
STATUS_LIST_TTL = dt.timedelta(minutes=5)
# How long one built token is served before the next request builds it again.
REBUILD_AFTER = dt.timedelta(seconds=30)

DECIDED = "DECIDED"

_ANSWERED = InquiryRecord.answer_id.is_not(None)
_REVOKED = InquiryRecord.revoked_at.is_not(None)
# Only the answers that are not VALID: the rest are the list's zeros.
_WITHDRAWN = select(InquiryRecord.id, _REVOKED).where(
    _ANSWERED, or_(_REVOKED, InquiryRecord.superseded_by.is_not(None))
)
_HIGHEST_INDEX = select(func.max(InquiryRecord.id)).where(_ANSWERED)
_BY_ANSWER_ID = select(
    InquiryRecord.tracking_code, InquiryRecord.revoked_at, InquiryRecord.superseded_by
)


async def status_list_token(
    session: AsyncSession, config: InquirySettings, now: dt.datetime
) -> str:
    """The signed Status List Token over every answer (its index is its inquiry's id):
    REVOKED once revoked (even if also superseded), SUPERSEDED once a newer answer replaces
    it, VALID otherwise."""
    statuses = {
        index: TokenStatus.REVOKED if revoked else TokenStatus.SUPERSEDED
        for index, revoked in await session.execute(_WITHDRAWN)
    }
    highest = (await session.execute(_HIGHEST_INDEX)).scalar_one_or_none()
    return status.sign_status_list(
        statuses,
        uri=config.status_uri,
        issuer=config.issuer,
        keys=config.keys,
        now=now,
        lifetime=STATUS_LIST_LIFETIME,
        ttl=STATUS_LIST_TTL,
        size=0 if highest is None else highest + 1,
    )


class StatusListCache:
    """The status list token as served: built once per `max_age` for a configuration, by one
    request while the others wait for it, so that a crowd of verifiers costs one build."""

    def __init__(self, max_age: dt.timedelta = REBUILD_AFTER) -> None:
        self.max_age = max_age
        self._built: tuple[InquirySettings, dt.datetime, str] | None = None
        self._lock = asyncio.Lock()

    def _fresh(self, config: InquirySettings, now: dt.datetime) -> str | None:
        if self._built is None:
            return None
        built_for, built_at, token = self._built
        # A clock set back is not a reason to serve an old list for longer.
        if built_for is not config or not built_at <= now < built_at + self.max_age:
            return None
        return token

    async def token(self, session: AsyncSession, config: InquirySettings, now: dt.datetime) -> str:
        """The cached token, or a new one (`session` is used only then)."""
        token = self._fresh(config, now)
        if token is not None:
            return token
        async with self._lock:
            token = self._fresh(config, now)  # built while this request waited
            if token is None:
                token = await status_list_token(session, config, now)
                self._built = (config, now, token)
            return token


async def verify_answer(
    token: str, session: AsyncSession, config: InquirySettings, now: dt.datetime
) -> Verification:
    """Whether `token` is an answer this gateway signed and still holds, and if so its status
    at `now`: REVOKED, then SUPERSEDED (a withdrawn answer says so even after it would have
    expired), then EXPIRED, else VALID. Anything else is simply not authentic, with a reason
    safe to show anyone."""
    if len(token) > jws.MAX_TOKEN_CHARS or not token.isascii():
        return Verification(authentic=False, reason="not a compact JWS")
    try:
        verified = answers.verify(token, config.keys.verification_keys)
    except NotAuthentic as exc:
        return Verification(authentic=False, reason=str(exc))
    answer = verified.answer
    found = (
        await session.execute(_BY_ANSWER_ID.where(InquiryRecord.answer_id == answer.answer_id))
    ).one_or_none()
    if found is None or found.tracking_code != answer.tracking_code:
        # Signed with a key this gateway publishes, yet not an answer it issued: another
        # deployment sharing the key, or a database restored from before it was issued.
        return Verification(authentic=False, reason="not an answer issued by this gateway")
    if found.revoked_at is not None:
        answer_status = AnswerStatus.REVOKED
    elif found.superseded_by is not None:
        answer_status = AnswerStatus.SUPERSEDED
    elif now >= answer.expires_at:
        answer_status = AnswerStatus.EXPIRED
    else:
        answer_status = AnswerStatus.VALID
    return Verification(True, answer_status, answer, verified.kid)


async def published_answer(
    session: AsyncSession, tracking_code: str, condition: ColumnElement[bool]
) -> tuple[InquiryRecord, str] | None:
    """The decided inquiry with this tracking code (16 ASCII digits) and its answer, among
    those `condition` (a row rule's, or true() for the public) lets the caller see; None when
    there is none. An inquiry the caller sees that is not decided yet is a Conflict: the
    caller already knows it exists."""
    inquiry = (
        await session.execute(
            select(InquiryRecord).where(InquiryRecord.tracking_code == tracking_code, condition)
        )
    ).scalar_one_or_none()
    if inquiry is None:
        return None
    if inquiry.status != DECIDED or inquiry.answer is None:
        raise Conflict(
            "The inquiry is not decided yet: its answer and letter come with the verdict."
        )
    return inquiry, inquiry.answer


async def letter_reasons(session: AsyncSession, inquiry: InquiryRecord) -> dict[str, str]:
    """Each check's reasons as the letter prints them, by the code the answer names the check
    with (gateway/inquiries/answering.py): Persian, the English after it. The inquiry was
    read under its row rule; its checks' reasons are part of its answer."""
    rows = await session.execute(
        select(InquiryCheckRecord.name, InquiryCheckRecord.reasons)
        .where(InquiryCheckRecord.inquiry_id == inquiry.id)
        .order_by(InquiryCheckRecord.id)
    )
    reasons: dict[str, list[str]] = {}
    for name, texts in rows:
        code = CHECK_CODES.get(name)
        if code is None or not texts:
            continue
        reasons.setdefault(code, []).extend(f"{text['fa']} ({text['en']})" for text in texts)
    return {code: "؛ ".join(texts) for code, texts in reasons.items()}
