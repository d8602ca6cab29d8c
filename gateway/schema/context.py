"""What every resolver receives: the caller's request, fresh loaders, databases, cost counters."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import strawberry
from starlette.requests import Request
from starlette.responses import Response

from db.engines import Databases, StatementCounter
from gateway.loaders import Loaders
from gateway.settings import Settings


@dataclass
class RequestCost:
    statements: StatementCounter = field(default_factory=StatementCounter)
    agency_calls: int = 0
    started: float = field(default_factory=time.perf_counter)

    def as_extension(self) -> dict[str, float | int]:
        return {
            "sqlStatements": self.statements.count,
            "agencyCalls": self.agency_calls,
            "durationMs": round((time.perf_counter() - self.started) * 1000, 2),
        }


@dataclass
class Context:
    request: Request
    response: Response
    settings: Settings
    databases: Databases
    loaders: Loaders
    request_id: str
    cost: RequestCost
    report_cost: bool


Info = strawberry.Info[Context, None]
