"""`gateway worker`: a process that only runs jobs, until SIGTERM or SIGINT."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType

from gateway.jobs.config import JobsConfig
from gateway.jobs.engine import JobEngine
from gateway.jobs.kinds import JobKinds


def run_worker(
    config: JobsConfig, kinds: JobKinds, *, on_ready: Callable[[], None] | None = None
) -> None:
    stop = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    engine = JobEngine(config, kinds)
    engine.start()
    try:
        if on_ready is not None:
            on_ready()
        stop.wait()
    finally:
        engine.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
