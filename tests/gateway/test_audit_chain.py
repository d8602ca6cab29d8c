"""The audit trail against someone who can write to the database: the chain's key from
configuration, signed checkpoints of its head outside the database, and `gateway audit
verify` naming what was wiped, truncated, rewritten or forged."""

from __future__ import annotations

import asyncio
import datetime as dt
import stat
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from pydantic import SecretStr
from sqlalchemy import delete, update

from db.engines import Databases
from db.gateway import AuditHead, AuditRecord
from gateway.access.audit import AuditTrail, open_audit_trail, record_hash
from gateway.access.audit_checkpoints import (
    Checkpoint,
    CheckpointPublisher,
    CheckpointStore,
    DirectoryCheckpoints,
    RedisCheckpoints,
    StoredCheckpoint,
    read_checkpoints,
    trail_name,
)
from gateway.access.audit_key import AuditKeyError, key_id, load_audit_key
from gateway.access.audit_verify import Finding, VerifyResult, verify
from gateway.cli.audit import audit
from gateway.edge.app import create_app
from gateway.errors import AuditUnavailable
from gateway.settings import Settings
from tests.conftest import SECRETS, Backend, make_backend, redis_url
from tests.gateway.test_audit import KEY, _entries, _entry, _record, _sql, unkeyed_hash

OTHER_KEY = b"another-deployments-audit-key-0123456789"
AT = dt.datetime(2025, 3, 20, 8, 30, 15, 123456)
SECRETS.add(OTHER_KEY.decode())


def _clock() -> Iterator[dt.datetime]:
    """Checkpoints and records stamped a second apart, never by the wall clock."""
    return (AT + dt.timedelta(seconds=n) for n in range(10_000))


@pytest.fixture(scope="module")
async def audit_backend(
    backend: Backend, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Backend]:
    """Databases of this module's own on each backend, as in test_audit.py."""
    made, server = await make_backend(
        backend.name, tmp_path_factory.mktemp(f"audit-chain-{backend.name}"), parcels=0
    )
    yield made
    if server is not None:
        await server.drop_all()


@pytest.fixture
async def gateway_db(audit_backend: Backend) -> AsyncIterator[Databases]:
    databases = Databases({"gateway": audit_backend.urls["gateway"]})
    async with databases.gateway.begin() as connection:
        await connection.execute(delete(AuditRecord))
        await connection.execute(delete(AuditHead))
    yield databases
    await databases.dispose()


@pytest.fixture
def checkpoint_dir(tmp_path: Path) -> Path:
    return tmp_path / "checkpoints"


def _files(directory: Path) -> list[Path]:
    return sorted(directory.iterdir())


def _forget(directory: Path) -> None:
    """Checkpoints lost, as to someone who could also reach the gateway's disk."""
    for path in directory.iterdir():
        path.unlink()


def _publisher(*stores: CheckpointStore) -> CheckpointPublisher:
    # Every append's checkpoint written at once: nothing here waits on a real clock.
    return CheckpointPublisher(stores, min_interval_s=0)


@pytest.fixture
def trail(gateway_db: Databases, checkpoint_dir: Path) -> AuditTrail:
    clock = _clock()
    publisher = _publisher(DirectoryCheckpoints(checkpoint_dir))
    return AuditTrail(
        gateway_db, KEY, checkpoints=publisher, clock=lambda: next(clock), chunk_size=4
    )


async def _append(trail: AuditTrail, *counts: int) -> None:
    """Appends, each count as one group commit, and waits for the checkpoints."""
    for n, count in enumerate(counts):
        await trail.append(_entries(count, request_id=f"req-{n}"))
    await trail.close()


# The key


def test_production_without_an_audit_key_fails_start_up_naming_the_setting(
    tmp_path: Path,
) -> None:
    settings = Settings(env="production", data_dir=tmp_path)
    with pytest.raises(AuditKeyError, match="GATEWAY_AUDIT_KEY or GATEWAY_AUDIT_KEY_FILE"):
        create_app(settings)


