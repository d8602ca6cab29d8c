"""The `gateway` command, as a newcomer runs it: export-schema, seed, run."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from gateway.cli import main
from tests.conftest import register_key

ROOT = Path(__file__).resolve().parents[2]
FIRST_PAGE = "{ parcels(first: 5) { edges { node { renewalCode dues { outstanding } } } } }"


def test_checked_in_schema_matches_the_code() -> None:
    result = CliRunner().invoke(main, ["export-schema"])
    assert result.exit_code == 0, result.output
    checked_in = (ROOT / "schema.graphql").read_text()
    assert result.output == checked_in, "schema.graphql drifted: run `gateway export-schema`"


def test_seed_refuses_twice_then_resets(tmp_path: Path) -> None:
    env = {"GATEWAY_DATA_DIR": str(tmp_path)}
    runner = CliRunner()
    first = runner.invoke(main, ["seed", "--parcels", "20"], env=env)
    assert first.exit_code == 0, first.output
    assert "20 parcels" in first.output
    again = runner.invoke(main, ["seed", "--parcels", "20"], env=env)
    assert again.exit_code != 0
    assert "--reset" in again.output
    reset = runner.invoke(main, ["seed", "--parcels", "10", "--reset"], env=env)
    assert reset.exit_code == 0, reset.output
    assert "10 parcels" in reset.output


def test_bad_configuration_names_the_setting_not_the_value(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["migrate"], env={"GATEWAY_PORT": "secret-ish-value"})
    assert result.exit_code != 0
    assert "GATEWAY_PORT" in result.output
    assert "secret-ish-value" not in result.output


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("workers", [1, 2])
def test_run_serves_graphql_on_a_fresh_data_dir(tmp_path: Path, workers: int) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "GATEWAY_DATA_DIR": str(tmp_path),
        "GATEWAY_PORT": str(port),
        "GATEWAY_SEED_PARCELS": "40",
        "GATEWAY_WORKERS": str(workers),
    }
    gateway = Path(sys.executable).parent / "gateway"
    process = subprocess.Popen(
        [str(gateway), "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    said: list[str] = []
    # A safety net against a silent hang, never a measure: killed, the process ends the wait.
    safety = threading.Timer(120, process.kill)
    safety.start()
    try:
        # Each worker says when its app has started; its socket already listens (bound and
        # listening before the worker starts), so a request now waits at most in the backlog.
        while sum("Application startup complete" in line for line in said) < workers:
            line = process.stdout.readline()
            assert line, "the gateway stopped before it listened:\n" + "".join(said)
            said.append(line)
        url = f"http://127.0.0.1:{port}"
        response = httpx.post(
            f"{url}/graphql",
            json={"query": FIRST_PAGE},
        )
        edges = response.json()["data"]["parcels"]["edges"]
        assert len(edges) == 5
        assert all(isinstance(e["node"]["dues"]["outstanding"], int) for e in edges)
        # One process per worker, each serving on its own socket.
        if workers > 1:
            assert len(_children(process.pid)) >= workers
    finally:
        safety.cancel()
        process.terminate()
        rest, _ = process.communicate(timeout=20)
        output = "".join(said) + rest
        for line in output.splitlines():  # the demo keys it printed, for the secret scan
            if line.startswith("  ") and line.split()[-1].startswith("gw_"):
                register_key(line.split()[-1])
    assert process.returncode in (0, -signal.SIGTERM), output  # uvicorn re-raises SIGTERM
    assert f"listening on http://127.0.0.1:{port}/graphql" in output
    assert "Demo API keys" in output
    assert (tmp_path / "planning.sqlite3").exists()


def test_readme_documents_every_error_code() -> None:
    from gateway.errors import ERROR_CODES

    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Error codes") :]
    for code in ERROR_CODES:
        assert f"| `{code}` |" in table, code


def test_readme_example_queries_are_valid_against_the_schema() -> None:
    import re

    from graphql import parse, validate

    from gateway.schema import build_schema
    from gateway.settings import Settings

    schema = build_schema(Settings())._schema
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```graphql\n(.*?)```", readme, flags=re.S)
    inline = re.findall(r"`(\{ [^`]*\})`", readme)
    documents = [*blocks, *(q for q in inline if q.startswith("{ "))]
    assert len(blocks) >= 6
    for document in documents:
        errors = validate(schema, parse(document))
        assert not errors, (document, errors)


def test_run_in_production_without_an_audit_key_stops_before_serving(tmp_path: Path) -> None:
    env = {"GATEWAY_DATA_DIR": str(tmp_path), "GATEWAY_ENV": "production"}
    result = CliRunner().invoke(main, ["run"], env=env)
    assert result.exit_code != 0
    assert "GATEWAY_AUDIT_KEY" in result.output
    assert "listening" not in result.output
    assert not (tmp_path / "planning.sqlite3").exists()  # refused before migrating anything
