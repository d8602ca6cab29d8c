"""gateway/schema/hooks.py: extension hooks wrapped once per class are entered and left as
strawberry enters and leaves them: the same order, the same results and errors, for every
kind of hook (generator, async generator, function, coroutine function)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import strawberry
from strawberry.extensions import SchemaExtension

from gateway.schema.hooks import RememberedHooksRunner

EVENTS: list[str] = []


class Generators(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        EVENTS.append("operation: generator in")
        yield
        EVENTS.append("operation: generator out")

    def on_parse(self) -> Iterator[None]:
        EVENTS.append("parse: generator in")
        try:
            yield
        finally:
            EVENTS.append("parse: generator out")


class AsyncGenerators(SchemaExtension):
    async def on_operation(self) -> AsyncIterator[None]:
        EVENTS.append("operation: async generator in")
        yield
        EVENTS.append("operation: async generator out")

    async def on_execute(self) -> AsyncIterator[None]:
        EVENTS.append(f"execute: query {self.execution_context.operation_name}")
        yield
        result = self.execution_context.result
        EVENTS.append(f"execute: out with {result.data if result else None}")


class Functions(SchemaExtension):
    def on_validate(self) -> None:  # type: ignore[override]
        EVENTS.append("validate: function")

    async def on_execute(self) -> None:  # type: ignore[override]
        EVENTS.append("execute: coroutine function")

    def get_results(self) -> dict[str, Any]:
        return {"functions": len(EVENTS)}


class Refusing(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        EVENTS.append("execute: refusing")
        if self.execution_context.operation_name == "Refused":
            raise PermissionError("refused by an extension")
        yield


@strawberry.type
class Query:
    @strawberry.field
    def hello(self) -> str:
        EVENTS.append("resolver")
        return "world"


class Remembering(strawberry.Schema):
    def create_extensions_runner(self, execution_context: Any, extensions: Any) -> Any:
        return RememberedHooksRunner(execution_context=execution_context, extensions=extensions)


def _schemas(*extensions: type[SchemaExtension]) -> list[strawberry.Schema]:
    return [
        kind(query=Query, extensions=list(extensions)) for kind in (Remembering, strawberry.Schema)
    ]


@pytest.mark.parametrize("operation", ["Hello", "Refused"])
async def test_hooks_run_as_strawberry_runs_them(operation: str) -> None:
    outcomes = []
    for schema in _schemas(Generators, AsyncGenerators, Functions, Refusing):
        EVENTS.clear()
        result = await schema.execute(f"query {operation} {{ hello }}")
        outcomes.append(
            (result.data, [e.message for e in result.errors or []], result.extensions, EVENTS[:])
        )
    assert outcomes[0] == outcomes[1]
    events = outcomes[0][3]
    assert events[0] == "operation: generator in"
    if operation == "Hello":
        assert "resolver" in events
        assert events[-1] == "operation: generator out"
    else:  # the refusal went through the operation's generator, which did not go on
        assert "resolver" not in events
        assert outcomes[0][1] == ["refused by an extension"]


def _errors(result: Any) -> list[str]:
    # An extension's repr names its address, which differs between the two runs.
    return [re.sub(r" at 0x[0-9a-f]+", "", error.message) for error in result.errors or []]


def test_a_synchronous_execution_refuses_async_hooks_as_strawberry_does() -> None:
    outcomes = []
    for schema in _schemas(Generators, AsyncGenerators):
        EVENTS.clear()
        result = schema.execute_sync("{ hello }")
        outcomes.append((result.data, _errors(result), EVENTS[:]))
    assert outcomes[0] == outcomes[1]
    assert "failed to complete synchronously" in outcomes[0][1][0]
    plain = [schema.execute_sync("{ hello }").data for schema in _schemas(Generators)]
    assert plain == [{"hello": "world"}] * 2


def test_a_hook_that_is_not_callable_is_refused() -> None:
    class Broken(SchemaExtension):
        on_operation = "not a function"  # type: ignore[assignment]

    outcomes = [_errors(schema.execute_sync("{ hello }")) for schema in _schemas(Broken)]
    assert outcomes[0] == outcomes[1]
    assert "must be callable, received 'not a function'" in outcomes[0][0]


class FailingOnTheWayOut(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        EVENTS.append("execute: in, to fail")
        yield
        raise LookupError("failed on the way out")


class AsyncFailingOnTheWayOut(SchemaExtension):
    async def on_operation(self) -> AsyncIterator[None]:
        EVENTS.append("operation: async in, to fail")
        yield
        raise KeyError("async failure on the way out")


class NotStopping(SchemaExtension):
    def on_parse(self) -> Iterator[None]:
        EVENTS.append("parse: twice")
        yield
        yield


class Suppressing(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        try:
            yield
        except Exception as error:  # what comes out of the stage, or of a later hook
            EVENTS.append(f"operation: suppressing {type(error).__name__}")


class Watching(SchemaExtension):
    async def on_execute(self) -> AsyncIterator[None]:
        try:
            yield
        except BaseException as error:
            EVENTS.append(f"execute: saw {type(error).__name__}")
            raise
        finally:
            EVENTS.append("execute: watching out")


@pytest.mark.parametrize(
    "extensions",
    [
        (Watching, FailingOnTheWayOut),
        (FailingOnTheWayOut, Watching),
        (AsyncFailingOnTheWayOut, Generators),
        (Suppressing, AsyncFailingOnTheWayOut),
        (Generators, NotStopping),
        (Suppressing, Watching, Refusing),
        (Watching, Functions, FailingOnTheWayOut, Generators, AsyncGenerators),
    ],
    ids=lambda extensions: "+".join(e.__name__ for e in extensions),
)
@pytest.mark.parametrize("operation", ["Hello", "Refused"])
async def test_hooks_failing_on_the_way_out_fail_as_strawberrys_do(
    extensions: tuple[type[SchemaExtension], ...], operation: str
) -> None:
    """A hook that raises, or does not stop, after its yield: the hooks still open see the
    error, and what reaches the caller (an error in the result, or raised), is what
    strawberry's exit stack gives."""
    outcomes: list[Any] = []
    for schema in _schemas(*extensions):
        EVENTS.clear()
        try:
            result = await schema.execute(f"query {operation} {{ hello }}")
        except Exception as error:  # raised out of the stage, as strawberry raises it
            outcomes.append(("raised", type(error).__name__, str(error), EVENTS[:]))
        else:
            outcomes.append((result.data, _errors(result), EVENTS[:]))
    assert outcomes[0] == outcomes[1]
