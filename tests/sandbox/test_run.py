"""Starting and stopping the agencies: the async API and `python -m sandbox`."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from typing import Any

import httpx
import pytest

from sandbox.run import AGENCIES, run_agencies


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


async def test_run_agencies_serves_on_the_ports_given(city: Any) -> None:
    ports = dict(zip(AGENCIES, free_ports(len(AGENCIES)), strict=True))

    async with (
        run_agencies(
            ports, planning_url=city.planning_url, revenue_url=city.revenue_url
        ) as agencies,
        httpx.AsyncClient() as http,
    ):
        for name, port in ports.items():
            assert agencies.url(name) == f"http://127.0.0.1:{port}"
            assert (await http.get(f"{agencies.url(name)}/_chaos")).status_code == 200

    # Stopped: the ports are free again.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports["postal"]))


async def test_run_agencies_refuses_an_unknown_agency() -> None:
    with pytest.raises(ValueError, match="post_office"):
        async with run_agencies({"post_office": 1}):
            pass


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
async def test_python_m_sandbox_prints_one_line_per_agency_and_stops_on_signal(
    city: Any, stop: signal.Signals
) -> None:
    ports = dict(zip(AGENCIES, free_ports(len(AGENCIES)), strict=True))
    env = {
        **os.environ,
        "SANDBOX_HOST": "127.0.0.1",
        "SANDBOX_PLANNING_DATABASE_URL": city.planning_url,
        "SANDBOX_REVENUE_DATABASE_URL": city.revenue_url,
        **{f"SANDBOX_{name.upper()}_PORT": str(port) for name, port in ports.items()},
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sandbox", env=env, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(20):
            lines = [(await process.stdout.readline()).decode().split() for _ in AGENCIES]
        assert lines == [[name, f"http://127.0.0.1:{ports[name]}"] for name in AGENCIES]
        async with httpx.AsyncClient() as http:
            response = await http.get(f"http://127.0.0.1:{ports['postal']}/addresses/1")
        assert response.status_code == 400

        process.send_signal(stop)
        async with asyncio.timeout(10):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
