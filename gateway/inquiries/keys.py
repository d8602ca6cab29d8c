"""The municipality's Ed25519 keys for signing inquiry answers and status lists: a key set
from configuration (PEM or JWK), one current key, others published beside it, and the public
JWKS document that keeps retired keys so that old letters still verify.

Rotation: add the new key second in `signing_keys` (published, not yet signing) and wait for
verifiers' caches to fetch it; move it first (it signs from then on); finally move the old key
from `signing_keys` to `retired_keys` (public half only is needed), where it stays for as long
as any letter it signed may be shown.

A key's id (`kid`) is the first 8 characters of its RFC 7638 JWK thumbprint (SHA-256,
base64url): derived, so the same key has the same id everywhere, and short, because it is
printed inside every QR code. 48 bits tell a handful of keys apart; a set whose ids collide
is refused, and the JWKS lets anyone recompute the thumbprint.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from gateway.local_secrets import read_or_create

__all__ = [
    "ALGORITHM",
    "DEVELOPMENT_KEY_FILE",
    "KeySet",
    "SigningConfig",
    "SigningKey",
    "SigningKeyError",
    "VerificationKeys",
    "b64url",
    "generate_private_pem",
    "key_id",
    "load_key_set",
]

# RFC 9864's fully specified name; verification also accepts RFC 8037's polymorphic "EdDSA".
ALGORITHM = "Ed25519"
DEVELOPMENT_KEY_FILE = "inquiry-signing-key.pem"
_KID_CHARS = 8


class SigningKeyError(ValueError):
    """A signing or verification key is missing or unusable. Names the setting, never the
    key material."""


@dataclass(frozen=True, slots=True)
class SigningConfig:
    """Where the keys come from; the coordinator maps settings onto it.

    signing_keys: private keys as PEM (PKCS#8) or JWK text; the first signs, the others are
        published beside it (the next key, published ahead of its turn).
    signing_key_files: the same, one key a file; read after signing_keys.
    retired_keys: keys that no longer sign but whose letters must still verify: PEM or JWK,
        public or private (only the public half is kept).
    development: without any signing key, generate one once into data_dir (mode 0600);
        production without one is a configuration error.
    """

    signing_keys: tuple[str, ...] = ()
    signing_key_files: tuple[Path, ...] = ()
    retired_keys: tuple[str, ...] = ()
    development: bool = False
    data_dir: Path = Path(".data")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_jwk(key: Ed25519PublicKey) -> dict[str, str]:
    """The key's members as RFC 8037 writes them (no kid, use or alg)."""
    return {"crv": "Ed25519", "kty": "OKP", "x": b64url(_raw_public(key))}


def key_id(key: Ed25519PublicKey) -> str:
    """The first characters of the RFC 7638 thumbprint of the key's JWK."""
    canonical = json.dumps(public_jwk(key), sort_keys=True, separators=(",", ":"))
    return b64url(hashlib.sha256(canonical.encode("ascii")).digest())[:_KID_CHARS]


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    private_key: Ed25519PrivateKey = field(repr=False)

    @classmethod
    def of(cls, private_key: Ed25519PrivateKey) -> SigningKey:
        return cls(key_id(private_key.public_key()), private_key)

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)


@dataclass(frozen=True, slots=True)
class VerificationKeys:
    """Public keys by kid, as a verifier holds them: from the key set, or from a fetched (and
    cached) JWKS document, offline from then on."""

    by_kid: Mapping[str, Ed25519PublicKey]
    retired: frozenset[str] = frozenset()

    def get(self, kid: str) -> Ed25519PublicKey | None:
        return self.by_kid.get(kid)

    @classmethod
    def from_jwks(cls, document: Mapping[str, Any]) -> VerificationKeys:
        """The Ed25519 signing keys of a JWKS document; keys of other types are skipped (a
        verifier may share one document with other issuers), malformed Ed25519 keys refused."""
        keys = document.get("keys")
        if not isinstance(keys, list):
            raise SigningKeyError("invalid JWKS: 'keys' must be a list")
        by_kid: dict[str, Ed25519PublicKey] = {}
        for jwk in keys:
            if not isinstance(jwk, dict) or jwk.get("kty") != "OKP":
                continue
            if jwk.get("crv") != "Ed25519" or jwk.get("use", "sig") != "sig":
                continue
            public = _public_from_jwk(jwk, "JWKS")
            kid = jwk.get("kid")
            if not isinstance(kid, str) or kid != key_id(public):
                raise SigningKeyError("invalid JWKS: a key's kid is not its thumbprint")
            by_kid[kid] = public
        return cls(by_kid)


