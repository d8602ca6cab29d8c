"""strawberry's extension hooks, entered as strawberry enters them, without working out anew
on every request what kind of function each hook is.

For each of an operation's stages (operation, parsing, validation, execution) strawberry
asks of every extension whether its hook is a generator, an async generator or a plain
function (inspect's checks, through several calls each) and wraps it in a new context
manager (contextlib's decorator, which copies the function's name and documents through
functools.wraps): some twenty such wrappings per request for the gateway's extensions, a
visible share of a single look-up's CPU. Here the wrapping is done once per extension class
and hook; each request only binds it to the request's extension. What is entered, in which
order, with which errors, is strawberry's (ExtensionContextManagerBase and its exit
stacks); streamed results keep strawberry's own manager.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from functools import partial
from typing import Any

from strawberry.extensions import SchemaExtension
from strawberry.extensions.context import (
    ExecutingContextManager,
    ExtensionContextManagerBase,
    OperationContextManager,
    ParsingContextManager,
    ValidationContextManager,
    WrappedHook,
)
from strawberry.extensions.runner import SchemaExtensionsRunner

# A hook's context manager factory (called with the extension) and whether it is async, by
# extension class and hook name; None where the class keeps SchemaExtension's default.
_Factory = tuple[Callable[[SchemaExtension], Any], bool]
_FACTORIES: dict[tuple[type, str], _Factory | None] = {}


def _factory(extension: SchemaExtension, hook_name: str) -> _Factory | None:
    """What strawberry's get_hook makes of the extension's class's hook, as a factory of
    the extension (the same for every extension of the class)."""
    hook_fn = getattr(type(extension), hook_name)
    if hook_fn is getattr(SchemaExtension, hook_name):
        return None
    if inspect.isgeneratorfunction(hook_fn):
        return contextlib.contextmanager(hook_fn), False
    if inspect.isasyncgenfunction(hook_fn):
        return contextlib.asynccontextmanager(hook_fn), True
    if not callable(hook_fn):
        raise ValueError(f"Hook {hook_name} on {extension} must be callable, received {hook_fn!r}")
    if inspect.iscoroutinefunction(hook_fn):

        @contextlib.asynccontextmanager
        async def awaited(extension: SchemaExtension) -> AsyncIterator[None]:
            await hook_fn(extension)
            yield

        return awaited, True

    @contextlib.contextmanager
    def called(extension: SchemaExtension) -> Iterator[None]:
        hook_fn(extension)
        yield

    return called, False


class _RememberedHooks(ExtensionContextManagerBase):
    HOOK_NAME: str

    def get_hook(self, extension: SchemaExtension) -> WrappedHook | None:
        key = (type(extension), self.HOOK_NAME)
        try:
            known = _FACTORIES[key]
        except KeyError:
            known = _FACTORIES[key] = _factory(extension, self.HOOK_NAME)
        if known is None:
            return None
        factory, is_async = known
        return WrappedHook(extension, partial(factory, extension), is_async)


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
