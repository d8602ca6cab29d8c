"""The dashboard: its files from the gateway itself with a strict Content-Security-Policy and
nothing from elsewhere, the regions' boundaries as JSON, and the page rendered by headless
Chromium against a live gateway, showing the same figures as the GraphQL queries (Jalali
months, statuses, regions, the ranking, hotspots over the regions, services' times)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import socket
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from gateway.edge.app import create_app
from gateway.edge.dashboard import STATIC
from tests.conftest import GraphQLClient, make_backend, settings_for
from tests.gateway.requests.contact_rows import add_requests, catalogue
from tests.gateway.requests.test_request_stats import NOW, ROWS

CHROMIUM = (
    os.environ.get("GATEWAY_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
)


@pytest.fixture(scope="module")
async def gateway(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A live gateway on a free port of loopback (SQLite), with the figures' sample rows;
    yields its base URL."""
    backend, _ = await make_backend("sqlite", tmp_path_factory.mktemp("dashboard"), parcels=0)
    app = create_app(settings_for(backend), wall_clock=lambda: NOW)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    serving = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(60):  # a safety net, never a measure
            while not server.started:
                if serving.done():
                    serving.result()
                await asyncio.sleep(0.02)
        engine = app.state.databases.engine("contact")
        ids = await catalogue(
            engine,
            [("pothole", "PORTAL"), ("lighting", "CENTRE_137"), ("trees", "CENTRE_137")],
        )
        await add_requests(engine, ids, ROWS)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await serving


async def test_the_files_come_from_the_gateway_with_a_strict_policy(gateway: str) -> None:
    async with httpx.AsyncClient(base_url=gateway) as http:
        page = await http.get("/dashboard")
        script = await http.get("/dashboard/dashboard.js")
        style = await http.get("/dashboard/dashboard.css")
        regions = await http.get("/dashboard/regions.json")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "connect-src 'self'" in policy
    assert "default-src 'none'" in policy
    assert '<html lang="fa" dir="rtl">' in page.text
    assert script.headers["content-type"].startswith("text/javascript")
    assert style.status_code == 200
    # Nothing from another origin: no CDN, no map tiles, no web fonts.
    for path in STATIC.iterdir():
        assert re.search(r"https?://(?!www\.w3\.org/2000/svg)", path.read_text()) is None, path
    assert [r["region"] for r in regions.json()["regions"]] == [1, 2]
    assert regions.json()["regions"][0]["boundary"][0] == [37.5, 45.0]


class _Elements(HTMLParser):
    """Every element of a document with its attributes, and its text."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append({"tag": tag, **{name: value or "" for name, value in attrs}})


def elements(dom: str) -> list[dict[str, str]]:
    parser = _Elements()
    parser.feed(dom)
    return parser.found


async def render(url: str) -> str:
    """The page's DOM once Chromium has run its script (virtual time waits for the fetches)."""
    process = await asyncio.create_subprocess_exec(
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--virtual-time-budget=20000",
        "--dump-dom",
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(120):  # a safety net against a hung browser, never a measure
        out, err = await process.communicate()
    assert process.returncode == 0, err.decode(errors="replace")[-2000:]
    return out.decode()


FIGURES = """
query ($since: DateTime, $until: DateTime) {
  months: requestCounts(groupBy: [MONTH], since: $since, until: $until) { month total }
  statuses: requestCounts(groupBy: [STATUS], since: $since, until: $until) { status total }
  regions: requestCounts(groupBy: [REGION], since: $since, until: $until) { region total }
  ranking: departmentRanking(since: $since, until: $until) { rank unit score }
  hotspots: requestHotspots(since: $since, until: $until, first: 100) { count topServiceCode }
  services: serviceTransparency(since: $since, until: $until) {
    serviceCode requests medianDaysToResolution shareOnTime
  }
}"""


# CI installs Chromium (.ci/run): there a missing browser fails the test instead.
@pytest.mark.skipif(
    not Path(CHROMIUM).exists() and os.environ.get("CI") != "true",
    reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)",
)
async def test_chromium_renders_the_same_figures_as_the_queries(gateway: str) -> None:
    since, until = "2021-03-21T00:00:00Z", "2021-06-01T00:00:00Z"
    dom = await render(f"{gateway}/dashboard?since={since}&until={until}")
    found = elements(dom)
    body = next(e for e in found if e["tag"] == "body")
    assert body["data-state"] == "ready", dom[-3000:]

    async with httpx.AsyncClient(base_url=gateway) as http:
        answer = await GraphQLClient(http)(FIGURES, {"since": since, "until": until})
    assert "errors" not in answer, answer
    data: dict[str, Any] = answer["data"]

    def drawn(attribute: str, value: str = "data-count") -> list[tuple[str, str]]:
        return [(e[attribute], e[value]) for e in found if e["tag"] == "g" and attribute in e]

    assert drawn("data-month") == [(g["month"], str(g["total"])) for g in data["months"]]
    # Farvardin's single request is below the public floor of three: not drawn.
    assert drawn("data-month") == [("1400-02", "10")]
    assert drawn("data-status") == [(g["status"], str(g["total"])) for g in data["statuses"]]
    assert drawn("data-region") == [(str(g["region"]), str(g["total"])) for g in data["regions"]]
    assert [(unit, float(score)) for unit, score in drawn("data-unit", "data-score")] == [
        (u["unit"], u["score"]) for u in data["ranking"]
    ]
    assert len(data["ranking"]) == 1  # every sample request is urban_services'

    cells = [(e["data-count"], e["data-service"]) for e in found if e.get("class") == "hotspot"]
    assert cells == [(str(h["count"]), h["topServiceCode"]) for h in data["hotspots"]]
    assert cells == [("4", "pothole"), ("3", "trees")]
    # The hotspots are drawn over the regions' boundaries.
    assert [e["data-region"] for e in found if e["tag"] == "polygon"] == ["1", "2"]

    def number(text: str) -> float | None:
        return None if text == "" else float(text)

    rows = [
        (e["data-service"], int(e["data-requests"]), number(e["data-median"]))
        for e in found
        if e["tag"] == "tr" and "data-service" in e
    ]
    assert rows == [
        (s["serviceCode"], s["requests"], s["medianDaysToResolution"]) for s in data["services"]
    ]
    assert ("pothole", 5, 4.0) in rows
    # Persian month names and digits, as people read them.
    assert "اردیبهشت ۱۴۰۰" in dom
    # No personal data on the page.
    assert "0912" not in dom
    assert "مریم" not in dom
