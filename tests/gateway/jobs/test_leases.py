"""Executor leases on an injected clock: who is dead, and what is taken over, without waiting."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from gateway.jobs import leases as leases_module
from gateway.jobs.leases import Leases


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def leases_for(engine: sa.Engine, executor_id: str, clock: Clock) -> Leases:
    leases = Leases(engine, executor_id, lease_s=30, clock=clock)
    leases.create_table()
    return leases


def test_an_executor_is_taken_over_once_its_lease_expires(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'jobs.sqlite3'}")
    clock = Clock()
    a, b = leases_for(engine, "a", clock), leases_for(engine, "b", clock)
    a.beat()
    b.beat()
    recovered: list[str] = []

    def recover(executor_id: str) -> int:
        recovered.append(executor_id)
        return 3

    clock.now += 29
    b.beat()
    assert b.take_over(recover) == {}  # a is late, not dead

    clock.now += 2  # a's heartbeat is now 31 s old; b's 2 s
    assert b.take_over(recover) == {"a": 3}
    assert recovered == ["a"]
    assert b.take_over(recover) == {}  # forgotten once its jobs were handed back
    assert a.expired() == []  # b is alive, from a's side too


def test_a_heartbeat_during_takeover_keeps_the_executor(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'jobs.sqlite3'}")
    clock = Clock()
    a, b = leases_for(engine, "a", clock), leases_for(engine, "b", clock)
    a.beat()
    clock.now += 31
    b.beat()

    def recover(_executor_id: str) -> int:
        a.beat()  # a was only slow: it beats while b hands its jobs back
        return 0

    assert b.take_over(recover) == {"a": 0}
    assert b.expired() == []  # a's row stays, with its new heartbeat


def test_a_released_executor_is_taken_over_at_the_next_beat(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'jobs.sqlite3'}")
    clock = Clock()
    a, b = leases_for(engine, "a", clock), leases_for(engine, "b", clock)
    a.beat()
    b.beat()
    a.release()  # shut down with jobs it could not finish
    assert b.take_over(lambda _executor_id: 2) == {"a": 2}


def test_workers_starting_together_both_find_the_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers on a fresh data dir: the other one creates the table between this one's
    check and its CREATE TABLE (seen as 'table gateway_job_executors already exists')."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'jobs.sqlite3'}")
    create_all = leases_module.metadata.create_all

    def raced(bind: sa.Engine, checkfirst: bool = True) -> None:
        create_all(bind, checkfirst=True)  # the other worker, just in time
        create_all(bind, checkfirst=False)  # this one, past its check

    monkeypatch.setattr(leases_module.metadata, "create_all", raced)
    leases = leases_for(engine, "a", Clock())
    leases.beat()
    assert leases.expired() == []
    engine.dispose()
    missing = sa.create_engine(f"sqlite:///{tmp_path / 'other.sqlite3'}")

    def failing(bind: sa.Engine, checkfirst: bool = True) -> None:
        raise sa.exc.OperationalError("CREATE TABLE", {}, Exception("disk I/O error"))

    monkeypatch.setattr(leases_module.metadata, "create_all", failing)
    with pytest.raises(sa.exc.OperationalError):  # a real failure is not swallowed
        leases_for(missing, "b", Clock())
