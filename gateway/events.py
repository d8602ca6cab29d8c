"""Events for subscriptions: published after a change commits, heard by every listener of the
same topic and audience, in this process or, when `GATEWAY_REDIS_URL` is set, in every process
sharing the Redis (pub/sub), so that a WebSocket client of one gateway hears what another
gateway, or the CLI, raised.

A topic is a name and a frozen dataclass of JSON values; an audience narrows it to whom it
concerns (a key's holder, later an inquiry's parties). Delivery is at most once: an event
raised while Redis is unreachable reaches only this process's listeners, one raised while a
listener is (re)connecting is not heard by it, and a listener that falls more than
`max_pending` events behind is ended (its subscription completes; the client subscribes again
and reads the current state). Listeners read the current state themselves, through the row
rules: an event says that something changed, not what the listener may see of it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import coredis
import coredis.exceptions
import orjson

from gateway.settings import Settings

log = logging.getLogger("gateway.events")

E = TypeVar("E")

MAX_PENDING = 100  # events a listener may fall behind before it is ended
CONFIRM_TIMEOUT_S = 5.0  # how long Redis may take to confirm a channel's subscription

# Set by whoever starts a subscription (gateway/edge/websocket.py); a listener sets it once it
# is registered (and Redis has confirmed its channel), so that the connection can tell its
# client that the subscription is live.
listening: ContextVar[asyncio.Event | None] = ContextVar("listening", default=None)


class EventsUnavailable(Exception):
    """Redis did not confirm a channel in time: the subscription cannot be promised."""


@dataclass(frozen=True)
class Topic(Generic[E]):
    """A kind of event: its name (a Redis channel under the key prefix) and its class, a
    frozen dataclass whose fields are JSON values (str, int, float, bool, None)."""

    name: str
    event: type[E]

    def encode(self, event: E) -> dict[str, Any]:
        return dataclasses.asdict(event)  # type: ignore[call-overload, no-any-return]

    def decode(self, data: dict[str, Any]) -> E:
        return self.event(**data)


_LOST = object()  # put in place of a listener's queue when it fell too far behind


class _Listener:
    def __init__(self, topic: str, max_pending: int) -> None:
        self.topic = topic
        self.queue: asyncio.Queue[object] = asyncio.Queue(max_pending + 1)
        self.max_pending = max_pending

    def offer(self, event: object) -> None:
        if self.queue.qsize() >= self.max_pending:
            log.warning("a listener of %s fell behind and is ended", self.topic)
            self.end()
        else:
            self.queue.put_nowait(event)

    def end(self) -> None:
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(_LOST)


class Events:
    """Events in this process only: what a gateway without Redis offers."""

    def __init__(self, max_pending: int = MAX_PENDING) -> None:
        self.max_pending = max_pending
        self._listeners: dict[tuple[str, str], set[_Listener]] = {}

    async def publish(self, topic: Topic[E], audience: str, event: E) -> None:
        """Tells every listener of `topic` and `audience`; never raises for delivery."""
        self._deliver(topic.name, audience, event)

    async def listen(self, topic: Topic[E], audience: str) -> AsyncIterator[E]:
        """The events of `topic` for `audience`, from the moment this is first iterated."""
        listener = _Listener(topic.name, self.max_pending)
        key = (topic.name, audience)
        self._listeners.setdefault(key, set()).add(listener)
        try:
            await self._ready(topic)
            started = listening.get()
            if started is not None:
                started.set()
            while True:
                event = await listener.queue.get()
                if event is _LOST:  # it fell behind, or events are closing
                    return
                yield event  # type: ignore[misc]  # only `topic`'s events reach this queue
        finally:
            listeners = self._listeners.get(key)
            if listeners is not None:
                listeners.discard(listener)
                if not listeners:
                    del self._listeners[key]

    def listeners(self, topic: Topic[Any], audience: str) -> int:
        """How many listen to `topic` for `audience` in this process."""
        return len(self._listeners.get((topic.name, audience), ()))

    async def close(self) -> None:
        """Ends every listener."""
        for listeners in self._listeners.values():
            for listener in listeners:
                listener.end()

    async def _ready(self, topic: Topic[Any]) -> None:
        """Returns once events of `topic` published anywhere will reach this process."""

    def _deliver(self, name: str, audience: str, event: object) -> None:
        for listener in tuple(self._listeners.get((name, audience), ())):
            listener.offer(event)


class RedisEvents(Events):
    """Events through Redis pub/sub: one channel per topic, one subscribing connection per
    process whatever the number of listeners, each message fanned out here by audience."""

    def __init__(
        self,
        url: str,
        prefix: str,
        *,
        max_pending: int = MAX_PENDING,
        confirm_timeout_s: float = CONFIRM_TIMEOUT_S,
    ) -> None:
        super().__init__(max_pending)
        self.url = url
        self.prefix = f"{prefix}events:"
        self.confirm_timeout_s = confirm_timeout_s
        self._client: coredis.Redis[str] | None = None
        self._pubsub: coredis.commands.PubSub[str] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._topics: dict[str, Topic[Any]] = {}  # by channel
        self._confirmed: dict[str, asyncio.Event] = {}  # by channel

    @property
    def client(self) -> coredis.Redis[str]:
        if self._client is None:  # built on first use, inside the running event loop
            self._client = coredis.Redis.from_url(self.url, decode_responses=True)
        return self._client

    async def publish(self, topic: Topic[E], audience: str, event: E) -> None:
        message = orjson.dumps({"audience": audience, "event": topic.encode(event)}).decode()
        try:
            await self.client.publish(self.prefix + topic.name, message)
        except (coredis.exceptions.RedisError, OSError):
            # This process's listeners still hear it; others' do not.
            log.warning("could not publish %s through Redis", topic.name, exc_info=True)
            self._deliver(topic.name, audience, event)

    async def _ready(self, topic: Topic[Any]) -> None:
        channel = self.prefix + topic.name
        confirmed = self._confirmed.get(channel)
        if confirmed is None:
            confirmed = self._confirmed[channel] = asyncio.Event()
            self._topics[channel] = topic
            try:
                pubsub = self._subscriber()
                await pubsub.subscribe(channel)
                if self._reader is None:
                    self._reader = asyncio.create_task(self._read(pubsub))
            except (coredis.exceptions.RedisError, OSError) as exc:
                del self._confirmed[channel]
                raise EventsUnavailable(f"could not subscribe to {topic.name}") from exc
        try:
            await asyncio.wait_for(confirmed.wait(), self.confirm_timeout_s)
        except TimeoutError:
            raise EventsUnavailable(f"Redis did not confirm {topic.name}") from None

    def _subscriber(self) -> coredis.commands.PubSub[str]:
        if self._pubsub is None:
            self._pubsub = self.client.pubsub()
        return self._pubsub

    async def _read(self, pubsub: coredis.commands.PubSub[str]) -> None:
        # coredis reconnects and subscribes again by itself; what is published meanwhile is lost.
        try:
            async for message in pubsub:
                channel = str(message["channel"])
                if message["type"] == "subscribe":
                    confirmed = self._confirmed.get(channel)
                    if confirmed is not None:
                        confirmed.set()
                elif message["type"] == "message":
                    self._dispatch(channel, message["data"])
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("events from Redis stopped; listeners are ended")
            self._pubsub, self._reader = None, None
            self._confirmed.clear()
            await Events.close(self)

    def _dispatch(self, channel: str, data: object) -> None:
        topic = self._topics.get(channel)
        if topic is None:
            return
        try:
            message = orjson.loads(str(data))
            audience, event = message["audience"], topic.decode(message["event"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("an unreadable event on %s was dropped", topic.name)
            return
        self._deliver(topic.name, str(audience), event)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            self._reader = None
        if self._pubsub is not None:
            self._pubsub.close()
            self._pubsub = None
        if self._client is not None:
            self._client.connection_pool.disconnect()
            self._client = None
        await super().close()


def build_events(settings: Settings) -> Events:
    if settings.redis_url is None:
        return Events()
    return RedisEvents(settings.redis_url.get_secret_value(), settings.redis_key_prefix)
