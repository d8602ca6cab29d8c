"""The npm graphql-http server audit (GraphQL over HTTP conformance), run with an API key
against a real gateway process: no audit may end in an error or a warning."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.gateway.example_gateway import ROOT, ExampleGateway, example_gateway

CLIENTS = ROOT / "clients"
NODE = shutil.which("node")
NPM = shutil.which("npm")
# A safety net against a hang, never a measure.
PATIENCE_S = 300

pytestmark = pytest.mark.skipif(
    NODE is None or NPM is None, reason="node and npm are not installed (CI installs them)"
)


@pytest.fixture(scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ExampleGateway]:
    async with example_gateway(tmp_path_factory.mktemp("audit")) as gateway:
        yield gateway


async def _run(*command: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=CLIENTS,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(PATIENCE_S):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def _audit(served: ExampleGateway, key: str) -> list[dict[str, Any]]:
    assert NPM is not None
    assert NODE is not None
    if not (CLIENTS / "node_modules" / "graphql-http").is_dir():
        code, out, err = await _run(NPM, "ci", "--no-audit", "--no-fund")
        assert code == 0, out + err
    code, out, err = await _run(
        NODE,
        "audit-server.mjs",
        env={"GATEWAY_URL": served.url, "GATEWAY_API_KEY": key},
    )
    results = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert results, out + err
    assert code in (0, 1), out + err
    return results


@pytest.mark.parametrize("label", ["notary", "operator"])
async def test_the_graphql_http_audit_reports_no_error_and_no_warning(
    served: ExampleGateway, label: str
) -> None:
    results = await _audit(served, served.keys[label])
    failing = [r for r in results if r["status"] in ("error", "warn")]
    assert not failing, json.dumps(failing, ensure_ascii=False, indent=1)
    assert len(results) > 30, "the audit ran its full list"
