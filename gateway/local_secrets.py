"""Secrets a development gateway makes for itself, once, in its data folder (the audit key,
the inquiry signing key): never in a database, readable by this user alone."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path


def read_or_create(path: Path, make: Callable[[], str]) -> str:
    """The secret in `path`, or a new one from `make`, written whole to a private (0600)
    temporary file and then linked into place, so that workers starting together agree on one
    secret and none reads half of it. OSError and UnicodeDecodeError pass to the caller, who
    names the setting to fix."""
    with contextlib.suppress(FileNotFoundError):
        return path.read_text(encoding="utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(make())
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileExistsError):  # another worker's secret won
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path.read_text(encoding="utf-8")
