"""Log lines in one format, made by structlog: JSON in production, text in development.

The gateway's modules log through the standard library (`logging.getLogger(...)`), and so
do uvicorn, SQLAlchemy and DBOS; `configure_logging` puts structlog's formatter on the root
logger, so every line of the process comes out alike. Fields a line carries beyond its
message travel in `extra={"gateway": {...}}` (see `fields`). Every line names the request
it belongs to (`request_id`, null outside one) and its `trace_id`; lines about an HTTP
request also carry its `status`. Nothing personal and no secret goes into a field: ids,
codes, names of operations, durations.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Any, TextIO

import orjson
import structlog
from structlog.typing import EventDict, WrappedLogger

from gateway.observe.requests import current

FIELDS = "gateway"  # the `extra` key holding a line's own fields


def fields(**values: Any) -> dict[str, Any]:
    """`extra=` for a log call whose line carries these fields."""
    return {FIELDS: values}


def _record_fields(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
    record = event.get("_record")
    extra: Mapping[str, Any] | None = getattr(record, FIELDS, None)
    if extra:
        for key, value in extra.items():
            event.setdefault(key, value)
    return event


def _request(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
    observation = current.get()
    event.setdefault("request_id", observation.request_id if observation else None)
    event.setdefault("trace_id", observation.trace_id if observation else None)
    return event


def _json(value: Any, **_kwargs: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def configure_logging(level: str, format: str, stream: TextIO | None = None) -> None:
    """Every line of this process through one handler on the root logger, in `format`
    ("json" or "text") from `level` up. Call once, at the start of a process."""
    shared: list[Any] = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        _record_fields,
        _request,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any
    if format == "json":
        renderer = structlog.processors.JSONRenderer(serializer=_json)
        tail: list[Any] = [structlog.processors.dict_tracebacks]
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
        tail = []
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail, renderer],
    )
    # Lines never show the thread or process: the records need not look them up (a request's
    # line costs tens of microseconds, most of it the standard library's record).
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, *shared, _wrap],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


_wrap = structlog.stdlib.ProcessorFormatter.wrap_for_formatter