def test_development_generates_a_private_key_once_and_reuses_it(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    # Workers starting together must agree on one key.
    keys: list[bytes] = []
    threads = [
        threading.Thread(target=lambda: keys.append(load_audit_key(settings))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(keys)) == 1
    assert len(keys[0]) == 64
    key_file = tmp_path / "data" / "audit.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert [path.name for path in _files(key_file.parent)] == ["audit.key"]  # nothing else
    assert load_audit_key(settings) == keys[0]
    SECRETS.add(keys[0].decode())


def test_the_key_comes_from_the_setting_or_its_file(tmp_path: Path) -> None:
    key_file = tmp_path / "audit.key"
    key_file.write_text("k" * 40 + "\n")
    assert load_audit_key(Settings(env="production", audit_key_file=key_file)) == b"k" * 40
    assert load_audit_key(Settings(env="production", audit_key=SecretStr("s" * 32))) == b"s" * 32


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"audit_key": SecretStr("short-secret-value")}, "GATEWAY_AUDIT_KEY"),
        ({"audit_key_file": Path("/nonexistent/audit.key")}, "GATEWAY_AUDIT_KEY_FILE"),
    ],
)
def test_an_unusable_key_names_the_setting_never_the_value(
    settings: dict[str, Any], named: str
) -> None:
    with pytest.raises(AuditKeyError) as raised:
        load_audit_key(Settings(env="production", **settings))
    assert named in str(raised.value)
    assert "short-secret-value" not in str(raised.value)


# Checkpoints


def _checkpoint(key: bytes = KEY, length: int = 6) -> Checkpoint:
    return Checkpoint.signed(key, length=length, last_id=length, last_hash="ab" * 32, written_at=AT)


def test_a_checkpoint_is_signed_over_every_field_with_the_key() -> None:
    checkpoint = _checkpoint()
    assert checkpoint.signed_with(KEY)
    assert not checkpoint.signed_with(OTHER_KEY)
    assert checkpoint.key_id == key_id(KEY) != key_id(OTHER_KEY)
    assert Checkpoint.from_json(checkpoint.to_json()) == checkpoint
    for field, value in (
        ("length", 7),
        ("last_id", 7),
        ("last_hash", "cd" * 32),
        ("written_at", AT + dt.timedelta(microseconds=1)),
    ):
        altered = Checkpoint(**{**vars(checkpoint), field: value})
        assert not altered.signed_with(KEY), field


@pytest.mark.parametrize(
    "text",
    [
        "",
        "[]",
        '{"format": "audit-checkpoint/1"}',
        _checkpoint().to_json().replace('"length":6', '"length":true'),
        _checkpoint().to_json().replace('"length":6', '"length":-6'),
        _checkpoint().to_json().replace("audit-checkpoint/1", "audit-checkpoint/0"),
        _checkpoint().to_json().replace('"length":6', '"length":6,"extra":1'),
        _checkpoint().to_json().replace("15.123456", "15.123456+00:00"),
    ],
)
def test_anything_but_a_well_formed_checkpoint_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a checkpoint"):
        Checkpoint.from_json(text)


async def test_the_directory_keeps_whole_checkpoints_named_by_length(tmp_path: Path) -> None:
    store = DirectoryCheckpoints(tmp_path / "checkpoints", keep=3)
    for length in range(1, 21):
        await store.publish(_checkpoint(length=length))
    names = [path.name for path in _files(tmp_path / "checkpoints")]
    # Pruned now and then to the newest few; never a temporary file left behind.
    assert names[-3:] == [f"checkpoint-{n:012d}-{'ab' * 8}.json" for n in (18, 19, 20)]
    assert all(name.startswith("checkpoint-") for name in names)
    assert len(names) < 20
    reading = await read_checkpoints([store], KEY)
    assert reading.newest == _checkpoint(length=20)
    assert reading.problems == ()


class _GatedStore:
    """A store whose writes wait for the test to let them through."""

    name = "gated"

    def __init__(self) -> None:
        self.published: list[int] = []
        self.gate = asyncio.Event()
        self.entered = asyncio.Event()

    async def publish(self, checkpoint: Checkpoint) -> None:
        self.entered.set()
        await self.gate.wait()
        self.published.append(checkpoint.length)

    async def read(self) -> list[StoredCheckpoint]:
        return []


class _BrokenStore:
    name = "broken"

    async def publish(self, checkpoint: Checkpoint) -> None:
        raise OSError("disk full")

    async def read(self) -> list[StoredCheckpoint]:
        raise OSError("disk full")


