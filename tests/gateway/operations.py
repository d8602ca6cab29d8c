"""Helpers for the operations tests: a real `gateway run` process whose log lines a test can
read, on a small SQLite city of its own, and the simulated agencies beside it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import AGENCY_SECRETS, Backend, cli_env

GATEWAY = str(Path(sys.executable).parent / "gateway")
START_TIMEOUT_S = 120  # a safety net against a silent hang, never a measure


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def agency_env(agencies: Any) -> dict[str, str]:
    env = {}
    for name in ("land_registry", "civil_registry", "bank", "postal"):
        env[f"GATEWAY_{name.upper()}_URL"] = agencies.url(name)
    for name, credentials in AGENCY_SECRETS.items():
        env[f"GATEWAY_{name.upper()}_USERNAME"] = credentials.username
        env[f"GATEWAY_{name.upper()}_PASSWORD"] = credentials.password
    return env


@dataclass
class RunningGateway:
    url: str
    process: asyncio.subprocess.Process
    log: Path

    def lines(self) -> list[dict[str, Any]]:
        """Every line the process has written to stderr, each parsed as JSON."""
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]

    def access_lines(self) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line.get("logger") == "gateway.access"]

    def logged(self, text: str) -> int:
        """How many lines written so far (each is flushed as it is written) say `text`."""
        return sum(text in line for line in self.log.read_text().splitlines())

    async def until_logged(self, text: str, count: int = 1) -> None:
        async with asyncio.timeout(START_TIMEOUT_S):
            while self.logged(text) < count:
                assert self.process.returncode is None, f"the gateway stopped before {text!r}"
                await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running_gateway(
    backend: Backend, log: Path, env: dict[str, str] | None = None
) -> AsyncIterator[RunningGateway]:
    """`gateway run` against `backend` with JSON log lines written to `log`; yields once
    /healthz answers, and stops the process (SIGTERM) when the block ends, if it still runs."""
    port = free_port()
    settings = {
        **cli_env(backend),
        "GATEWAY_PORT": str(port),
        "GATEWAY_SEED_PARCELS": "0",
        "GATEWAY_LOG_FORMAT": "json",
        "GATEWAY_JOBS_IN_APP": "false",
        **(env or {}),
    }
    with log.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            GATEWAY,
            "run",
            env={**os.environ, **settings},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=stderr,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        async with asyncio.timeout(START_TIMEOUT_S), httpx.AsyncClient() as http:
            while True:
                assert process.returncode is None, "the gateway stopped before it started"
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get(f"{url}/healthz")).status_code == 200:
                        break
                await asyncio.sleep(0.05)
        gateway = RunningGateway(url, process, log)
        # Every worker up, not only the one that answered.
        await gateway.until_logged(
            "Application startup complete", int(settings.get("GATEWAY_WORKERS", "1"))
        )
        yield gateway
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()
