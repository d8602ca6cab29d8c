"""Compact JWS (RFC 7515) with Ed25519, for answers and status lists: PyJWT's JWS layer does
the encoding and the signature, with RFC 9864's `Ed25519` registered beside RFC 8037's `EdDSA`
(PyJWT knows only the latter) on the same OKP algorithm.

Verification is stricter than PyJWT alone: every segment must be canonical base64url (Python's
decoder ignores stray characters and the unused low bits of the last one, so a changed
character could otherwise decode to the same bytes), the header names a known key and no
`crit` extension, and the algorithm is one of the two Ed25519 names.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any

import jwt
from jwt.algorithms import OKPAlgorithm

from gateway.inquiries.keys import ALGORITHM, SigningKey, VerificationKeys

__all__ = ["ACCEPTED_ALGORITHMS", "MAX_TOKEN_CHARS", "NotAuthentic", "Verified", "sign", "verify"]

ACCEPTED_ALGORITHMS = (ALGORITHM, "EdDSA")
# A status list for a million answers compresses to a few kilobytes; nothing honest is longer.
MAX_TOKEN_CHARS = 1 << 20

_SEGMENT = re.compile(r"[A-Za-z0-9_-]*", re.ASCII)

_jws = jwt.PyJWS(algorithms=["EdDSA"])
_jws.register_algorithm(ALGORITHM, OKPAlgorithm())


class NotAuthentic(Exception):
    """The token was not signed by one of the given keys, or is not a well-formed compact JWS.
    The message says which, in words safe to show anyone."""


@dataclass(frozen=True, slots=True)
class Verified:
    kid: str
    algorithm: str
    header: dict[str, Any]
    payload: bytes


def sign(payload: bytes, key: SigningKey, *, typ: str | None = None) -> str:
    """A compact JWS over `payload` as given (the caller makes it canonical); the header holds
    alg, kid and, when given, typ, sorted and without whitespace."""
    headers: dict[str, Any] = {"kid": key.kid, "typ": typ}
    return _jws.encode(payload, key.private_key, algorithm=ALGORITHM, headers=headers)


def verify(token: str, keys: VerificationKeys, *, typ: str | None = None) -> Verified:
    """The header and the payload bytes of a token signed by one of `keys`; `typ` when given
    must match the header's exactly (explicit typing, RFC 8725 section 3.11)."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
        raise NotAuthentic("not a compact JWS")
    segments = token.split(".")
    if len(segments) != 3 or not all(_canonical_b64url(s) for s in segments):
        raise NotAuthentic("not a compact JWS")
    try:
        header = json.loads(_b64decode(segments[0]))
    except ValueError:
        raise NotAuthentic("not a compact JWS") from None
    if not isinstance(header, dict):
        raise NotAuthentic("not a compact JWS")
    algorithm = header.get("alg")
    if algorithm not in ACCEPTED_ALGORITHMS:
        raise NotAuthentic("not signed with Ed25519")
    if "crit" in header or "b64" in header or header.get("typ") != typ:
        raise NotAuthentic("not a token of this kind")
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise NotAuthentic("signed by an unknown key")
    public = keys.get(kid)
    if public is None:
        raise NotAuthentic("signed by an unknown key")
    try:
        decoded = _jws.decode_complete(token, key=public, algorithms=[algorithm])
    except jwt.PyJWTError:
        raise NotAuthentic("the signature does not match") from None
    return Verified(kid, algorithm, header, decoded["payload"])


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _canonical_b64url(segment: str) -> bool:
    if _SEGMENT.fullmatch(segment) is None or len(segment) % 4 == 1:
        return False
    decoded = _b64decode(segment)
    return base64.urlsafe_b64encode(decoded).rstrip(b"=").decode("ascii") == segment
