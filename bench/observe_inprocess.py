"""What the operations layer adds to one request, timed in-process: the `Observe` middleware
(log line, metrics, trace id; tracing off) around an ASGI app that answers at once, against
that app alone.

    .venv/bin/python bench/observe_inprocess.py [--requests 20000] [--level warning|info]
                                                [--multiprocess]

`--level info` writes each request's JSON line (to /dev/null), as production does; below it
the line is not made. `--multiprocess` keeps the metrics in files, as `gateway run` does with
several workers. Prints microseconds per request with and without the layer, and their
difference. On a shared machine run it a few times and take the best.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_DIR = Path(__file__).resolve().parent.parent


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b""}


async def _send(_message: Any) -> None:
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--level", default="warning", help="GATEWAY_LOG_LEVEL (warning)")
    parser.add_argument("--multiprocess", action="store_true", help="metrics in files")
    args = parser.parse_args()
    if args.multiprocess:  # before prometheus-client is imported
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="observe-inprocess-")
    sys.path.insert(0, str(REPO_DIR))
    from starlette.routing import Route

    from gateway.edge.observe import Observe
    from gateway.observe.logs import configure_logging
    from gateway.observe.requests import note_operation

    configure_logging(args.level, "json", open(os.devnull, "w"))  # noqa: SIM115

    async def app(_scope: Any, _receive: Any, send: Any) -> None:
        note_operation("query", "Lookup")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    observed = Observe(app, [Route("/graphql", app)])

    def scope() -> dict[str, Any]:
        return {
            "type": "http",
            "method": "POST",
            "path": "/graphql",
            "headers": [(b"authorization", b"Bearer x")],
            "client": ("127.0.0.1", 40000),
        }

    async def timed(target: Any, count: int) -> float:
        started = time.perf_counter()
        for _ in range(count):
            await target(scope(), _receive, _send)
        return (time.perf_counter() - started) / count * 1e6

    async def run() -> tuple[float, float]:
        await timed(observed, args.requests // 10)  # warm-up
        return await timed(observed, args.requests), await timed(app, args.requests)

    with_layer, without = asyncio.run(run())
    print(
        f"log level {args.level}, metrics {'in files' if args.multiprocess else 'in memory'}: "
        f"{with_layer:.1f} us/request with the layer, {without:.1f} without: "
        f"{with_layer - without:.1f} us"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
