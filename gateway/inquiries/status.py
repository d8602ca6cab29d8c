"""Published status of answers, as an IETF OAuth Token Status List (draft-ietf-oauth-status-
list): a bit string of `bits` bits per answer, DEFLATE-compressed (zlib) and base64url-encoded,
inside a signed Status List Token (a JWT, typ statuslist+jwt); each answer's `status` claim
names its list (`uri`) and its place in it (`idx`). A verifier holding a recently fetched token
and the cached public keys checks an answer offline (`check`).

Two bits per answer, not one: the draft's status types are 0x00 VALID, 0x01 INVALID, 0x02
SUSPENDED, and 0x03 (with 0x0B-0x0F) application-specific. One bit would give VALID or INVALID
only, and a verifier must tell a REVOKED answer (0x01 INVALID: withdrawn, do not rely on it)
from a SUPERSEDED one (0x03: a newer answer for the same parcel and kind exists: ask for it),
as inquiry verification reports them. The list is mostly zeros and compresses to almost
nothing either way, so the second bit costs a few bytes. SUSPENDED is not used.

Bit order (the draft's section 4.1): entry i sits at bit (i * bits) of the byte array, counted
from the least significant bit of byte 0.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any

from gateway.inquiries import answers, jws
from gateway.inquiries.answers import Answer, NotAuthentic
from gateway.inquiries.keys import KeySet, VerificationKeys

__all__ = [
    "BITS",
    "STATUS_LIST_TYP",
    "AnswerStatus",
    "StatusList",
    "StatusUnavailable",
    "TokenStatus",
    "Verification",
    "check",
    "read_status_list_token",
    "sign_status_list",
]

BITS = 2
STATUS_LIST_TYP = "statuslist+jwt"
# Lists are padded to a multiple of this many entries, so that a list's length says little
# about how many answers were issued (the draft's advice on herd privacy).
MIN_ENTRIES = 16384
# A verifier's clock may be this far from the issuer's.
CLOCK_SKEW = dt.timedelta(minutes=5)


class TokenStatus(IntEnum):
    """The draft's status types, as answers use them."""

    VALID = 0x00
    REVOKED = 0x01  # the draft's INVALID
    SUPERSEDED = 0x03  # application-specific


class AnswerStatus(StrEnum):
    """What verification tells a reader, as the GraphQL contract names it."""

    VALID = "VALID"
    EXPIRED = "EXPIRED"
    SUPERSEDED = "SUPERSEDED"
    REVOKED = "REVOKED"


class StatusUnavailable(Exception):
    """The status list token cannot settle an answer's status (not authentic, expired, for
    another list, or too short): fetch a fresh one. The message is safe to show."""


