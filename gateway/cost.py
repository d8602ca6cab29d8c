"""What one request cost: SQL statements, agency calls, time. Reported under X-Gateway-Debug."""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass, field

from db.engines import StatementCounter, statement_counter


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


current_cost: ContextVar[RequestCost | None] = ContextVar("current_cost", default=None)


def start_request_cost() -> RequestCost:
    """A fresh cost for the running request; engines and agency calls add to it."""
    cost = RequestCost()
    current_cost.set(cost)
    statement_counter.set(cost.statements)
    return cost
