"""Trouble on demand for an agency: added latency, a failure rate, and a switch that takes it down.

Set over HTTP on each agency: `PUT /_chaos` with any subset of
`{"latency_ms": int, "error_rate": float, "down": bool, "seed": int}` merges into the current
settings, `DELETE /_chaos` resets them (and the random sequence), `GET /_chaos` shows them.
Only service calls suffer: /_chaos and /_calls never do.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

MAX_LATENCY_MS = 120_000
DEFAULT_SEED = 0

# What a reverse proxy says for a dead upstream: not the agency's own format, on purpose.
DOWN_PAGE = (
    "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n"
    "<body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n"
    "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


@dataclass
class ChaosSettings:
    latency_ms: int = 0
    error_rate: float = 0.0
    down: bool = False


class Chaos:
    """One agency's chaos settings and the seeded random sequence that decides failures."""

    def __init__(self, seed: int = DEFAULT_SEED) -> None:
        self.settings = ChaosSettings()
        self.seed = seed
        self._initial_seed = seed
        self._random = random.Random(seed)

    def update(self, changes: Mapping[str, Any]) -> None:
        """Merge validated changes; ValueError names the first bad field."""
        unknown = set(changes) - {"latency_ms", "error_rate", "down", "seed"}
        if unknown:
            raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
        latency = changes.get("latency_ms", self.settings.latency_ms)
        error_rate = changes.get("error_rate", self.settings.error_rate)
        down = changes.get("down", self.settings.down)
        seed = changes.get("seed", None)
        # bool is an int in Python; JSON's true is not a latency.
        if not isinstance(latency, int) or isinstance(latency, bool):
            raise ValueError("latency_ms must be an integer")
        if not 0 <= latency <= MAX_LATENCY_MS:
            raise ValueError(f"latency_ms must be between 0 and {MAX_LATENCY_MS}")
        if not isinstance(error_rate, int | float) or isinstance(error_rate, bool):
            raise ValueError("error_rate must be a number")
        if not 0.0 <= error_rate <= 1.0:
            raise ValueError("error_rate must be between 0 and 1")
        if not isinstance(down, bool):
            raise ValueError("down must be true or false")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise ValueError("seed must be an integer")
        self.settings = ChaosSettings(latency_ms=latency, error_rate=float(error_rate), down=down)
        if seed is not None:
            self.seed = seed
            self._random = random.Random(seed)

    def reset(self) -> None:
        self.settings = ChaosSettings()
        self.seed = self._initial_seed
        self._random = random.Random(self.seed)

    @property
    def down(self) -> bool:
        return self.settings.down

    async def delay(self) -> None:
        if self.settings.latency_ms:
            await asyncio.sleep(self.settings.latency_ms / 1000)

    def should_fail(self) -> bool:
        """Draw once per service call, so a seed gives the same failures in the same order."""
        rate = self.settings.error_rate
        return rate > 0 and self._random.random() < rate

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self.settings), "seed": self.seed}

    async def endpoint(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.reset()
        elif request.method == "PUT":
            try:
                changes = json.loads(await request.body())
            except ValueError:
                return JSONResponse({"error": "the body must be JSON"}, status_code=400)
            if not isinstance(changes, dict):
                return JSONResponse({"error": "the body must be a JSON object"}, status_code=400)
            try:
                self.update(changes)
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(self.as_json())

    def routes(self) -> list[Route]:
        return [Route("/_chaos", self.endpoint, methods=["GET", "PUT", "DELETE"])]


def down_response() -> Response:
    return Response(DOWN_PAGE, status_code=503, media_type="text/html")