async def test_offers_coalesce_into_the_newest_written_at_most_so_often(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = 100.0
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        nonlocal now
        slept.append(seconds)
        now += seconds

    gated = _GatedStore()
    stores: list[CheckpointStore] = [_BrokenStore(), gated]
    publisher = CheckpointPublisher(stores, min_interval_s=0.05, clock=lambda: now, sleep=sleep)
    publisher.offer(_checkpoint(length=1))
    await gated.entered.wait()
    now += 0.01
    for length in (2, 3, 4):  # a burst of group commits while the first is being written
        publisher.offer(_checkpoint(length=length))
    gated.gate.set()
    await publisher.flush()
    assert gated.published == [1, 4]
    # The second write waited out the rest of the interval since the first began.
    assert slept == [pytest.approx(0.04)]
    # A failing store only logs, and the others still get every checkpoint.
    assert caplog.text.count("could not publish an audit checkpoint to broken (OSError)") == 2


async def test_checkpoints_go_to_redis_too_and_are_read_back() -> None:
    url = redis_url()
    if url is None:
        pytest.skip("no Redis on 127.0.0.1:6379")
    store = RedisCheckpoints(url, f"gwtest:{uuid.uuid4().hex}:", keep=2)
    try:
        for length in (1, 2, 3):
            await store.publish(_checkpoint(length=length))
        stored = await store.read()
        assert [Checkpoint.from_json(s.text).length for s in stored] == [3, 2]
        reading = await read_checkpoints([store], KEY)
        assert reading.signed == (_checkpoint(length=3), _checkpoint(length=2))
    finally:
        await store.client.delete([store.key])


def test_settings_choose_stores_of_the_gateway_databases_own(tmp_path: Path) -> None:
    def names(url: str, **settings: Any) -> list[str]:
        trail = open_audit_trail(
            Settings(
                data_dir=tmp_path,
                audit_key=SecretStr(KEY.decode()),
                gateway_database_url=url,
                **settings,
            ),
            Databases({"gateway": f"sqlite+aiosqlite:///{tmp_path / 'gateway.sqlite3'}"}),
        )
        assert trail.checkpoints is not None
        return [store.name for store in trail.checkpoints.stores]

    one = "postgresql+asyncpg://gateway:first-password@db.example/gateway"
    trail = trail_name(one)
    assert names(one, redis_url="redis://r:1/0") == [
        f"directory {tmp_path / 'audit-checkpoints' / trail}",
        f"Redis key gateway:{trail}:audit:checkpoints",
    ]
    # Another database has its own; another password for the same one does not.
    assert trail_name(one.replace("/gateway", "/staging")) != trail
    assert trail_name(one.replace("first-password", "rotated")) == trail
    assert trail.startswith("postgresql-")
    chosen = tmp_path / "shipped"
    assert names(one, audit_checkpoint_dir=chosen) == [f"directory {chosen}"]


# Verifying against the newest checkpoint


async def test_an_intact_trail_matches_its_newest_checkpoint(
    trail: AuditTrail, checkpoint_dir: Path
) -> None:
    await _append(trail, 3, 1, 2)
    result = await verify(trail)
    assert result == VerifyResult(6, (), result.checkpoint)
    assert result.checkpoint is not None
    assert (result.checkpoint.length, result.checkpoint.last_id) == (6, 6)
    # Records appended after the newest checkpoint are fine: it only bounds what was there.
    await trail.append(_entries(2))
    assert (await verify(trail)).findings == ()


async def test_a_wiped_trail_is_named(trail: AuditTrail, gateway_db: Databases) -> None:
    await _append(trail, 4, 2)
    await _sql(gateway_db, delete(AuditRecord))
    await _sql(gateway_db, delete(AuditHead))
    result = await verify(trail)
    assert result.findings == (
        Finding(
            "wiped",
            None,
            "the trail is empty; the checkpoint of 2025-03-20 08:30:18 UTC says 6 records",
        ),
    )


@pytest.mark.parametrize("restarted", [False, True])
async def test_appends_stop_on_a_trail_shorter_than_it_was(
    trail: AuditTrail,
    gateway_db: Databases,
    checkpoint_dir: Path,
    restarted: bool,
) -> None:
    # Building on it would make a wiped or truncated trail whole again, checkpoints and all.
    await _append(trail, 4, 2)
    fourth = await _record(gateway_db, 4)
    await _sql(gateway_db, delete(AuditRecord).where(AuditRecord.id > 4))
    await _sql(gateway_db, update(AuditHead).values(last_id=4, last_hash=fourth["hash"], length=4))
    if restarted:  # a process started since knows the trail's length from the checkpoints
        publisher = _publisher(DirectoryCheckpoints(checkpoint_dir))
        trail = AuditTrail(gateway_db, KEY, checkpoints=publisher)
    with pytest.raises(AuditUnavailable, match="holds 4 records but held 6"):
        await trail.append(_entries(1))
    await _sql(gateway_db, delete(AuditRecord))
    await _sql(gateway_db, delete(AuditHead))
    with pytest.raises(AuditUnavailable, match="holds 0 records but held 6"):
        await trail.append(_entries(1))
    assert [f.reason for f in (await verify(trail)).findings] == ["wiped"]


async def test_a_chain_begun_again_over_a_wiped_one_disagrees_with_the_old_checkpoints(
    gateway_db: Databases,
    trail: AuditTrail,
    checkpoint_dir: Path,
) -> None:
    await _append(trail, 3, 3)
    await _sql(gateway_db, delete(AuditRecord))
    await _sql(gateway_db, delete(AuditHead))
    # Written by something that ignored the checkpoints, then checkpointed with the key:
    # the new chain agrees with its own newest checkpoint, not with the old ones.
    await AuditTrail(gateway_db, KEY).append(_entries(9, request_id="again"))
    last = await _record(gateway_db, 9)
    await DirectoryCheckpoints(checkpoint_dir).publish(
        Checkpoint.signed(KEY, length=9, last_id=9, last_hash=last["hash"], written_at=AT)
    )
    result = await verify(trail)
    assert result.checkpoint is not None
    assert result.checkpoint.length == 9
    assert [(f.reason, f.record_id) for f in result.findings] == [("rewritten", 6)]


async def test_records_truncated_from_the_end_with_the_head_fixed_are_missing(
    trail: AuditTrail, gateway_db: Databases
) -> None:
    await _append(trail, 4, 2)
    fourth = await _record(gateway_db, 4)
    await _sql(gateway_db, delete(AuditRecord).where(AuditRecord.id > 4))
    await _sql(gateway_db, update(AuditHead).values(last_id=4, last_hash=fourth["hash"], length=4))
    result = await verify(trail)
    assert result.checked == 4
    assert result.findings == (
        Finding(
            "missing at the end",
            5,
            "records 5-6 (2) are in the checkpoint of 2025-03-20 08:30:18 UTC but not in the trail",
        ),
    )


async def test_a_trail_rolled_back_and_written_on_is_rewritten(
    trail: AuditTrail, gateway_db: Databases
) -> None:
    await _append(trail, 3, 3)
    third = await _record(gateway_db, 3)
    await _sql(gateway_db, delete(AuditRecord).where(AuditRecord.id > 3))
    await _sql(gateway_db, update(AuditHead).values(last_id=3, last_hash=third["hash"], length=3))
    # New records, by an appender that ignored the checkpoints, take ids 4-6 again: the
    # chain verifies, the checkpoint does not.
    await AuditTrail(gateway_db, KEY).append(_entries(3, request_id="after-rollback"))
    result = await verify(trail)
    assert [(f.reason, f.record_id) for f in result.findings] == [("rewritten", 6)]


@pytest.mark.parametrize("rehash", ["unkeyed", "wrong key"])
async def test_a_chain_rewritten_whole_without_the_key_is_named_twice(
    trail: AuditTrail, gateway_db: Databases, rehash: str
) -> None:
    # From record 2 on, purposes changed and every hash and the head recomputed.
    await _append(trail, 3, 3)
    prev_hash = (await _record(gateway_db, 1))["hash"]
    for id in range(2, 7):
        record = await _record(gateway_db, id)
        entry = _entry({**record, "purpose": "a case never opened"})
        if rehash == "unkeyed":
            new_hash = unkeyed_hash(prev_hash, id, record["recorded_at"], entry)
        else:
            new_hash = record_hash(OTHER_KEY, prev_hash, id, record["recorded_at"], entry)
        await _sql(
            gateway_db,
            update(AuditRecord)
            .where(AuditRecord.id == id)
            .values(purpose=entry.purpose, prev_hash=prev_hash, hash=new_hash),
        )
        prev_hash = new_hash
    await _sql(gateway_db, update(AuditHead).values(last_hash=prev_hash))
    result = await verify(trail)
    assert [(f.reason, f.record_id) for f in result.findings] == [
        ("edited", 2),
        ("rewritten", 6),
    ]


async def test_a_forged_checkpoint_is_named_and_not_believed(
    trail: AuditTrail, checkpoint_dir: Path
) -> None:
    await _append(trail, 4)
    (genuine,) = _files(checkpoint_dir)
    forged = Checkpoint(**{**vars(Checkpoint.from_json(genuine.read_text())), "length": 9})
    other = Checkpoint.signed(OTHER_KEY, length=12, last_id=12, last_hash="0" * 64, written_at=AT)
    written = {"09": forged.to_json(), "12": other.to_json(), "15": "{"}
    for length, text in written.items():
        (checkpoint_dir / f"checkpoint-0000000000{length}-x.json").write_text(text)
    result = await verify(trail)
    where = checkpoint_dir / "checkpoint-0000000000"
    assert result.findings == (
        Finding(
            "forged checkpoint", None, f"{where}09-x.json: its signature does not match the key"
        ),
        Finding(
            "checkpoint of another key",
            None,
            f"{where}12-x.json: signed with another key, or forged",
        ),
        Finding(
            "unreadable checkpoint",
            None,
            f"{where}15-x.json: not a checkpoint, or could not be read",
        ),
    )
    # The genuine one still bounds the trail.
    assert result.checkpoint is not None
    assert result.checkpoint.length == 4


async def test_records_without_any_checkpoint_are_named(
    trail: AuditTrail, checkpoint_dir: Path
) -> None:
    await _append(trail, 4)
    _forget(checkpoint_dir)
    result = await verify(trail)
    assert [(f.reason, f.record_id) for f in result.findings] == [("no checkpoint", None)]


async def test_a_trail_written_with_another_key_says_the_key_does_not_match(
    gateway_db: Databases,
    checkpoint_dir: Path,
) -> None:
    def publisher() -> CheckpointPublisher:
        return _publisher(DirectoryCheckpoints(checkpoint_dir))

    written = AuditTrail(gateway_db, OTHER_KEY, checkpoints=publisher())
    await _append(written, 5)
    (checkpoint,) = _files(checkpoint_dir)
    result = await verify(AuditTrail(gateway_db, KEY, checkpoints=publisher()))
    assert result.findings == (
        Finding(
            "the key does not match",
            1,
            "no record verifies with it: the trail was written with another key, "
            "or rewritten whole",
        ),
        Finding(
            "checkpoint of another key",
            None,
            f"{checkpoint}: signed with another key, or forged",
        ),
    )


async def test_an_edited_first_record_is_edited_not_a_key_mismatch(
    trail: AuditTrail, gateway_db: Databases
) -> None:
    await _append(trail, 3)
    await _sql(gateway_db, update(AuditRecord).where(AuditRecord.id == 1).values(purpose="x"))
    assert [(f.reason, f.record_id) for f in (await verify(trail)).findings] == [("edited", 1)]


async def test_a_truncation_shows_through_redis_when_the_directory_lost_its_checkpoints(
    gateway_db: Databases,
    checkpoint_dir: Path,
) -> None:
    url = redis_url()
    if url is None:
        pytest.skip("no Redis on 127.0.0.1:6379")
    redis = RedisCheckpoints(url, f"gwtest:{uuid.uuid4().hex}:")
    trail = AuditTrail(
        gateway_db,
        KEY,
        checkpoints=_publisher(DirectoryCheckpoints(checkpoint_dir), redis),
    )
    try:
        await _append(trail, 4, 2)
        assert [Checkpoint.from_json(s.text).length for s in await redis.read()] == [6, 4]
        _forget(checkpoint_dir)
        await _sql(gateway_db, delete(AuditRecord).where(AuditRecord.id > 4))
        fourth = await _record(gateway_db, 4)
        await _sql(
            gateway_db, update(AuditHead).values(last_id=4, last_hash=fourth["hash"], length=4)
        )
        result = await verify(trail)
        assert [(f.reason, f.record_id) for f in result.findings] == [("missing at the end", 5)]
    finally:
        await redis.client.delete([redis.key])


# The command line


def _invoke(backend: Backend, checkpoint_dir: Path, **env: str) -> Result:
    settings = {f"GATEWAY_{name.upper()}_DATABASE_URL": url for name, url in backend.urls.items()}
    settings |= {
        "GATEWAY_DATA_DIR": str(checkpoint_dir.parent),
        "GATEWAY_AUDIT_KEY": KEY.decode(),
        "GATEWAY_AUDIT_CHECKPOINT_DIR": str(checkpoint_dir),
        "GATEWAY_REDIS_URL": "",
    }
    environment = {**settings, **env}
    # Unset what is given empty: GATEWAY_REDIS_URL may be set in the environment around us.
    clean = {name: (value or None) for name, value in environment.items()}
    return CliRunner().invoke(audit, ["verify"], env=clean)


async def _cli(backend: Backend, checkpoint_dir: Path, **env: str) -> Result:
    # The command runs its own event loop, so it runs on a thread of its own.
    return await asyncio.to_thread(_invoke, backend, checkpoint_dir, **env)


async def test_cli_verify_exits_0_when_intact_and_1_naming_the_record(
    trail: AuditTrail,
    gateway_db: Databases,
    audit_backend: Backend,
    checkpoint_dir: Path,
) -> None:
    await _append(trail, 4)
    intact = await _cli(audit_backend, checkpoint_dir)
    assert (intact.exit_code, intact.output) == (
        0,
        "audit trail intact: 4 records, up to its checkpoint of 4 records\n",
    )
    await _sql(gateway_db, "UPDATE audit_records SET subject_id = '0000000000' WHERE id = 2")
    broken = await _cli(audit_backend, checkpoint_dir)
    assert (broken.exit_code, broken.stderr) == (1, "audit trail broken at record 2: edited\n")


async def test_cli_verify_names_a_wiped_trail(
    trail: AuditTrail,
    gateway_db: Databases,
    audit_backend: Backend,
    checkpoint_dir: Path,
) -> None:
    await _append(trail, 4)
    await _sql(gateway_db, "DELETE FROM audit_records")
    await _sql(gateway_db, "DELETE FROM audit_head")
    result = await _cli(audit_backend, checkpoint_dir)
    assert (result.exit_code, result.stderr) == (
        1,
        "audit trail broken: wiped: the trail is empty; "
        "the checkpoint of 2025-03-20 08:30:16 UTC says 4 records\n",
    )


async def test_cli_verify_names_records_truncated_with_the_head_fixed(
    trail: AuditTrail,
    gateway_db: Databases,
    audit_backend: Backend,
    checkpoint_dir: Path,
) -> None:
    await _append(trail, 3, 3)
    third = await _record(gateway_db, 3)
    await _sql(gateway_db, delete(AuditRecord).where(AuditRecord.id > 3))
    await _sql(gateway_db, update(AuditHead).values(last_id=3, last_hash=third["hash"], length=3))
    result = await _cli(audit_backend, checkpoint_dir)
    assert (result.exit_code, result.stderr) == (
        1,
        "audit trail broken at record 4: missing at the end: records 4-6 (3) are in the "
        "checkpoint of 2025-03-20 08:30:18 UTC but not in the trail\n",
    )


@pytest.mark.parametrize("rehash", ["unkeyed", "wrong key"])
async def test_cli_verify_names_a_record_rewritten_with_recomputed_hashes(
    trail: AuditTrail,
    gateway_db: Databases,
    audit_backend: Backend,
    checkpoint_dir: Path,
    rehash: str,
) -> None:
    # The last record rewritten, its hash recomputed, and the head with it.
    await _append(trail, 4)
    record = await _record(gateway_db, 4)
    entry = _entry({**record, "subject_id": "0000000000"})
    if rehash == "unkeyed":
        new_hash = unkeyed_hash(record["prev_hash"], 4, record["recorded_at"], entry)
    else:
        new_hash = record_hash(OTHER_KEY, record["prev_hash"], 4, record["recorded_at"], entry)
    await _sql(
        gateway_db,
        update(AuditRecord)
        .where(AuditRecord.id == 4)
        .values(subject_id="0000000000", hash=new_hash),
    )
    await _sql(gateway_db, update(AuditHead).values(last_hash=new_hash))
    result = await _cli(audit_backend, checkpoint_dir)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "audit trail broken at record 4: edited",
        "audit trail broken at record 4: rewritten: its hash differs from the checkpoint of "
        "2025-03-20 08:30:16 UTC: the records up to it were rewritten or rolled back",
    ]


async def test_cli_verify_with_another_key_says_the_key_does_not_match(
    trail: AuditTrail,
    audit_backend: Backend,
    checkpoint_dir: Path,
) -> None:
    await _append(trail, 2)
    result = await _cli(audit_backend, checkpoint_dir, GATEWAY_AUDIT_KEY=OTHER_KEY.decode())
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        "audit trail broken at record 1: the key does not match: no record verifies with it: "
        "the trail was written with another key, or rewritten whole"
    )
    assert OTHER_KEY.decode() not in result.output + result.stderr


async def test_cli_verify_in_production_without_a_key_names_the_setting(
    audit_backend: Backend,
    checkpoint_dir: Path,
) -> None:
    result = await _cli(
        audit_backend, checkpoint_dir, GATEWAY_ENV="production", GATEWAY_AUDIT_KEY=""
    )
    assert result.exit_code == 1
    assert "GATEWAY_AUDIT_KEY or GATEWAY_AUDIT_KEY_FILE" in result.output
