"""The municipality's signed answer to an inquiry: a compact JWS (Ed25519) over a canonical
JSON payload (keys sorted, no whitespace, UTF-8), small enough to print as a QR code.

Claims (short names, because every byte is printed inside the QR code):

    iss     issuer: the municipality (configuration)
    jti     answer id
    tc      tracking code (16 digits, gateway.inquiries.tracking)
    k       kind, the purpose the answer is valid for: PT property transfer, MG mortgage,
            PS property status (KIND_CODES)
    p       the requesting partner (organisation code)
    rc, rp  the property's keys: renewal code, registry plate (either or both)
    a, c    applicant and counterparty: the last four digits of their national IDs (never more)
    v       verdict: C clear, N not clear
    ck      checks, each "name:authority:outcome:age[:role]": the check's code, the department
            or agency that answered it, P, F or I (a statement), how many seconds before
            `iat` its data was read, and for a manual check the approving officer's role
    o       outstanding amounts, each "due:period:rials" (omitted when none)
    iat, nbf, exp   issued, not before, expires (seconds since the epoch, RFC 7519)
    sup     the id of the answer this one supersedes (omitted when none)
    status  where its status is published: {"status_list": {"idx": n, "uri": "..."}}
            (draft-ietf-oauth-status-list, gateway.inquiries.status)

The key id is the header's `kid`. The header has no `typ`: answers are told from status list
tokens (typ statuslist+jwt) by their claims, and the dozen characters are worth a module row.

Identities are masked, not hashed. A national ID has about 10^9 valid values, so even a salted
hash is reversed in seconds by anyone with the letter (the salt is printed beside it), which
would print the ID in all but name; the last four digits leave a million candidates, identify
nobody, and still let a holder check the ID against it (`national_code_matches`), as a notary
does with the person in front of them.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from gateway.inquiries import jws
from gateway.inquiries.keys import KeySet, VerificationKeys
from gateway.inquiries.tracking import parse_tracking_code
from identifiers import (
    InvalidIdentifier,
    RegistryPlate,
    RenewalCode,
    parse_national_code,
    parse_registry_plate,
    parse_renewal_code,
)

__all__ = [
    "KIND_CODES",
    "Answer",
    "AnswerCheck",
    "NotAuthentic",
    "Outcome",
    "OutstandingDue",
    "Verdict",
    "VerifiedAnswer",
    "canonical_json",
    "mask_national_code",
    "national_code_matches",
    "new_answer_id",
    "sign",
    "verify",
]

NotAuthentic = jws.NotAuthentic

# A new kind takes a row here: its two letters are what a verifier reads as the purpose.
KIND_CODES: dict[str, str] = {
    "PROPERTY_TRANSFER": "PT",
    "MORTGAGE": "MG",
    "PROPERTY_STATUS": "PS",
}
_KINDS_BY_CODE = {code: kind for kind, code in KIND_CODES.items()}

# Codes of checks, authorities, dues and roles go inside ":"-joined strings.
_CODE = re.compile(r"[a-z0-9_]{1,16}", re.ASCII)
_LAST_FOUR = re.compile(r"[0-9]{4}", re.ASCII)
_ANSWER_ID = re.compile(r"[A-Za-z0-9_-]{1,32}", re.ASCII)
_ID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base32: no I, L, O, U


class Verdict(StrEnum):
    CLEAR = "C"
    NOT_CLEAR = "N"


class Outcome(StrEnum):
    PASS = "P"
    FAIL = "F"
    INFO = "I"  # a statement: facts reported, nothing judged (PROPERTY_STATUS)


def _utc_seconds(moment: dt.datetime, name: str) -> dt.datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{name} must be an aware datetime")
    return moment.astimezone(dt.UTC).replace(microsecond=0)


def _code(value: str, name: str) -> None:
    if _CODE.fullmatch(value) is None:
        raise ValueError(f"{name} must be 1-16 of a-z, 0-9 and _")


@dataclass(frozen=True, slots=True)
class AnswerCheck:
    """One check as the answer states it; `read_at` is when its data was read (an agency's
    reply, a department's database, an officer's decision)."""

    name: str
    authority: str
    outcome: Outcome
    read_at: dt.datetime
    officer_role: str | None = None  # manual checks: the approving officer's role

    def __post_init__(self) -> None:
        _code(self.name, "check name")
        _code(self.authority, "check authority")
        if self.officer_role is not None:
            _code(self.officer_role, "officer role")
        object.__setattr__(self, "outcome", Outcome(self.outcome))
        object.__setattr__(self, "read_at", _utc_seconds(self.read_at, "read_at"))


@dataclass(frozen=True, slots=True)
class OutstandingDue:
    kind: str  # the due's code, e.g. "renewal_duty"
    period: int  # the Solar Hijri year it was assessed for
    amount: int  # rials

    def __post_init__(self) -> None:
        _code(self.kind, "due kind")
        if self.period < 0 or self.amount <= 0:
            raise ValueError("an outstanding due has a period and a positive amount")


@dataclass(frozen=True, slots=True)
class Answer:
    issuer: str
    answer_id: str
    tracking_code: str
    kind: str  # a key of KIND_CODES
    partner: str
    renewal_code: RenewalCode | None
    registry_plate: RegistryPlate | None
    applicant: str  # last four digits of the national ID (mask_national_code)
    counterparty: str | None
    verdict: Verdict
    checks: tuple[AnswerCheck, ...]
    outstanding: tuple[OutstandingDue, ...]
    issued_at: dt.datetime
    not_before: dt.datetime
    expires_at: dt.datetime
    supersedes: str | None
    status_uri: str
    status_index: int

    def __post_init__(self) -> None:
        if self.kind not in KIND_CODES:
            raise ValueError("unknown inquiry kind")
        if not self.issuer or not self.partner or not self.status_uri:
            raise ValueError("issuer, partner and status_uri are required")
        for answer_id in (self.answer_id, self.supersedes):
            if answer_id is not None and _ANSWER_ID.fullmatch(answer_id) is None:
                raise ValueError("answer ids are 1-32 URL-safe characters")
        parse_tracking_code(self.tracking_code)
        if self.renewal_code is None and self.registry_plate is None:
            raise ValueError("an answer names the property by renewal code or registry plate")
        for person in (self.applicant, self.counterparty):
            # Four digits and nothing more: a full national ID never enters an answer.
            if person is not None and _LAST_FOUR.fullmatch(person) is None:
                raise ValueError("applicant and counterparty are the last four digits only")
        object.__setattr__(self, "verdict", Verdict(self.verdict))
        if not self.checks:
            raise ValueError("an answer states at least one check")
        failed = any(check.outcome is Outcome.FAIL for check in self.checks)
        if failed == (self.verdict is Verdict.CLEAR):
            raise ValueError("the verdict is CLEAR exactly when no check failed")
        for name in ("issued_at", "not_before", "expires_at"):
            object.__setattr__(self, name, _utc_seconds(getattr(self, name), name))
        if not self.not_before < self.expires_at or self.expires_at <= self.issued_at:
            raise ValueError("an answer expires after it is issued and becomes valid")
        if any(check.read_at > self.issued_at for check in self.checks):
            raise ValueError("a check's data is read before the answer is issued")
        if self.status_index < 0:
            raise ValueError("status_index is not negative")

    def claims(self) -> dict[str, Any]:
        """The payload's claims, short names (module docstring)."""
        issued = int(self.issued_at.timestamp())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "jti": self.answer_id,
            "tc": self.tracking_code,
            "k": KIND_CODES[self.kind],
            "p": self.partner,
            "a": self.applicant,
            "v": self.verdict.value,
            "ck": [_check_claim(check, issued) for check in self.checks],
            "iat": issued,
            "nbf": int(self.not_before.timestamp()),
            "exp": int(self.expires_at.timestamp()),
            "status": {"status_list": {"idx": self.status_index, "uri": self.status_uri}},
        }
        if self.renewal_code is not None:
            claims["rc"] = str(self.renewal_code)
        if self.registry_plate is not None:
            claims["rp"] = str(self.registry_plate)
        if self.counterparty is not None:
            claims["c"] = self.counterparty
        if self.outstanding:
            claims["o"] = [f"{due.kind}:{due.period}:{due.amount}" for due in self.outstanding]
        if self.supersedes is not None:
            claims["sup"] = self.supersedes
        return claims

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> Answer:
        """The answer a payload states; ValueError (or KeyError, TypeError) when it is not one."""
        issued_epoch = _int(claims["iat"])
        issued = _epoch(issued_epoch)
        status = claims["status"]["status_list"]
        renewal = claims.get("rc")
        plate = claims.get("rp")
        return cls(
            issuer=_str(claims["iss"]),
            answer_id=_str(claims["jti"]),
            tracking_code=_str(claims["tc"]),
            kind=_KINDS_BY_CODE[_str(claims["k"])],
            partner=_str(claims["p"]),
            renewal_code=None if renewal is None else parse_renewal_code(_str(renewal)),
            registry_plate=None if plate is None else parse_registry_plate(_str(plate)),
            applicant=_str(claims["a"]),
            counterparty=None if claims.get("c") is None else _str(claims["c"]),
            verdict=Verdict(_str(claims["v"])),
            checks=tuple(_check_from_claim(_str(c), issued_epoch) for c in claims["ck"]),
            outstanding=tuple(_due_from_claim(_str(o)) for o in claims.get("o", ())),
            issued_at=issued,
            not_before=_epoch(_int(claims["nbf"])),
            expires_at=_epoch(_int(claims["exp"])),
            supersedes=None if claims.get("sup") is None else _str(claims["sup"]),
            status_uri=_str(status["uri"]),
            status_index=_int(status["idx"]),
        )