@dataclass(frozen=True, slots=True)
class KeySet:
    """The current signing key, the other published ones, and the retired public keys."""

    current: SigningKey
    standby: tuple[SigningKey, ...] = ()
    retired: tuple[Ed25519PublicKey, ...] = ()

    def __post_init__(self) -> None:
        kids = [self.current.kid, *(k.kid for k in self.standby)]
        kids += [key_id(k) for k in self.retired]
        if len(set(kids)) != len(kids):
            raise SigningKeyError(
                "invalid configuration: the same key (or two keys with one kid) is listed twice"
            )

    @property
    def verification_keys(self) -> VerificationKeys:
        by_kid = {k.kid: k.private_key.public_key() for k in (self.current, *self.standby)}
        retired = {key_id(k): k for k in self.retired}
        return VerificationKeys({**by_kid, **retired}, frozenset(retired))

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The `/.well-known/jwks.json` document: every key that may have signed a letter still
        shown, current first, retired last."""
        publics = [k.private_key.public_key() for k in (self.current, *self.standby)]
        return {
            "keys": [
                {**public_jwk(k), "kid": key_id(k), "use": "sig", "alg": ALGORITHM}
                for k in (*publics, *self.retired)
            ]
        }


def load_key_set(config: SigningConfig) -> KeySet:
    texts = [(text, "signing_keys") for text in config.signing_keys]
    for path in config.signing_key_files:
        texts.append((_read(path), "signing_key_files"))
    if not texts:
        if not config.development:
            raise SigningKeyError(
                "invalid configuration: no inquiry signing key (signing_keys or "
                "signing_key_files) in production"
            )
        texts = [(_development_key(config.data_dir), "data_dir")]
    signing = [SigningKey.of(_private_key(text, setting)) for text, setting in texts]
    retired = tuple(_public_key(text, "retired_keys") for text in config.retired_keys)
    return KeySet(signing[0], tuple(signing[1:]), retired)


def generate_private_pem() -> str:
    key = Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def _private_key(text: str, setting: str) -> Ed25519PrivateKey:
    text = text.strip()
    if text.startswith("{"):
        jwk = _jwk(text, setting)
        if "d" not in jwk:
            raise SigningKeyError(f"invalid configuration: {setting}: a JWK without 'd'")
        public = _public_from_jwk(jwk, setting)
        private = Ed25519PrivateKey.from_private_bytes(_b64url_member(jwk, "d", setting))
        if _raw_public(private.public_key()) != _raw_public(public):
            raise SigningKeyError(f"invalid configuration: {setting}: 'x' does not match 'd'")
        return private
    try:
        key = serialization.load_pem_private_key(text.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise SigningKeyError(
            f"invalid configuration: {setting}: not an unencrypted PEM private key or a JWK"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"invalid configuration: {setting}: the key is not Ed25519")
    return key


def _public_key(text: str, setting: str) -> Ed25519PublicKey:
    text = text.strip()
    if text.startswith("{"):
        return _public_from_jwk(_jwk(text, setting), setting)
    if "PRIVATE KEY" in text:
        return _private_key(text, setting).public_key()
    try:
        key = serialization.load_pem_public_key(text.encode())
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise SigningKeyError(f"invalid configuration: {setting}: not a PEM key or a JWK") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"invalid configuration: {setting}: the key is not Ed25519")
    return key


def _jwk(text: str, setting: str) -> dict[str, Any]:
    try:
        jwk = json.loads(text)
    except ValueError:
        raise SigningKeyError(f"invalid configuration: {setting}: not valid JSON") from None
    if not isinstance(jwk, dict):
        raise SigningKeyError(f"invalid configuration: {setting}: a JWK is a JSON object")
    return jwk


def _public_from_jwk(jwk: Mapping[str, Any], setting: str) -> Ed25519PublicKey:
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise SigningKeyError(f"invalid configuration: {setting}: not an OKP Ed25519 JWK")
    return Ed25519PublicKey.from_public_bytes(_b64url_member(jwk, "x", setting))


def _b64url_member(jwk: Mapping[str, Any], name: str, setting: str) -> bytes:
    value = jwk.get(name)
    try:
        if not isinstance(value, str):
            raise ValueError
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except ValueError:
        raise SigningKeyError(f"invalid configuration: {setting}: JWK '{name}'") from None
    if len(raw) != 32 or b64url(raw) != value:
        raise SigningKeyError(f"invalid configuration: {setting}: JWK '{name}'")
    return raw


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise SigningKeyError(
            "invalid configuration: signing_key_files: a file cannot be read"
        ) from None


def _development_key(data_dir: Path) -> str:
    """Reads the development key, or creates it once (see gateway/local_secrets.py)."""
    try:
        return read_or_create(data_dir / DEVELOPMENT_KEY_FILE, generate_private_pem)
    except (OSError, UnicodeDecodeError):
        raise SigningKeyError(
            f"invalid configuration: data_dir: the development signing key "
            f"{DEVELOPMENT_KEY_FILE} there cannot be read or created"
        ) from None
