"""The language a caller reads errors in: English, or Persian when Accept-Language prefers it.

`PreferredLanguage` (pure ASGI, just inside the request ids) reads the header once per HTTP
request or WebSocket connection and sets `LANGUAGE` for everything that answers it;
gateway/edge/errors.py builds every error's message in that language
(gateway/messages_fa.py), with the same codes and extensions.
"""

from __future__ import annotations

import contextvars

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ENGLISH = "en"
PERSIAN = "fa"
LANGUAGE: contextvars.ContextVar[str] = contextvars.ContextVar("language", default=ENGLISH)


def preferred_language(accept_language: str | None) -> str:
    """Persian when the header ranks `fa` (or `fa-IR`, …) above English and above zero;
    English otherwise, and by default. q-values are honoured; ties go to the first named."""
    best: tuple[float, int, str] | None = None
    for position, item in enumerate((accept_language or "").split(",")):
        tag, _, params = item.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in (ENGLISH, PERSIAN):
            continue
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality <= 0:
            continue
        candidate = (quality, -position, primary)
        if best is None or candidate[:2] > best[:2]:
            best = candidate
    return best[2] if best is not None else ENGLISH


class PreferredLanguage:
    """Sets LANGUAGE from the request's Accept-Language for the rest of the request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = [value for name, value in scope["headers"] if name == b"accept-language"]
        language = preferred_language(b",".join(given).decode("latin-1")) if given else ENGLISH
        token = LANGUAGE.set(language)

        async def send_varying(message: Message) -> None:
            if message["type"] == "http.response.start":
                # What a response says may depend on the header: caches keep them apart.
                headers = MutableHeaders(scope=message)
                if "accept-language" not in headers.get("vary", "").lower():
                    headers.add_vary_header("Accept-Language")
            await send(message)

        try:
            await self.app(scope, receive, send_varying)
        finally:
            LANGUAGE.reset(token)