@dataclass(frozen=True, slots=True)
class VerifiedAnswer:
    """An authentic answer: which key signed it (and whether that key is retired), and what
    it says. Whether it is still VALID is gateway.inquiries.status's question."""

    answer: Answer
    kid: str
    algorithm: str
    retired_key: bool


def canonical_json(claims: dict[str, Any]) -> bytes:
    return json.dumps(
        claims, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def sign(answer: Answer, keys: KeySet) -> str:
    """The compact JWS of the answer, signed with the key set's current key."""
    return jws.sign(canonical_json(answer.claims()), keys.current)


def verify(token: str, keys: VerificationKeys) -> VerifiedAnswer:
    """The answer inside `token` if one of `keys` signed it; NotAuthentic otherwise (forged,
    altered by one byte, signed by an unknown key, or not an answer at all)."""
    verified = jws.verify(token, keys)
    try:
        claims = json.loads(verified.payload.decode("utf-8"))
        if not isinstance(claims, dict):
            raise TypeError("not an object")
        answer = Answer.from_claims(claims)
        # One answer has one encoding: what was signed is exactly what the answer re-encodes
        # to, so no claim went unread and no field was written two ways.
        if canonical_json(answer.claims()) != verified.payload:
            raise ValueError("not canonical")
    except (ValueError, KeyError, TypeError, InvalidIdentifier):
        raise NotAuthentic("not an inquiry answer") from None
    return VerifiedAnswer(answer, verified.kid, verified.algorithm, verified.kid in keys.retired)


def mask_national_code(national_code: str) -> str:
    """The last four digits of a valid national ID: all an answer ever holds of it."""
    return parse_national_code(national_code)[-4:]


def national_code_matches(national_code: str, masked: str) -> bool:
    """Whether a national ID (Persian digits accepted) agrees with an answer's masked one."""
    try:
        return mask_national_code(national_code) == masked
    except InvalidIdentifier:
        return False


def new_answer_id() -> str:
    """Ten characters of Crockford base32 (50 bits): unique enough to be a database key that
    the caller's unique index keeps unique."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(10))


def _check_claim(check: AnswerCheck, issued: int) -> str:
    age = issued - int(check.read_at.timestamp())
    parts = [check.name, check.authority, check.outcome.value, str(age)]
    if check.officer_role is not None:
        parts.append(check.officer_role)
    return ":".join(parts)


def _check_from_claim(text: str, issued: int) -> AnswerCheck:
    parts = text.split(":")
    if len(parts) not in (4, 5) or not parts[3].isascii() or not parts[3].isdigit():
        raise ValueError("malformed check")
    role = parts[4] if len(parts) == 5 else None
    read_at = _epoch(issued - int(parts[3]))
    return AnswerCheck(parts[0], parts[1], Outcome(parts[2]), read_at, role)


def _due_from_claim(text: str) -> OutstandingDue:
    parts = text.split(":")
    if len(parts) != 3 or not all(p.isascii() and p.isdigit() for p in parts[1:]):
        raise ValueError("malformed outstanding due")
    return OutstandingDue(parts[0], int(parts[1]), int(parts[2]))


def _epoch(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("expected an integer")
    return value


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return value
