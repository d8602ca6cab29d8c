"""The audit trail as careless operators meet it: two gateways on one database with different
keys, an unreadable development key, an unreachable database. Each is refused with a clear
message naming the setting, never a traceback, and never a trail that stops verifying."""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from db.demo import KNOWN_NATIONAL_CODE
from db.engines import Databases
from gateway.access.audit import AuditTrail
from gateway.access.audit_verify import verify
from gateway.access.principals import PrincipalKind
from gateway.cli import main
from gateway.edge.app import create_app
from tests.conftest import SECRETS, make_backend, mint_key, settings_for

PERSON = "query($c: NationalCode!) { person(nationalCode: $c) { fullName } }"
KEY_A = "first-gateways-audit-key-0123456789abcdef"
KEY_B = "second-gateways-audit-key-0123456789abcdef"
SECRETS.update({KEY_A, KEY_B})


async def _read_person(app: Any, key: str) -> dict[str, Any]:
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http,
    ):
        response = await http.post(
            "/graphql",
            json={"query": PERSON, "variables": {"c": KNOWN_NATIONAL_CODE}},
            headers={"Authorization": f"Bearer {key}"},
        )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_gateway_with_another_key_does_not_continue_the_trail(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Two gateways on one database, configured with different audit keys (or two development
    # gateways with data folders of their own, each generating its key): the second must not
    # chain records under its key onto the first's, where verification would call them edited
    # and could check nothing after them.
    backend, _ = await make_backend("sqlite", tmp_path / "db", parcels=5)
    databases = Databases(backend.urls)
    try:
        _, notary = await mint_key(databases, PrincipalKind.NOTARY, "Notary office 5", None)

        def app(key: str, name: str) -> Any:
            return create_app(
                settings_for(backend, audit_key=key, audit_checkpoint_dir=tmp_path / name)
            )

        first = await _read_person(app(KEY_A, "a"), notary)
        assert first["data"]["person"] is not None
        with caplog.at_level(logging.ERROR, logger="gateway"):
            second = await _read_person(app(KEY_B, "b"), notary)
        # Not served, as whenever the trail cannot be written, and the log says why.
        assert second["data"] is None
        assert [e["extensions"]["code"] for e in second["errors"]] == ["INTERNAL"]
        assert "does not verify with this gateway's audit key" in caplog.text
        assert KEY_A not in caplog.text
        assert KEY_B not in caplog.text
        # The first goes on, and its trail still verifies whole.
        again = await _read_person(app(KEY_A, "a"), notary)
        assert again["data"]["person"] is not None
        result = await verify(AuditTrail(databases, KEY_A.encode()))
        assert (result.ok, result.checked) == (True, 2)
    finally:
        await databases.dispose()


@pytest.mark.parametrize("command", [["audit", "verify"], ["run"]])
def test_an_unreadable_development_key_is_named_without_a_traceback(
    tmp_path: Path, command: list[str]
) -> None:
    # A data folder whose audit.key this user cannot read: here a folder in its place, which
    # even root cannot read as a file (a key created by another user fails the same way).
    (tmp_path / "audit.key").mkdir()
    env = {"GATEWAY_DATA_DIR": str(tmp_path), "GATEWAY_AUDIT_KEY": "", "GATEWAY_REDIS_URL": ""}
    result = CliRunner().invoke(main, command, env={k: v or None for k, v in env.items()})
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit), result.exception
    assert "GATEWAY_DATA_DIR: the development audit key audit.key there cannot be read" in (
        result.output
    )
    assert "Traceback" not in result.output


def test_verify_with_the_database_unreachable_says_so_without_a_traceback(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    password = "db-password-9c1e7a"
    SECRETS.add(password)
    env = {
        "GATEWAY_DATA_DIR": str(tmp_path),
        "GATEWAY_AUDIT_KEY": KEY_A,
        "GATEWAY_GATEWAY_DATABASE_URL": (
            f"postgresql+asyncpg://gateway:{password}@127.0.0.1:{port}/gateway"
        ),
        # Verification needs the gateway's database alone: the departments' are not opened.
        "GATEWAY_PLANNING_DATABASE_URL": f"postgresql+asyncpg://x@127.0.0.1:{port}/planning",
        "GATEWAY_REDIS_URL": "",
    }
    result = CliRunner().invoke(
        main, ["audit", "verify"], env={k: v or None for k, v in env.items()}
    )
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.output == (
        "Error: the gateway database (GATEWAY_GATEWAY_DATABASE_URL) cannot be read: "
        "ConnectionRefusedError; the trail was not verified\n"
    )
