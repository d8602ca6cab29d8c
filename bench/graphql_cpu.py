"""CPU per request of the gateway's whole HTTP path, in-process: the ASGI app (every
middleware, authentication, rate limit, GraphQL, loaders, SQL, audit) called directly with
the load benchmark's queries, one request after another, no socket and no client library.
For before/after decisions on a shared machine: process CPU time (this process's every
thread) is far steadier than throughput under someone else's load.

    GATEWAY_DATA_DIR=… [GATEWAY_<NAME>_DATABASE_URL=…] \\
    .venv/bin/python bench/graphql_cpu.py [--scenario lookup|rotating|page|lookup_audited|
                                          page_audited|deed] [--requests 400] [--repeat 3]
                                          [--concurrency 1] [--profile out.prof]
                                          [--query FILE]

The databases must be seeded (`gateway seed --parcels N`, or bench/run.py --keep-data's
data dir). Prints µs of CPU per request (the best of --repeat rounds, after a warm-up) and
the SQL statements per request. `--profile` writes a cProfile of one more round.

`deed` is a notary's deed look-up, a different parcel each request: the simulated agencies
run in a process of their own (`python -m sandbox`, real SOAP over loopback), with the agency
cache off, so that every request makes its GetDeed and only the gateway's side is measured.

`--instructions` counts instead the machine instructions per request of the measured rounds
(this process's every thread, not the database server's), under valgrind's callgrind: the
same code on the same data gives the same count within a per cent or so, whatever else the
machine is doing, where CPU time on a shared machine moves by ten. It needs valgrind and a C
compiler; it runs some fifty times slower, so --requests 20 --repeat 1 is plenty. The loop's
slices are lifted for it (every object would otherwise wait for a turn under valgrind).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
QUERIES = {
    "lookup": ("parcel_public.graphql", "counter"),
    "rotating": ("parcel_public.graphql", "counter"),
    "page": ("parcels_page_public.graphql", "counter"),
    "lookup_audited": ("parcel.graphql", "notary"),
    "page_audited": ("parcels_page.graphql", "notary"),
    "deed": ("parcel_deed.graphql", "notary"),
}
# Scenarios whose requests each ask for another parcel.
ROTATING = {"rotating", "deed"}


def issue_key(kind: str) -> str:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "gateway"), "keys", "create", "--kind", kind,
         "--name", f"CPU bench {kind}"],
        capture_output=True, text=True, check=True, cwd=REPO_DIR,
    )  # fmt: skip
    return done.stdout.strip().splitlines()[-1]


class Caller:
    """Calls the ASGI app as a server would: one request, the whole answer collected."""

    def __init__(self, app: Any, authorization: str) -> None:
        self.app = app
        self.authorization = authorization.encode()

    async def post(self, body: bytes) -> tuple[int, bytes]:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/graphql",
            "raw_path": b"/graphql",
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"127.0.0.1:8090"),
                (b"content-type", b"application/json"),
                (b"accept", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"authorization", self.authorization),
            ],
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8090),
            "state": {},
        }
        sent = False
        status = 0
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.Event().wait()  # never: a disconnect only after the answer
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, b"".join(chunks)


def renewal_codes(count: int) -> list[str]:
    from sqlalchemy import text

    from db.engines import Databases
    from gateway.settings import Settings

    async def read() -> list[str]:
        databases = Databases(Settings().database_urls)
        try:
            async with databases.engine("planning").connect() as connection:
                rows = await connection.execute(
                    text("SELECT renewal_code FROM parcels ORDER BY id LIMIT :n"), {"n": count}
                )
                return [str(row[0]) for row in rows]
        finally:
            await databases.dispose()

    return asyncio.run(read())


async def measure(args: argparse.Namespace, authorization: str, codes: list[str]) -> None:
    from gateway.edge.app import create_app
    from gateway.settings import Settings

    file, _ = QUERIES[args.scenario]
    path = Path(args.query) if args.query else BENCH_DIR / "queries" / file
    document = path.read_text(encoding="utf-8")
    rotating = args.scenario in ROTATING

    def body(i: int) -> bytes:
        payload: dict[str, Any] = {"query": document}
        if "renewalCode" in document:
            payload["variables"] = {"renewalCode": codes[i % len(codes)] if rotating else codes[0]}
        return json.dumps(payload).encode()

    bodies = [body(i) for i in range(args.requests)]
    if args.baseline:  # bench/baseline.py's app on the same databases, for comparison
        sys.path.insert(0, str(BENCH_DIR))
        import baseline

        settings = Settings()
        app = baseline.create_app(
            settings.database_url("planning"), settings.database_url("revenue")
        )
    else:
        app = create_app(Settings())
    caller = Caller(app, authorization)
    async with app.router.lifespan_context(app):
        status, answer = await caller.post(bodies[0])
        if status != 200 or b'"errors"' in answer:
            raise SystemExit(f"HTTP {status}: {answer[:2000]!r}")

        async def round_() -> tuple[float, float]:
            queue = iter(bodies)

            async def worker() -> None:
                for each in queue:
                    status, answer = await caller.post(each)
                    if status != 200 or b'"errors"' in answer:
                        raise SystemExit(f"HTTP {status}: {answer[:2000]!r}")

            cpu, wall = time.process_time(), time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(args.concurrency)))
            return time.process_time() - cpu, time.perf_counter() - wall

        await round_()  # warm-up
        counting = _Callgrind.inside()
        if counting is not None:
            counting.start()
        collector = _Collector()
        with collector:
            results = [await round_() for _ in range(args.repeat)]
        if counting is not None:
            counting.stop()
        cpu = min(r[0] for r in results) / args.requests * 1e6
        wall = min(r[1] for r in results) / args.requests * 1e6
        rounds = ", ".join(f"{r[0] / args.requests * 1e6:,.0f}" for r in results)
        print(
            f"{args.scenario}: {cpu:,.0f} µs CPU per request (best of {args.repeat} rounds of "
            f"{args.requests}; rounds {rounds}), {wall:,.0f} µs wall, "
            f"concurrency {args.concurrency}"
        )
        print(collector.report(args.requests * args.repeat))
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            await round_()
            profiler.disable()
            profiler.dump_stats(args.profile)
            print(f"profile of one more round in {args.profile}")


class _Collector:
    """The cyclic collector's share of the measured rounds: the objects that reference
    counting could not free (they were in reference cycles), counted after a last full pass,
    and the pauses of its older generations' passes, which stop every request the worker is
    serving."""

    def __init__(self) -> None:
        self.passes = [0, 0, 0]
        self.paused = [0.0, 0.0, 0.0]
        self.freed = 0
        self.started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self.started = time.perf_counter()
            return
        generation = info["generation"]
        self.passes[generation] += 1
        self.paused[generation] += time.perf_counter() - self.started
        self.freed += info["collected"]

    def __enter__(self) -> None:
        gc.collect()
        gc.callbacks.append(self)

    def __exit__(self, *_exc: object) -> None:
        passes = list(self.passes)
        paused = list(self.paused)
        gc.collect()  # what the rounds left in cycles, counted, not timed as a pause
        gc.callbacks.remove(self)
        self.passes, self.paused = passes, paused

    def report(self, requests: int) -> str:
        older = self.passes[1] + self.passes[2]
        pause_ms = (self.paused[1] + self.paused[2]) * 1e3
        return (
            f"collector: {self.freed / requests:,.1f} objects per request freed only by it; "
            f"{older} passes over generations 1-2 pausing {pause_ms:,.1f} ms in all "
            f"({pause_ms * 1e3 / requests:,.1f} µs per request), "
            f"{self.passes[0]} generation-0 passes"
        )


class _Callgrind:
    """Counting instructions: the script again under callgrind, whose counting a small C
    library turns on around the measured rounds only (startup and warm-up not counted)."""

    TOGGLE_C = """#include <valgrind/callgrind.h>