@dataclass(frozen=True, slots=True)
class StatusList:
    """The decompressed byte array of a list with `bits` bits an entry."""

    bits: int
    data: bytes

    @classmethod
    def build(cls, statuses: Mapping[int, TokenStatus], size: int = 0) -> StatusList:
        """A list holding `statuses` (index → status; absent indices are VALID), at least
        `size` entries, padded to a multiple of MIN_ENTRIES."""
        needed = max([size, *(index + 1 for index in statuses)])
        entries = max(MIN_ENTRIES, -(-needed // MIN_ENTRIES) * MIN_ENTRIES)
        data = bytearray(entries * BITS // 8)
        for index, status in statuses.items():
            if index < 0:
                raise ValueError("status list indices are not negative")
            value = TokenStatus(status).value
            position = index * BITS
            data[position // 8] |= value << (position % 8)
        return cls(BITS, bytes(data))

    def __len__(self) -> int:
        return len(self.data) * 8 // self.bits

    def status(self, index: int) -> int:
        """The raw status value of entry `index` (IndexError past the end)."""
        if not 0 <= index < len(self):
            raise IndexError("index outside the status list")
        position = index * self.bits
        return (self.data[position // 8] >> (position % 8)) & ((1 << self.bits) - 1)

    def claim(self) -> dict[str, Any]:
        """The `status_list` claim: {"bits": ..., "lst": base64url(zlib(data))}."""
        compressed = zlib.compress(self.data, level=9)
        lst = base64.urlsafe_b64encode(compressed).rstrip(b"=").decode("ascii")
        return {"bits": self.bits, "lst": lst}

    @classmethod
    def from_claim(cls, claim: Mapping[str, Any]) -> StatusList:
        bits = claim.get("bits")
        lst = claim.get("lst")
        if bits not in (1, 2, 4, 8) or not isinstance(lst, str):
            raise ValueError("malformed status_list claim")
        compressed = base64.urlsafe_b64decode(lst + "=" * (-len(lst) % 4))
        # Bounded, so a hostile list cannot inflate itself into all of memory.
        inflater = zlib.decompressobj()
        data = inflater.decompress(compressed, 64 << 20)
        if inflater.unconsumed_tail or not inflater.eof:
            raise ValueError("status list too large or truncated")
        return cls(bits, data)


def sign_status_list(
    statuses: Mapping[int, TokenStatus],
    *,
    uri: str,
    issuer: str,
    keys: KeySet,
    now: dt.datetime,
    lifetime: dt.timedelta = dt.timedelta(days=1),
    ttl: dt.timedelta = dt.timedelta(hours=1),
    size: int = 0,
) -> str:
    """The Status List Token published at `uri`: valid for `lifetime` (exp), to be fetched
    again after `ttl` by a verifier that can."""
    issued = int(now.timestamp())
    claims = {
        "iss": issuer,
        "sub": uri,
        "iat": issued,
        "exp": issued + int(lifetime.total_seconds()),
        "ttl": int(ttl.total_seconds()),
        "status_list": StatusList.build(statuses, size).claim(),
    }
    return jws.sign(answers.canonical_json(claims), keys.current, typ=STATUS_LIST_TYP)


def read_status_list_token(
    token: str, keys: VerificationKeys, *, uri: str, now: dt.datetime
) -> StatusList:
    """The list inside a Status List Token, after the draft's checks: signed by one of `keys`,
    typ statuslist+jwt, `sub` equal to the answer's `uri`, issued, not expired."""
    try:
        verified = jws.verify(token, keys, typ=STATUS_LIST_TYP)
    except NotAuthentic as exc:
        raise StatusUnavailable(f"status list token: {exc}") from None
    try:
        claims = json.loads(verified.payload)
        subject, issued, expires = claims["sub"], claims["iat"], claims.get("exp")
        status_list = StatusList.from_claim(claims["status_list"])
    except (ValueError, KeyError, TypeError, AttributeError):
        raise StatusUnavailable("status list token: malformed") from None
    if subject != uri:
        raise StatusUnavailable("status list token: a list other than the answer's")
    moment = now.timestamp()
    if not isinstance(issued, int) or issued > moment + CLOCK_SKEW.total_seconds():
        raise StatusUnavailable("status list token: issued in the future")
    if expires is not None and (not isinstance(expires, int) or expires <= moment):
        raise StatusUnavailable("status list token: expired, fetch a fresh one")
    return status_list


@dataclass(frozen=True, slots=True)
class Verification:
    """A verifier's view of an answer: authentic or not, and if so its status."""

    authentic: bool
    status: AnswerStatus | None = None
    answer: Answer | None = None
    kid: str | None = None
    reason: str | None = None  # why not authentic, in words safe to show


def check(token: str, keys: VerificationKeys, status_token: str, now: dt.datetime) -> Verification:
    """Whether `token` is an authentic answer and, if so, its status at `now`, from a fetched
    Status List Token and cached keys alone (no network, no database).

    A withdrawn answer says so even after it would have expired (REVOKED, then SUPERSEDED,
    before EXPIRED): a reader of an old letter learns the most useful fact. StatusUnavailable
    when the status list cannot settle it."""
    try:
        verified = answers.verify(token, keys)
    except NotAuthentic as exc:
        return Verification(authentic=False, reason=str(exc))
    answer = verified.answer
    status_list = read_status_list_token(status_token, keys, uri=answer.status_uri, now=now)
    try:
        value = status_list.status(answer.status_index)
    except IndexError:
        raise StatusUnavailable("status list token: the answer's index is not in it") from None
    if value == TokenStatus.REVOKED:
        status = AnswerStatus.REVOKED
    elif value == TokenStatus.SUPERSEDED:
        status = AnswerStatus.SUPERSEDED
    elif value != TokenStatus.VALID:
        # SUSPENDED or a value this issuer never writes: not safe to call valid.
        status = AnswerStatus.REVOKED
    elif now + CLOCK_SKEW < answer.not_before:
        # The issuer sets nbf = iat: a verifier this far behind has a wrong clock.
        raise StatusUnavailable("the answer is not valid yet: check the verifier's clock")
    elif now >= answer.expires_at:
        status = AnswerStatus.EXPIRED
    else:
        status = AnswerStatus.VALID
    return Verification(True, status, answer, verified.kid)
