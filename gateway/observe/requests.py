"""What one HTTP request leaves for its log line, its metrics and its span.

The edge (gateway/edge/observe.py) opens an `Observation` per request; anything below it
notes what it learned on the current one: the error codes it answered with (and the limit
a refused operation hit), the GraphQL operations it ran. Nothing here is personal data: no
variables, no arguments, no answers.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field

# An operation name a client chose is a label of metrics: kept short and plain, and
# names beyond this many distinct ones in a process are counted as "other".
MAX_OPERATION_NAMES = 500
_NAME_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_known_names: set[str] = set()


@dataclass(slots=True)
class Observation:
    """One HTTP request (or WebSocket connection) as the logs, metrics and traces see it."""

    request_id: str
    trace_id: str
    codes: list[str] = field(default_factory=list)
    limits: list[str] = field(default_factory=list)
    operations: list[tuple[str, str]] = field(default_factory=list)  # (type, name)

    @property
    def outcome(self) -> str:
        """The first error code answered, or OK."""
        return self.codes[0] if self.codes else "OK"

    @property
    def operation_name(self) -> str | None:
        names = [name for _, name in self.operations]
        return ",".join(names) if names else None

    @property
    def operation_type(self) -> str | None:
        types = [kind for kind, _ in self.operations]
        return ",".join(types) if types else None


current: ContextVar[Observation | None] = ContextVar("gateway_observation", default=None)


def note_error(code: str, limit: object = None) -> None:
    """An error with `code` answered the current request (`limit`: the limit it hit)."""
    observation = current.get()
    if observation is None:
        return
    observation.codes.append(code)
    if isinstance(limit, str):
        observation.limits.append(limit)


def note_operation(operation_type: str, name: str | None) -> None:
    """The current request ran (or was refused) a GraphQL operation of this type and name."""
    observation = current.get()
    if observation is not None:
        observation.operations.append((operation_type, operation_label(name)))


def operation_label(name: str | None) -> str:
    """A client's operation name as a label: `-` for none, `other` past the process's cap
    or for a name that is not a plain GraphQL name."""
    if not name:
        return "-"
    if name in _known_names:
        return name
    if len(name) > 64 or not set(name) <= _NAME_CHARACTERS:
        return "other"
    if name not in _known_names:
        if len(_known_names) >= MAX_OPERATION_NAMES:
            return "other"
        _known_names.add(name)
    return name


def current_trace_id() -> str | None:
    observation = current.get()
    return observation.trace_id if observation is not None else None
