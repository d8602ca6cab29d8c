"""WS-Security UsernameToken checks (PasswordDigest, freshness, replay) for the SOAP agencies."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from lxml import etree

from sandbox.soap import (
    AUTHENTICATION_FAILED,
    MESSAGE_EXPIRED,
    NONCE_REPLAYED,
    SoapFault,
)

WSSE_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
_PROFILE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
PASSWORD_DIGEST = f"{_PROFILE}#PasswordDigest"
PASSWORD_TEXT = f"{_PROFILE}#PasswordText"

MAX_AGE = dt.timedelta(minutes=5)
# Created may run this far ahead of our clock before it counts as "in the future".
MAX_CLOCK_SKEW = dt.timedelta(seconds=30)
# Nonces are remembered for MAX_AGE (older tokens are refused anyway); past this many the
# oldest are forgotten first, so memory stays bounded under any load.
NONCE_CAPACITY = 100_000

# Demo credentials; each is overridden by SANDBOX_<AGENCY>_USERNAME / SANDBOX_<AGENCY>_PASSWORD.
DEMO_USERNAME = "urmia-municipality"
DEMO_PASSWORDS = {
    "land_registry": "demo-land-registry-secret",
    "civil_registry": "demo-civil-registry-secret",
    "bank": "demo-bank-secret",
}


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)

    @classmethod
    def from_env(cls, agency: str) -> Credentials:
        prefix = f"SANDBOX_{agency.upper()}_"
        return cls(
            username=os.environ.get(f"{prefix}USERNAME") or DEMO_USERNAME,
            password=os.environ.get(f"{prefix}PASSWORD") or DEMO_PASSWORDS[agency],
        )


def password_digest(nonce: bytes, created: str, password: str) -> str:
    """Base64(SHA-1(nonce + created + password)), as the UsernameToken profile defines it."""
    raw = hashlib.sha1(nonce + created.encode() + password.encode()).digest()
    return base64.b64encode(raw).decode("ascii")


def security_header(
    username: str,
    password: str,
    *,
    nonce: bytes | None = None,
    created: dt.datetime | None = None,
    digest: bool = True,
) -> etree._Element:
    """A client's wsse:Security header block, for callers that build envelopes by hand."""
    security = etree.Element(f"{{{WSSE_NS}}}Security", nsmap={"wsse": WSSE_NS, "wsu": WSU_NS})
    token = etree.SubElement(security, f"{{{WSSE_NS}}}UsernameToken")
    etree.SubElement(token, f"{{{WSSE_NS}}}Username").text = username
    if not digest:
        element = etree.SubElement(token, f"{{{WSSE_NS}}}Password", Type=PASSWORD_TEXT)
        element.text = password
        return security
    nonce = os.urandom(16) if nonce is None else nonce
    stamp = (created or utc_now()).astimezone(dt.UTC).replace(microsecond=0)
    created_text = stamp.isoformat().replace("+00:00", "Z")
    element = etree.SubElement(token, f"{{{WSSE_NS}}}Password", Type=PASSWORD_DIGEST)
    element.text = password_digest(nonce, created_text, password)
    etree.SubElement(token, f"{{{WSSE_NS}}}Nonce").text = base64.b64encode(nonce).decode()
    etree.SubElement(token, f"{{{WSU_NS}}}Created").text = created_text
    return security


class NonceCache:
    """The nonces seen within the freshness window, to refuse a replayed token."""

    def __init__(self, window: dt.timedelta = MAX_AGE, capacity: int = NONCE_CAPACITY) -> None:
        self.window = window
        self.capacity = capacity
        self._seen: OrderedDict[tuple[str, bytes], dt.datetime] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def first_use(self, username: str, nonce: bytes, now: dt.datetime) -> bool:
        """Record the nonce; False when it was already used within the window."""
        while self._seen:
            key, seen_at = next(iter(self._seen.items()))
            if now - seen_at <= self.window:
                break
            del self._seen[key]
        key = (username, nonce)
        if key in self._seen:
            return False
        self._seen[key] = now
        while len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
        return True


class UsernameTokenGuard:
    """Checks the wsse:Security header of a request against one agency's credentials."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        required: bool,
        clock: Callable[[], dt.datetime] = utc_now,
        nonces: NonceCache | None = None,
    ) -> None:
        self.credentials = credentials
        self.required = required
        self.clock = clock
        self.nonces = nonces or NonceCache()

    def authenticate(self, header: etree._Element | None) -> str | None:
        """The authenticated username, or None when no token was sent and none is required."""
        token = None
        if header is not None:
            token = header.find(f"{{{WSSE_NS}}}Security/{{{WSSE_NS}}}UsernameToken")
        if token is None:
            if self.required:
                raise _failed("a WS-Security UsernameToken is required")
            return None
        username = _text(token, f"{{{WSSE_NS}}}Username")
        password = token.find(f"{{{WSSE_NS}}}Password")
        nonce_text = _text(token, f"{{{WSSE_NS}}}Nonce")
        created = _text(token, f"{{{WSU_NS}}}Created")
        if password is None or not username:
            raise _failed("the UsernameToken needs a Username and a Password")
        # An absent Type means PasswordText, which a registry does not accept in the clear.
        if password.get("Type", PASSWORD_TEXT) != PASSWORD_DIGEST:
            raise _failed("the Password must be a PasswordDigest")
        if not nonce_text or not created:
            raise _failed("a PasswordDigest needs a Nonce and a Created time")
        try:
            nonce = base64.b64decode(nonce_text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise _failed("the Nonce is not Base64") from exc
        expected = password_digest(nonce, created, self.credentials.password)
        # Compare both, always, so that timing does not tell a wrong username from a wrong password.
        username_ok = hmac.compare_digest(username.encode(), self.credentials.username.encode())
        digest_ok = hmac.compare_digest((password.text or "").strip().encode(), expected.encode())
        if not (username_ok and digest_ok):
            raise _failed("wrong username or password")
        now = self.clock()
        created_at = _parse_created(created)
        if now - created_at > MAX_AGE:
            raise SoapFault(MESSAGE_EXPIRED, "the UsernameToken was created too long ago")
        if created_at - now > MAX_CLOCK_SKEW:
            raise SoapFault(MESSAGE_EXPIRED, "the UsernameToken was created in the future")
        if not self.nonces.first_use(username, nonce, now):
            raise SoapFault(NONCE_REPLAYED, "the UsernameToken's nonce was already used")
        return username


def _failed(message: str) -> SoapFault:
    return SoapFault(AUTHENTICATION_FAILED, message)


def _text(parent: etree._Element, path: str) -> str:
    element = parent.find(path)
    if element is None or element.text is None:
        return ""
    return element.text.strip()


def _parse_created(created: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(created)
    except ValueError as exc:
        raise _failed("Created is not an ISO 8601 time") from exc
    # A time without an offset is taken as UTC, as WS-Security's examples write it.
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment
