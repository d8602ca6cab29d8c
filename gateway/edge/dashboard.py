"""The citizen requests' dashboard (داشبورد درخواست‌های شهروندی) for councils and managers: a
Persian, right-to-left page served from the gateway's own files, whose script asks /graphql
the same public queries anyone may (requestCounts, serviceTransparency, departmentRanking,
requestHotspots, frequentProblems) and draws them as SVG: volumes by Jalali month, status and
region, times to resolution, the ranking, and a map of hotspots over the regions' boundaries
(from /dashboard/regions.json). Nothing is fetched from elsewhere (no CDN, no map tiles, no
web fonts), so it works on a network cut off from the internet.

`?since=…&until=…` (ISO 8601) narrows every figure to a range, as the queries' arguments do.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from db.engines import Databases
from gateway.requests.records import DATABASE, REGIONS

__all__ = ["CHARGED_PATHS", "DASHBOARD_PATH", "PUBLIC_PATHS", "Dashboard"]

DASHBOARD_PATH = "/dashboard"
STATIC = Path(__file__).parent / "static" / "dashboard"
# Its files, by the path they are served at, and their media types.
FILES = {
    f"{DASHBOARD_PATH}": ("index.html", "text/html; charset=utf-8"),
    f"{DASHBOARD_PATH}/dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
    f"{DASHBOARD_PATH}/dashboard.css": ("dashboard.css", "text/css; charset=utf-8"),
}
REGIONS_PATH = f"{DASHBOARD_PATH}/regions.json"
PUBLIC_PATHS = frozenset({*FILES, REGIONS_PATH})
# The regions are read from the database on every request: charged to the caller's window
# (gateway/edge/middleware.py RateLimit), as /graphql is; the files are not.
CHARGED_PATHS = frozenset({f"GET {REGIONS_PATH}"})

# Its own script and style, and /graphql on the same origin; nothing else.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
# Browsers may keep the files a few minutes; the figures come fresh from /graphql.
MAX_AGE_S = 300


class Dashboard:
    def __init__(self, databases: Databases) -> None:
        self.databases = databases

    @property
    def routes(self) -> list[BaseRoute]:
        return [
            *(Route(path, self.file, methods=["GET", "HEAD"]) for path in FILES),
            Route(REGIONS_PATH, self.regions, methods=["GET", "HEAD"]),
        ]

    async def file(self, request: Request) -> Response:
        name, media_type = FILES[request.url.path]
        return FileResponse(
            STATIC / name,
            media_type=media_type,
            headers={"Content-Security-Policy": CSP, "Cache-Control": f"max-age={MAX_AGE_S}"},
        )

    async def regions(self, _request: Request) -> Response:
        """The regions' numbers, names and boundaries ([latitude, longitude] rings): public
        facts of the city, drawn under the hotspots."""
        async with self.databases.engine(DATABASE).connect() as connection:
            rows = await connection.execute(
                select(
                    REGIONS.c.region, REGIONS.c.name_fa, REGIONS.c.name_en, REGIONS.c.boundary
                ).order_by(REGIONS.c.region)
            )
            regions = [
                {
                    "region": row.region,
                    "nameFa": row.name_fa,
                    "nameEn": row.name_en,
                    "boundary": row.boundary,
                }
                for row in rows
            ]
        return JSONResponse({"regions": regions}, headers={"Cache-Control": f"max-age={MAX_AGE_S}"})
