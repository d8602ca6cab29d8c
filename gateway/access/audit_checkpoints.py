"""Signed checkpoints of the audit trail's head (its length and last hash), published outside
the gateway's database — to a directory an operator ships elsewhere, and to Redis when
configured — so that someone who can write to the database cannot wipe, truncate or roll
back the trail unseen: `gateway audit verify` compares the trail with them."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import coredis
import coredis.exceptions
from sqlalchemy.engine import make_url

from gateway.access.audit_key import key_id
from gateway.settings import Settings

log = logging.getLogger("gateway.access.audit")

# Part of every signed document, so that a later format can never collide with this one.
_FORMAT = "audit-checkpoint/1"
# Checkpoints kept in each store (the newest by length); older ones add nothing.
KEEP = 100
_PREFIX, _SUFFIX = "checkpoint-", ".json"


@dataclass(frozen=True)
class Checkpoint:
    """The chain's head at one moment, signed with the audit key (HMAC-SHA256)."""

    length: int
    last_id: int
    last_hash: str
    written_at: dt.datetime  # naive UTC
    key_id: str  # which key signed it, so that another key's checkpoint is told from a forgery
    signature: str

    @classmethod
    def signed(
        cls, key: bytes, *, length: int, last_id: int, last_hash: str, written_at: dt.datetime
    ) -> Checkpoint:
        written_at = written_at.replace(tzinfo=None)
        return cls(
            length=length,
            last_id=last_id,
            last_hash=last_hash,
            written_at=written_at,
            key_id=key_id(key),
            signature=_signature(key, length, last_id, last_hash, written_at),
        )

    def signed_with(self, key: bytes) -> bool:
        expected = _signature(key, self.length, self.last_id, self.last_hash, self.written_at)
        return hmac.compare_digest(expected, self.signature)

    def to_json(self) -> str:
        document = {**asdict(self), "written_at": _iso(self.written_at), "format": _FORMAT}
        return json.dumps(document, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Checkpoint:
        """Raises ValueError for anything but a well-formed checkpoint."""
        try:
            document = json.loads(text)
            if not isinstance(document, dict) or document.pop("format", None) != _FORMAT:
                raise ValueError("not a checkpoint")
            checkpoint = cls(
                length=_int(document.pop("length")),
                last_id=_int(document.pop("last_id")),
                last_hash=_str(document.pop("last_hash")),
                written_at=dt.datetime.fromisoformat(_str(document.pop("written_at"))),
                key_id=_str(document.pop("key_id")),
                signature=_str(document.pop("signature")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError("not a checkpoint") from exc
        if document or checkpoint.written_at.tzinfo is not None:
            raise ValueError("not a checkpoint")
        return checkpoint


def _signature(
    key: bytes, length: int, last_id: int, last_hash: str, written_at: dt.datetime
) -> str:
    document = {
        "format": _FORMAT,
        "length": length,
        "last_id": last_id,
        "last_hash": last_hash,
        "written_at": _iso(written_at),
        "key_id": key_id(key),
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def _int(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise TypeError("not a count")
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("not text")
    return value


@dataclass(frozen=True)
class StoredCheckpoint:
    where: str  # for people: the file, or the Redis key
    text: str


class CheckpointStore(Protocol):
    name: str  # for people and logs; never a credential

    async def publish(self, checkpoint: Checkpoint) -> None: ...

    async def read(self) -> list[StoredCheckpoint]: ...


class DirectoryCheckpoints:
    """One file per checkpoint, named by length and hash, written whole (temporary file,
    fsync, rename): a reader never sees half of one, and no checkpoint overwrites another,
    not even one of a chain begun again over a wiped one. The newest KEEP are kept."""

    def __init__(self, directory: Path, keep: int = KEEP) -> None:
        self.directory = directory
        self.name = f"directory {directory}"
        self.keep = keep
        self._published = 0
        self._directory_made = False

    async def publish(self, checkpoint: Checkpoint) -> None:
        self._published += 1
        # Pruning lists the directory: once in a while is enough to bound it.
        prune = self._published % 16 == 1
        await asyncio.to_thread(self._write, checkpoint, prune)

    def _write(self, checkpoint: Checkpoint, prune: bool) -> None:
        if not self._directory_made:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._directory_made = True
        name = f"{_PREFIX}{checkpoint.length:012d}-{checkpoint.last_hash[:16]}{_SUFFIX}"
        final = self.directory / name
        temporary = self.directory / f".{final.name}.{os.getpid()}.{secrets.token_hex(4)}"
        try:
            with temporary.open("w", encoding="utf-8") as file:
                file.write(checkpoint.to_json() + "\n")
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, final)
        finally:
            temporary.unlink(missing_ok=True)
        if prune:
            for old in self._files()[: -self.keep]:
                old.unlink(missing_ok=True)

    def _files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(
            path
            for path in self.directory.iterdir()
            if path.name.startswith(_PREFIX) and path.name.endswith(_SUFFIX)
        )

    async def read(self) -> list[StoredCheckpoint]:
        return await asyncio.to_thread(self._read)

    def _read(self) -> list[StoredCheckpoint]:
        found = []
        for path in self._files():
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                text = ""  # unreadable reads as malformed, and is named
            found.append(StoredCheckpoint(str(path), text))
        return found


class RedisCheckpoints:
    """A sorted set scored by length: every process adds its own, the newest KEEP stay."""

    def __init__(self, url: str, prefix: str, keep: int = KEEP) -> None:
        self.url = url
        self.key = f"{prefix}audit:checkpoints"
        self.name = f"Redis key {self.key}"
        self.keep = keep
        self._client: coredis.Redis[str] | None = None

    @property
    def client(self) -> coredis.Redis[str]:
        if self._client is None:  # built on first use, inside the running event loop
            self._client = coredis.Redis.from_url(self.url, decode_responses=True)
        return self._client

    async def publish(self, checkpoint: Checkpoint) -> None:
        await self.client.zadd(self.key, {checkpoint.to_json(): checkpoint.length})
        await self.client.zremrangebyrank(self.key, 0, -(self.keep + 1))

    async def read(self) -> list[StoredCheckpoint]:
        members = await self.client.zrange(self.key, 0, self.keep - 1, rev=True)
        return [StoredCheckpoint(self.name, str(member)) for member in members]


def checkpoint_stores(settings: Settings) -> list[CheckpointStore]:
    """The configured directory, by default one per gateway database under the data
    directory, and Redis when configured, under a key per gateway database: checkpoints
    belong to one trail, and pointing the gateway at another database must not compare its
    trail with this one's."""
    trail = trail_name(settings.database_url("gateway"))
    directory = settings.audit_checkpoint_dir or settings.data_dir / "audit-checkpoints" / trail
    stores: list[CheckpointStore] = [DirectoryCheckpoints(directory)]
    if settings.redis_url is not None:
        stores.append(
            RedisCheckpoints(
                settings.redis_url.get_secret_value(), f"{settings.redis_key_prefix}{trail}:"
            )
        )
    return stores


def trail_name(database_url: str) -> str:
    """Names the gateway database a trail lives in, without its credentials."""
    url = make_url(database_url)
    backend = url.get_backend_name()
    identity = f"{backend}://{url.username or ''}@{url.host or ''}:{url.port or ''}/{url.database}"
    return f"{backend}-{hashlib.sha256(identity.encode()).hexdigest()[:12]}"


class CheckpointPublisher:
    """Publishes the newest checkpoint to every store, off the request path: an append
    offers its head and goes on; one task writes the newest offered, at most once every
    `min_interval_s`, so that under load many group commits share one write (the window
    for an unseen truncation stays about that long). A failing store only logs."""

    def __init__(
        self,
        stores: Sequence[CheckpointStore],
        *,
        min_interval_s: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.stores = list(stores)
        self.min_interval_s = min_interval_s
        self._clock = clock
        self._sleep = sleep
        self._pending: Checkpoint | None = None
        self._writer: asyncio.Task[None] | None = None
        self._last_write: float | None = None

    def offer(self, checkpoint: Checkpoint) -> None:
        # Offers arrive in append order (under the trail's lock): the last is the newest.
        self._pending = checkpoint
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())

    async def _write(self) -> None:
        while self._pending is not None:
            if self._last_write is not None:
                wait = self._last_write + self.min_interval_s - self._clock()
                if wait > 0:
                    await self._sleep(wait)  # offers meanwhile replace the pending one
            checkpoint, self._pending = self._pending, None
            self._last_write = self._clock()
            for store in self.stores:
                try:
                    await store.publish(checkpoint)
                except Exception as exc:  # the records are durable; only the window grows
                    log.warning(
                        "could not publish an audit checkpoint to %s (%s)",
                        store.name,
                        type(exc).__name__,
                    )

    async def flush(self) -> None:
        """Waits until every checkpoint offered so far is published (or failed)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)


@dataclass(frozen=True)
class CheckpointProblem:
    where: str
    what: str  # "forged", "another key", "unreadable"


@dataclass(frozen=True)
class CheckpointReading:
    """What the stores hold: the checkpoints the key signed, newest first, and every one it
    did not sign."""

    signed: tuple[Checkpoint, ...]
    problems: tuple[CheckpointProblem, ...]
    read_any: bool  # whether any store held a checkpoint at all, good or bad

    @property
    def newest(self) -> Checkpoint | None:
        return self.signed[0] if self.signed else None


async def read_checkpoints(stores: Sequence[CheckpointStore], key: bytes) -> CheckpointReading:
    signed: set[Checkpoint] = set()
    problems = []
    read_any = False
    ours = key_id(key)
    for store in stores:
        try:
            stored = await store.read()
        except (OSError, coredis.exceptions.RedisError):
            problems.append(CheckpointProblem(store.name, "unreadable"))
            continue
        for item in stored:
            read_any = True
            try:
                checkpoint = Checkpoint.from_json(item.text)
            except ValueError:
                problems.append(CheckpointProblem(item.where, "unreadable"))
                continue
            if checkpoint.key_id != ours:
                problems.append(CheckpointProblem(item.where, "another key"))
            elif not checkpoint.signed_with(key):
                problems.append(CheckpointProblem(item.where, "forged"))
            else:
                signed.add(checkpoint)  # the same one from two stores counts once
    return CheckpointReading(
        signed=tuple(sorted(signed, key=_order, reverse=True)),
        problems=tuple(problems),
        read_any=read_any,
    )


def _order(checkpoint: Checkpoint) -> tuple[int, dt.datetime]:
    return checkpoint.length, checkpoint.written_at
