"""First-run polish: the simulated agencies wait quietly while the gateway seeds the demo
city beside them; shares (and every decimal) print one way, whichever source they come
from; `gateway` commands print no migration chatter unless asked (`--verbose`)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway.cli import main
from gateway.migration_logs import quiet_migrations
from gateway.schema.scalars import SCALARS
from sandbox.run import NOT_SEEDED, warn_unless_seeded
from tests.conftest import GraphQLClient

# --- the agencies wait for the first seeding -------------------------------------------------


class Seeding:
    """A planning database that is absent, then empty, then seeded, on a clock of its own."""

    def __init__(self, counts: list[int | None]) -> None:
        self.counts = counts
        self.slept = 0.0
        self.said: list[str] = []

    async def count(self) -> int | None:
        return self.counts.pop(0) if len(self.counts) > 1 else self.counts[0]

    async def sleep(self, seconds: float) -> None:
        self.slept += seconds


async def test_the_agencies_say_nothing_while_the_first_seeding_runs() -> None:
    seeding = Seeding([None, None, 0, 0, 0, 2000])  # no file yet, then empty, then seeded
    seeded = await warn_unless_seeded(
        seeding.count, grace_s=120, poll_s=1, sleep=seeding.sleep, say=seeding.said.append
    )
    assert seeded
    assert seeding.said == []
    assert seeding.slept == 5


async def test_the_agencies_warn_once_when_planning_stays_empty() -> None:
    seeding = Seeding([0])
    seeded = await warn_unless_seeded(
        seeding.count, grace_s=120, poll_s=1, sleep=seeding.sleep, say=seeding.said.append
    )
    assert not seeded
    assert seeding.said == [NOT_SEEDED]
    assert seeding.slept == 120


# --- decimals print one way ------------------------------------------------------------------

_PLAIN = re.compile(r"(0|[1-9][0-9]*)(\.[0-9]*[1-9])?")


@pytest.mark.parametrize(
    ("value", "printed"),
    [
        (Decimal("6.0000"), "6"),  # planning's NUMERIC(7, 4)
        (Decimal("6"), "6"),  # the land registry's xs:decimal
        (Decimal("1.5000"), "1.5"),
        (Decimal("60"), "60"),  # normalize() alone would say 6E+1
        (Decimal("2260.10"), "2260.1"),
        (Decimal("0.0000"), "0"),
    ],
)
def test_a_decimal_prints_in_its_shortest_plain_form(value: Decimal, printed: str) -> None:
    definition = SCALARS[Decimal]
    assert definition.serialize is not None
    assert definition.serialize(value) == printed


async def test_owners_shares_print_as_the_deeds_do(gql: GraphQLClient) -> None:
    body = await gql(
        "{ parcels(first: 20) { edges { node { area owners { share } "
        "deed { area owners { share } } } } } }"
    )
    assert "errors" not in body, body["errors"]
    nodes = [edge["node"] for edge in body["data"]["parcels"]["edges"]]
    municipal = [owner["share"] for node in nodes for owner in node["owners"]]
    registered = [
        owner["share"] for node in nodes for owner in (node["deed"] or {}).get("owners", [])
    ]
    assert municipal, "the demo parcels have owners"
    assert registered, "the land registry names owners"
    for printed in [*municipal, *registered, *(node["area"] for node in nodes)]:
        assert _PLAIN.fullmatch(printed), printed
    # A whole parcel is six dang: the same spelling on both sides.
    assert "6" in municipal
    assert "6" in registered


# --- no migration chatter unless asked -------------------------------------------------------


@pytest.fixture
def restore_migration_logs() -> Iterator[None]:
    yield
    quiet_migrations(show=False)  # as every `gateway` command leaves it


def test_commands_print_no_migration_chatter_unless_asked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, restore_migration_logs: None
) -> None:
    env = {"GATEWAY_DATA_DIR": str(tmp_path), "GATEWAY_LOG_MIGRATIONS": "false"}
    runner = CliRunner()
    with caplog.at_level(logging.INFO):
        quiet = runner.invoke(main, ["migrate"], env=env)
    assert quiet.exit_code == 0, quiet.output
    assert "Databases are at the newest revision." in quiet.output
    chatter = [r for r in caplog.records if r.name.startswith("alembic")]
    assert chatter == []
    caplog.clear()
    (tmp_path / "again").mkdir()
    env["GATEWAY_DATA_DIR"] = str(tmp_path / "again")
    with caplog.at_level(logging.INFO):
        verbose = runner.invoke(main, ["--verbose", "migrate"], env=env)
    assert verbose.exit_code == 0, verbose.output
    assert any(
        r.name.startswith("alembic") and "Running upgrade" in r.getMessage() for r in caplog.records
    )


def test_the_job_engines_schema_chatter_is_dropped_and_its_warnings_kept(
    caplog: pytest.LogCaptureFixture, restore_migration_logs: None
) -> None:
    dbos = logging.getLogger("dbos")
    quiet_migrations(show=False)
    with caplog.at_level(logging.INFO, logger="dbos"):
        dbos.info("Applying DBOS system database schema migration 7")
        dbos.info("Initializing DBOS system database with URL: sqlite:///x")
        dbos.info("DBOS launched")
        dbos.warning("Using SQLite as a system database: a warning stays")
    said = [record.getMessage() for record in caplog.records if record.name == "dbos"]
    assert said == ["DBOS launched", "Using SQLite as a system database: a warning stays"]
