"""GraphiQL (development only), served from the gateway's own files: no CDN, no internet.

The IDE's files are vendored in gateway/edge/static/graphiql/vendor/ at pinned versions, with
their checksums in manifest.json (scripts/refresh-graphiql.py fetches them from npm and
writes both); they are checked against it when first loaded. Each file is served under its
digest, `/graphiql/<digest>/<name>`, so it may be cached for a year: a new version is a new
address. The page itself is never cached, and its Content-Security-Policy allows scripts,
styles, fonts, images and connections from the gateway's own origin only: the page's own
script and style are files beside it, not inline.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.edge.requests import http_refusal

STATIC = Path(__file__).parent / "static" / "graphiql"
ASSETS_PATH = "/graphiql"
# What the page may load: its own origin and nothing else (data: only for the icons and
# fonts that GraphiQL's stylesheet embeds, which come with the stylesheet itself).
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'"
)
# A file's address names its digest, so that it never changes under the same address.
IMMUTABLE = "public, max-age=31536000, immutable"
_MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
# The page's own files, beside the vendored ones: its start-up script and its style.
_OWN = ("graphiql-start.js", "graphiql-page.css")
_DIGEST_CHARS = 16


class VendoredFileChanged(Exception):
    """A vendored file does not match manifest.json: refresh it with the script, never by hand."""


@dataclass
class Asset:
    name: str
    body: bytes
    digest: str  # sha256, hex
    media_type: str
    _gzipped: bytes | None = field(default=None, repr=False)

    @property
    def path(self) -> str:
        return f"{ASSETS_PATH}/{self.digest[:_DIGEST_CHARS]}/{self.name}"

    def gzipped(self) -> bytes:
        # Compressed once, when first asked for: GraphiQL's script is 3.5 MB, about 1 MB so.
        if self._gzipped is None:
            self._gzipped = gzip.compress(self.body, compresslevel=6, mtime=0)
        return self._gzipped


@dataclass(frozen=True)
class GraphiQLFiles:
    """The page and the files it loads, read and checked once."""

    page: str
    assets: dict[str, Asset]

    @property
    def routes(self) -> list[BaseRoute]:
        return [Route(ASSETS_PATH + "/{digest}/{name}", self.asset, methods=["GET", "HEAD"])]

    def page_response(self) -> Response:
        return HTMLResponse(
            self.page,
            headers={"content-security-policy": PAGE_CSP, "cache-control": "no-store"},
        )

    async def asset(self, request: Request) -> Response:
        found = self.assets.get(request.path_params["name"])
        if found is None or found.digest[:_DIGEST_CHARS] != request.path_params["digest"]:
            return http_refusal(404, "")
        headers = {"cache-control": IMMUTABLE, "vary": "accept-encoding"}
        body = found.body
        if "gzip" in request.headers.get("accept-encoding", ""):
            body = found.gzipped()
            headers["content-encoding"] = "gzip"
        return Response(body, media_type=found.media_type, headers=headers)


def vendored_manifest() -> dict[str, dict[str, object]]:
    files: dict[str, dict[str, object]] = json.loads((STATIC / "manifest.json").read_text())[
        "files"
    ]
    return files


@functools.cache
def graphiql_files() -> GraphiQLFiles:
    """Reads the vendored files (checking each against the manifest) and the page's own."""
    assets: dict[str, Asset] = {}
    for name, entry in vendored_manifest().items():
        suffix = Path(name).suffix
        if suffix not in _MEDIA_TYPES:
            continue  # the licences stay in the folder, for readers
        body = (STATIC / "vendor" / name).read_bytes()
        digest = hashlib.sha256(body).hexdigest()
        if digest != entry["sha256"]:
            raise VendoredFileChanged(f"{name} does not match manifest.json")
        assets[name] = Asset(name, body, digest, _MEDIA_TYPES[suffix])
    for name in _OWN:
        body = (STATIC / name).read_bytes()
        digest = hashlib.sha256(body).hexdigest()
        assets[name] = Asset(name, body, digest, _MEDIA_TYPES[Path(name).suffix])
    page = (STATIC / "graphiql.html").read_text()
    for name, found in assets.items():
        page = page.replace("{" + name + "}", found.path)
    return GraphiQLFiles(page=page, assets=assets)
