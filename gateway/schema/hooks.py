"""strawberry's extension hooks, entered and left as strawberry enters and leaves them,
without the per-request machinery around each one.

For each of an operation's four stages (operation, parsing, validation, execution)
strawberry asked of every extension what kind of function each hook is (inspect's checks,
several calls each), wrapped it in a new context manager (contextlib's decorator, with
functools.wraps) and entered it through a new AsyncExitStack: for the gateway's seven hooks
a request, about a tenth of the CPU of a request that resolves nothing (`{ __typename }`).
Here a hook's kind is known once per extension class, and each request drives the hooks'
generators itself; what is entered, in which order, and every error, suppression and
chaining on the way out are strawberry's exit stack's (anything but a clean exit is handed
to one, made of contextlib's own managers around the generators still open). The hook of
a streamed result (on_stream_result) keeps strawberry's own manager.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable
from types import TracebackType
from typing import Any

from strawberry.extensions import SchemaExtension
from strawberry.extensions.context import (
    ExecutingContextManager,
    ExtensionContextManagerBase,
    OperationContextManager,
    ParsingContextManager,
    ValidationContextManager,
)
from strawberry.extensions.runner import SchemaExtensionsRunner

# How an operation's stage drives a hook, by extension class and hook name (None where the
# class keeps SchemaExtension's default): the hook's function and its kind.
_GENERATOR, _ASYNC_GENERATOR, _FUNCTION, _COROUTINE = range(4)
_Driven = tuple[Callable[..., Any], int]
_DRIVEN: dict[tuple[type, str], _Driven | None] = {}


def _driven(extension: SchemaExtension, hook_name: str) -> _Driven | None:
    key = (type(extension), hook_name)
    try:
        return _DRIVEN[key]
    except KeyError:
        pass
    hook_fn = getattr(type(extension), hook_name)
    driven: _Driven | None
    if hook_fn is getattr(SchemaExtension, hook_name):
        driven = None
    elif inspect.isgeneratorfunction(hook_fn):
        driven = (hook_fn, _GENERATOR)
    elif inspect.isasyncgenfunction(hook_fn):
        driven = (hook_fn, _ASYNC_GENERATOR)
    elif not callable(hook_fn):
        raise ValueError(f"Hook {hook_name} on {extension} must be callable, received {hook_fn!r}")
    else:
        driven = (hook_fn, _COROUTINE if inspect.iscoroutinefunction(hook_fn) else _FUNCTION)
    _DRIVEN[key] = driven
    return driven


class _RememberedHooks(ExtensionContextManagerBase):
    """One stage's hooks. Asynchronously (every request through the HTTP view) each hook is
    driven directly: a generator advanced to its yield on the way in and past it on the way
    out, in reverse order, as contextlib's managers in strawberry's AsyncExitStack would be,
    without making a manager, a stack and its callbacks per hook and request. Anything but
    every hook finishing cleanly (an error coming out of the stage, a hook failing or not
    stopping on the way out) is handed, with the hooks still open, to an AsyncExitStack of
    contextlib's own managers around them, so that errors, suppression and chaining are
    the standard library's. Synchronously (execute_sync) strawberry's own path runs."""

    HOOK_NAME: str

    def __init__(self, extensions: list[SchemaExtension]) -> None:
        self.extensions = extensions
        self.driven = [
            (extension, driven)
            for extension in extensions
            if (driven := _driven(extension, self.HOOK_NAME)) is not None
        ]

    def __enter__(self) -> None:
        # strawberry's own hooks and path (the gateway itself never executes synchronously).
        ExtensionContextManagerBase.__init__(self, self.extensions)
        super().__enter__()

    async def __aenter__(self) -> None:
        self.open: list[tuple[Any, int]] = []  # generators past their yield, in order
        for extension, (hook_fn, kind) in self.driven:
            if kind == _GENERATOR:
                generator = hook_fn(extension)
                try:
                    next(generator)
                except StopIteration:
                    raise RuntimeError("generator didn't yield") from None
                self.open.append((generator, kind))
            elif kind == _ASYNC_GENERATOR:
                generator = hook_fn(extension)
                try:
                    await anext(generator)
                except StopAsyncIteration:
                    raise RuntimeError("generator didn't yield") from None
                self.open.append((generator, kind))
            elif kind == _COROUTINE:
                await hook_fn(extension)  # nothing to do on the way out
            else:
                hook_fn(extension)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        # As strawberry's: what the stack answers is not returned, so an error coming out of
        # the stage goes on even where a hook would suppress it.
        open_ = self.open
        if exc_val is None:
            while open_:
                generator, kind = open_.pop()
                try:
                    if kind == _GENERATOR:
                        next(generator)
                    else:
                        await anext(generator)
                except (StopIteration, StopAsyncIteration):
                    continue
                except BaseException as error:  # handed on, as the exit stack does
                    failure: BaseException = error
                else:
                    failure = RuntimeError("generator didn't stop")
                    if kind == _GENERATOR:
                        generator.close()
                    else:
                        await generator.aclose()
                # What is still open meets this failure, as in strawberry's exit stack.
                if not await _exit_stack(open_).__aexit__(
                    type(failure), failure, failure.__traceback__
                ):
                    raise failure
                return
            return
        await _exit_stack(open_).__aexit__(exc_type, exc_val, exc_tb)


def _exit_stack(open_: list[tuple[Any, int]]) -> contextlib.AsyncExitStack:
    """An exit stack of contextlib's own managers around generators already past their
    yield (as strawberry's stack holds them), in the order they were entered."""
    stack = contextlib.AsyncExitStack()
    for generator, kind in open_:
        if kind == _GENERATOR:
            manager: Any = object.__new__(contextlib._GeneratorContextManager)
            manager.gen = generator
            stack.push(manager)
        else:
            manager = object.__new__(contextlib._AsyncGeneratorContextManager)
            manager.gen = generator
            stack.push_async_exit(manager)
    return stack


class _Operation(_RememberedHooks, OperationContextManager):
    pass


class _Validation(_RememberedHooks, ValidationContextManager):
    pass


class _Parsing(_RememberedHooks, ParsingContextManager):
    pass


class _Executing(_RememberedHooks, ExecutingContextManager):
    pass


class RememberedHooksRunner(SchemaExtensionsRunner):
    """strawberry's runner, its stages' hooks wrapped once per extension class."""

    def operation(self) -> OperationContextManager:
        return _Operation(self.extensions)

    def validation(self) -> ValidationContextManager:
        return _Validation(self.extensions)

    def parsing(self) -> ParsingContextManager:
        return _Parsing(self.extensions)

    def executing(self) -> ExecutingContextManager:
        return _Executing(self.extensions)
