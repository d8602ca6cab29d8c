"""GraphiQL from the gateway's own files: the page, its vendored files and their checksums,
caching and the Content-Security-Policy; and a real headless Chromium (Debian's, driven
through chromedriver's WebDriver API) that loads the page from a `gateway run` process, runs
a query with a header set in the IDE, finds the answer on the page, opens the explorer and
hears a subscription's event over the IDE's WebSocket."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import hashlib
import importlib.util
import json
import re
import shutil
import socket
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from db.engines import Databases
from gateway.access.principals import PrincipalKind
from gateway.edge.app import create_app
from gateway.edge.graphiql import IMMUTABLE, PAGE_CSP, STATIC, graphiql_files, vendored_manifest
from tests.conftest import Backend, gateway_process, make_backend, mint_key, settings_for

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Generous: a loaded two-core machine may take long to start a browser; never a measure.
PATIENCE_S = 90


@pytest.fixture(scope="module")
async def sqlite(tmp_path_factory: pytest.TempPathFactory) -> Backend:
    made, _ = await make_backend("sqlite", tmp_path_factory.mktemp("graphiql"), parcels=20)
    return made


@contextlib.asynccontextmanager
async def app_client(backend: Backend, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings_for(backend, **overrides))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway.test"
        ) as http,
    ):
        yield http


@pytest.fixture(scope="module")
async def http(sqlite: Backend) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(sqlite) as client:
        yield client


async def page(http: httpx.AsyncClient) -> httpx.Response:
    return await http.get("/graphql", headers={"Accept": "text/html"})


# --- the page and its files -----------------------------------------------------------------


async def test_the_page_loads_only_files_the_gateway_serves_under_a_policy_of_its_own_origin(
    http: httpx.AsyncClient,
) -> None:
    response = await page(http)
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == PAGE_CSP
    for directive in PAGE_CSP.split("; "):
        # Nothing but the gateway itself (and data: for what the stylesheet embeds).
        assert set(directive.split()[1:]) <= {"'none'", "'self'", "data:"}, directive
    assert "unsafe" not in PAGE_CSP
    assert response.headers["cache-control"] == "no-store"
    html = response.text
    assert "<script>" not in html  # nothing inline
    assert "style=" not in html
    assert not re.search(r"(src|href)=\"(https?:)?//", html)  # nothing from elsewhere
    addresses = re.findall(r"(?:src|href)=\"(/graphiql/[^\"]+)\"", html)
    assert len(addresses) == 8  # react, react-dom, graphiql, the explorer, and the page's own
    for address in addresses:
        asset = await http.get(address, headers={"Accept-Encoding": "identity"})
        assert asset.status_code == 200, address
        assert asset.headers["cache-control"] == IMMUTABLE
        assert asset.headers["content-type"].startswith(("text/javascript", "text/css"))
        # The address names the digest of what it serves, so a year's caching is safe.
        digest = address.split("/")[2]
        assert hashlib.sha256(asset.content).hexdigest().startswith(digest)


async def test_files_are_sent_compressed_to_browsers_that_accept_it(
    http: httpx.AsyncClient,
) -> None:
    script = graphiql_files().assets["graphiql.min.js"]
    response = await http.get(script.path, headers={"Accept-Encoding": "gzip, br"})
    assert response.headers["content-encoding"] == "gzip"
    assert int(response.headers["content-length"]) < len(script.body) / 2
    assert response.content == script.body  # httpx decoded it
    assert gzip.decompress(script.gzipped()) == script.body


async def test_an_address_whose_digest_is_not_the_files_is_not_found(
    http: httpx.AsyncClient,
) -> None:
    for address in ("/graphiql/0000000000000000/graphiql.min.js", "/graphiql/x/nothing.js"):
        response = await http.get(address)
        assert response.status_code == 404
        assert response.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_production_serves_neither_the_page_nor_its_files(sqlite: Backend) -> None:
    script = graphiql_files().assets["graphiql.min.js"]
    async with app_client(sqlite, env="production", audit_key="p" * 40) as production:
        assert (await production.get(script.path)).status_code == 404
        response = await page(production)
        assert "text/html" not in response.headers["content-type"]


def _refresh_script() -> Any:
    spec = importlib.util.spec_from_file_location(
        "refresh_graphiql", ROOT / "scripts" / "refresh-graphiql.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_vendored_file_matches_its_checksum_and_the_pinned_versions() -> None:
    refresh = _refresh_script()
    manifest = json.loads((STATIC / "manifest.json").read_text())
    assert manifest["packages"] == sorted(refresh.PACKAGES)
    expected = {name for members in refresh.PACKAGES.values() for name in members.values()}
    assert set(vendored_manifest()) == expected
    vendored = {path.name for path in (STATIC / "vendor").iterdir()}
    assert vendored == expected  # nothing in the folder that the manifest does not vouch for
    for name, entry in vendored_manifest().items():
        body = (STATIC / "vendor" / name).read_bytes()
        assert hashlib.sha256(body).hexdigest() == entry["sha256"], name
        assert len(body) == entry["bytes"], name
    for spec in refresh.PACKAGES:
        assert re.fullmatch(r"(@[a-z-]+/)?[a-z-]+@\d+\.\d+\.\d+", spec), "pin exact versions"


# --- a real browser -------------------------------------------------------------------------


class Browser:
    """Headless Chromium through chromedriver's WebDriver API (W3C), over plain HTTP."""

    def __init__(self, http: httpx.AsyncClient, session: str) -> None:
        self.http = http
        self.session = session

    async def command(self, method: str, path: str, body: object = None) -> Any:
        response = await self.http.request(
            method, f"/session/{self.session}{path}", json=body if body is not None else None
        )
        value = response.json()["value"]
        assert response.status_code == 200, value
        return value

    async def script(self, source: str, *args: object) -> Any:
        return await self.command("POST", "/execute/sync", {"script": source, "args": list(args)})

    async def until(self, source: str, *args: object, what: str) -> Any:
        """Polls a condition in the page until it holds; the timeout is a safety net only."""
        deadline = time.monotonic() + PATIENCE_S
        while True:
            found = await self.script(source, *args)
            if found:
                return found
            if time.monotonic() > deadline:
                shot = Path(tempfile.mkdtemp(prefix="graphiql-")) / "page.png"
                shot.write_bytes(base64.b64decode(await self.command("GET", "/screenshot")))
                pytest.fail(f"the page never showed {what} (screenshot: {shot})")
            await asyncio.sleep(0.1)