void start(void) { CALLGRIND_START_INSTRUMENTATION; CALLGRIND_TOGGLE_COLLECT; }
void stop(void) { CALLGRIND_TOGGLE_COLLECT; CALLGRIND_DUMP_STATS_AT("measured"); }
"""
    ENV = "BENCH_CALLGRIND_TOGGLE"

    def __init__(self, library: str) -> None:
        import ctypes

        self.library = ctypes.CDLL(library)

    @classmethod
    def inside(cls) -> _Callgrind | None:
        library = os.environ.get(cls.ENV)
        return None if library is None else cls(library)

    def start(self) -> None:
        self.library.start()

    def stop(self) -> None:
        self.library.stop()

    @classmethod
    def run(cls, argv: list[str], requests_counted: int) -> int:
        if shutil.which("valgrind") is None or shutil.which("cc") is None:
            raise SystemExit("--instructions needs valgrind and a C compiler (cc)")
        with tempfile.TemporaryDirectory(prefix="bench-callgrind-") as work:
            source = Path(work) / "toggle.c"
            source.write_text(cls.TOGGLE_C, encoding="utf-8")
            library = str(Path(work) / "toggle.so")
            subprocess.run(["cc", "-shared", "-fPIC", "-o", library, str(source)], check=True)
            out = str(Path(work) / "callgrind.out")
            env = {
                **os.environ,
                cls.ENV: library,
                "GATEWAY_LOOP_SLICE_MS": "100000000",
                "GATEWAY_OPERATION_BUDGET_S": "100000",
            }
            done = subprocess.run(
                ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--collect-atstart=no",
                 f"--callgrind-out-file={out}", sys.executable, __file__, *argv],
                env=env, capture_output=True, text=True,
            )  # fmt: skip
            print("\n".join(line for line in done.stdout.splitlines() if "µs CPU" not in line))
            dumps = sorted(Path(work).glob("callgrind.out.*"))
            if done.returncode != 0 or not dumps:
                sys.stderr.write(done.stderr[-4000:])
                return done.returncode or 1
            totals = next(
                int(line.split()[1])
                for line in dumps[0].read_text(encoding="utf-8").splitlines()
                if line.startswith("totals:")
            )
        print(
            f"{totals / requests_counted:,.0f} instructions per request (callgrind, "
            f"{requests_counted} requests counted)"
        )
        return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scenario", choices=sorted(QUERIES), default="lookup")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--profile", help="write a cProfile of one more round here")
    parser.add_argument(
        "--baseline", action="store_true", help="measure bench/baseline.py's app instead"
    )
    parser.add_argument("--key", help="an API key to use instead of issuing one")
    parser.add_argument(
        "--query",
        help="another document to send, as the scenario's caller (to find what part of a "
        "query costs what)",
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions per request under callgrind instead of timing",
    )
    args = parser.parse_args()
    if args.instructions:
        argv = [a for a in sys.argv[1:] if a != "--instructions"]
        return _Callgrind.run(argv, args.requests * args.repeat)
    # bench/ holds modules named like libraries (requests.py): the repository instead.
    sys.path[0] = str(REPO_DIR)
    os.environ.setdefault("GATEWAY_ENV", "development")  # as bench/run.py runs the gateway
    os.environ.setdefault("GATEWAY_LOG_LEVEL", "warning")
    os.environ.setdefault("GATEWAY_SEED_PARCELS", "0")
    os.environ.setdefault("GATEWAY_JOBS_IN_APP", "false")  # no background work in the figure
    os.environ.setdefault("GATEWAY_RATE_LIMIT_PARTNER", "100000000/minute")
    os.environ.setdefault("GATEWAY_RATE_LIMIT_STRATEGY", "fixed-window")
    _, kind = QUERIES[args.scenario]
    key = args.key or ("none" if args.baseline else issue_key(kind))
    codes = renewal_codes(max(args.requests, 1))
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    with agencies() if args.scenario == "deed" else contextlib.nullcontext():
        asyncio.run(measure(args, f"Bearer {key}", codes))
    return 0


@contextlib.contextmanager
def agencies() -> Iterator[None]:
    """The simulated agencies in a process of their own (not counted, not timed), the
    gateway configured for them with its agency cache off."""
    import socket

    import httpx

    from sandbox.run import AGENCIES
    from sandbox.wsse import DEMO_PASSWORDS, DEMO_USERNAME

    ports = {}
    for name in AGENCIES:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            ports[name] = probe.getsockname()[1]
    env = {f"SANDBOX_{name.upper()}_PORT": str(port) for name, port in ports.items()}
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox"],
        env={**os.environ, **env, "SANDBOX_HOST": "127.0.0.1"},
        cwd=REPO_DIR, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for name, port in ports.items():
            os.environ[f"GATEWAY_{name.upper()}_URL"] = f"http://127.0.0.1:{port}"
            if name in DEMO_PASSWORDS:
                os.environ[f"GATEWAY_{name.upper()}_USERNAME"] = DEMO_USERNAME
                os.environ[f"GATEWAY_{name.upper()}_PASSWORD"] = DEMO_PASSWORDS[name]
        os.environ["GATEWAY_LAND_REGISTRY_CACHE_TTL_S"] = "0"
        for _ in range(300):
            with contextlib.suppress(httpx.TransportError):
                url = f"http://127.0.0.1:{ports['land_registry']}/?wsdl"
                if httpx.get(url).status_code == 200:
                    break
            if process.poll() is not None:
                raise SystemExit("the simulated agencies did not start")
            time.sleep(0.1)
        yield
    finally:
        process.terminate()
        process.wait()


if __name__ == "__main__":
    raise SystemExit(main())
