"""The audit trail's secret key, kept outside the database it protects: from configuration,
or in development generated once under the data directory."""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from pathlib import Path

from gateway.local_secrets import read_or_create
from gateway.settings import Settings

# Shorter keys are refused: the key is all that stops a database writer rewriting the chain.
MIN_KEY_CHARS = 32
DEVELOPMENT_KEY_FILE = "audit.key"


class AuditKeyError(ValueError):
    """The audit key is missing or unusable. Names the setting, never the value."""


def load_audit_key(settings: Settings) -> bytes:
    """The key from GATEWAY_AUDIT_KEY, else the file GATEWAY_AUDIT_KEY_FILE names; in
    development without either, a key generated once into <data_dir>/audit.key (mode 0600)
    and reused. Production without one is a configuration error."""
    if settings.audit_key is not None:
        return _checked(settings.audit_key.get_secret_value(), "GATEWAY_AUDIT_KEY")
    if settings.audit_key_file is not None:
        return _checked(_read(settings.audit_key_file), "GATEWAY_AUDIT_KEY_FILE")
    if not settings.development:
        raise AuditKeyError(
            "invalid configuration: GATEWAY_AUDIT_KEY or GATEWAY_AUDIT_KEY_FILE must be set "
            "in production (the audit trail's key, kept outside the database)"
        )
    path = settings.data_dir / DEVELOPMENT_KEY_FILE
    try:
        key = read_or_create(path, lambda: secrets.token_hex(32) + "\n")
    except (OSError, UnicodeDecodeError):
        # Not readable by this user (a first run as another), a folder, a full disk: say so,
        # rather than a traceback.
        raise AuditKeyError(
            f"invalid configuration: GATEWAY_DATA_DIR: the development audit key "
            f"{DEVELOPMENT_KEY_FILE} there cannot be read or created; fix the file's owner "
            "or mode, or set GATEWAY_AUDIT_KEY_FILE"
        ) from None
    return _checked(key, "GATEWAY_DATA_DIR")


@functools.cache
def key_id(key: bytes) -> str:
    """Names a key without revealing it, so a checkpoint can say which key signed it."""
    return hmac.new(key, b"gateway audit key id", hashlib.sha256).hexdigest()[:16]


def _checked(value: str, setting: str) -> bytes:
    value = value.strip()
    if len(value) < MIN_KEY_CHARS:
        raise AuditKeyError(
            f"invalid configuration: {setting}: the audit key needs at least "
            f"{MIN_KEY_CHARS} characters"
        )
    return value.encode()


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise AuditKeyError(
            "invalid configuration: GATEWAY_AUDIT_KEY_FILE cannot be read"
        ) from None