# GraphiQL names the operation to run a moment after the document changes: run before that,
# and the gateway answers that the previous name is unknown. Such a run is simply run again.
_STALE_NAME = "Unknown operation named"
_PANE = "const r = document.querySelector('.graphiql-response'); const t = r ? r.innerText : '';"


async def run_until(browser: Browser, wanted: str, *, what: str, start: bool = True) -> str:
    """Runs the editor's operation (unless `start` is False: it runs already) until the
    response pane shows `wanted`; its text then. (Clicking the button while a subscription
    runs would stop it: it is clicked again only after a run that ended on a stale name.)"""
    if start:
        await browser.script("document.querySelector('.graphiql-execute-button').click()")
    return str(
        await browser.until(
            _PANE + "if (t.includes(arguments[1]))"
            " document.querySelector('.graphiql-execute-button').click();"
            "return t.includes(arguments[0]) && t",
            wanted,
            _STALE_NAME,
            what=what,
        )
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.skip(
            "headless Chromium is not installed "
            "(apt-get install chromium chromium-driver, as .ci/run does)"
        )
    port = _free_port()
    driver = await asyncio.create_subprocess_exec(
        str(CHROMEDRIVER),
        f"--port={port}",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    profile = tempfile.mkdtemp(prefix="graphiql-chromium-")
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=PATIENCE_S
        ) as http:
            async with asyncio.timeout(PATIENCE_S):
                while True:
                    with contextlib.suppress(httpx.TransportError):
                        if (await http.get("/status")).json()["value"]["ready"]:
                            break
                    await asyncio.sleep(0.1)
            options = {
                "binary": str(CHROMIUM),
                "args": [
                    "--headless=new",
                    "--no-sandbox",  # root in CI
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--window-size=1400,900",
                    f"--user-data-dir={profile}",
                ],
            }
            created = await http.post(
                "/session",
                json={
                    "capabilities": {
                        "alwaysMatch": {
                            "browserName": "chrome",
                            "goog:chromeOptions": options,
                            "goog:loggingPrefs": {"browser": "ALL"},
                        }
                    }
                },
            )
            assert created.status_code == 200, created.text
            session = created.json()["value"]["sessionId"]
            try:
                yield Browser(http, session)
            finally:
                await http.delete(f"/session/{session}")
    finally:
        driver.terminate()
        await driver.wait()
        shutil.rmtree(profile, ignore_errors=True)


@dataclass(frozen=True)
class Notary:
    key: str  # the IDE's
    spares: list[str]  # prefixes of its other keys, which it revokes


@pytest.fixture(scope="module")
async def notary(sqlite: Backend) -> Notary:
    databases = Databases({"gateway": sqlite.urls["gateway"]})
    try:
        _, key = await mint_key(databases, PrincipalKind.NOTARY, "Notary office (IDE)")
        spares = [
            (await mint_key(databases, PrincipalKind.NOTARY, "Notary office (IDE)"))[0].prefix
            for _ in range(10)
        ]
    finally:
        await databases.dispose()
    return Notary(key, spares)


QUERY = "query OneParcel { parcels(first: 1) { edges { node { renewalCode } } } }"
# GraphiQL's editors are CodeMirror 5 instances: the query's, then variables' and headers'.
_QUERY_EDITOR = "document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror"
_HEADERS_EDITOR = "document.querySelectorAll('.graphiql-editor-tool .CodeMirror')[1].CodeMirror"


async def test_a_browser_opens_the_explorer_runs_a_query_and_hears_a_subscription(
    sqlite: Backend, notary: Notary
) -> None:
    async with gateway_process(sqlite, {}) as address, chromium() as browser:
        origin = f"http://{address}"
        async with httpx.AsyncClient(base_url=origin) as api:
            answer = (await api.post("/graphql", json={"query": QUERY})).json()
        expected = answer["data"]["parcels"]["edges"][0]["node"]["renewalCode"]

        await browser.command("POST", "/url", {"url": f"{origin}/graphql"})
        # GraphiQL rendered: its editors exist (the page said "Loading…" until then).
        await browser.until(
            "return !!document.querySelector('.graphiql-query-editor .CodeMirror')",
            what="GraphiQL's query editor",
        )
        loaded = await browser.script(
            "return performance.getEntriesByType('resource').map(e => e.name)"
        )
        assert loaded, "the page loaded nothing"
        assert all(url.startswith(origin + "/") for url in loaded), loaded

        # The explorer opens beside the editor, listing the schema's root fields.
        await browser.script(
            "document.querySelector('button[aria-label=\"Show GraphiQL Explorer\"]').click()"
        )
        await browser.until(
            "return !!document.querySelector('.graphiql-explorer-root .graphiql-explorer-parcels')",
            what="the explorer, listing the parcels field",
        )

        # A query, with a header written in the IDE's headers pane.
        await browser.script(_QUERY_EDITOR + ".setValue(arguments[0])", QUERY)
        headers = await browser.script(f"return {_HEADERS_EDITOR}.getValue()")
        assert "X-Road-Issue" in headers  # the pane offers the headers callers send
        await browser.script(
            _HEADERS_EDITOR + ".setValue(arguments[0])", json.dumps({"X-Gateway-Debug": "cost"})
        )
        # GraphiQL has read the new document once the explorer shows its operation.
        await browser.until(
            "return !!document.getElementById('query-OneParcel')", what="the edited operation"
        )
        shown = await run_until(browser, expected, what=f"the answer ({expected})")
        assert '"renewalCode"' in shown
        assert '"sqlStatements"' in shown  # the header set in the IDE reached the gateway

        # A subscription over the WebSocket, the pane's headers its connection's payload: the
        # notary hears of its spare key's revocation, made meanwhile over HTTP.
        await browser.script(
            _HEADERS_EDITOR + ".setValue(arguments[0])",
            json.dumps({"Authorization": f"Bearer {notary.key}"}),
        )
        await browser.script(
            _QUERY_EDITOR + ".setValue(arguments[0])",
            "subscription Revocations { apiKeyRevoked { prefix state } }",
        )
        await browser.until(
            "return !!document.getElementById('subscription-Revocations')",
            what="the edited subscription",
        )
        await browser.script("document.querySelector('.graphiql-execute-button').click()")
        revoke = "mutation ($p: String!) { revokeApiKey(prefix: $p) { state } }"
        holder = {"Authorization": f"Bearer {notary.key}"}
        heard: str | None = None
        async with httpx.AsyncClient(base_url=origin, headers=holder) as api:
            # Nothing on the page says when the subscription listens: revoke one spare key
            # after another until an announcement shows (one revoked before is heard by none).
            for spare in notary.spares:
                variables = {"p": spare}
                await api.post("/graphql", json={"query": revoke, "variables": variables})
                with contextlib.suppress(asyncio.TimeoutError):
                    heard = await asyncio.wait_for(
                        run_until(browser, "REVOKED", what="a revocation", start=False),
                        timeout=PATIENCE_S / len(notary.spares),
                    )
                    break
        pane = await browser.script("return document.querySelector('.graphiql-response').innerText")
        assert heard, f"no revocation reached the page, which shows: {pane}"
        assert any(spare in heard for spare in notary.spares)

        # Nothing refused by the page's policy, nothing failed to load, no script error.
        logged = await browser.command("POST", "/se/log", {"type": "browser"})
        severe = [entry["message"] for entry in logged if entry["level"] == "SEVERE"]
        assert severe == [], severe
