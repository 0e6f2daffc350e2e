"""Pub/sub for live progress and chat streams: Redis in production, in process when embedded.

Channels are named `weft:<scope>:<id>` and carry JSON objects. `subscribe` is an async context
manager that returns only once the subscription is live, so a caller can subscribe first and
read saved state second without missing an event published in between.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

Event = dict[str, Any]


class EventBusError(Exception):
    """The event transport failed (for example Redis went away mid-stream)."""


def job_channel(job_id: str) -> str:
    return f"weft:job:{job_id}"


def chat_channel(request_id: str) -> str:
    return f"weft:chat:{request_id}"


class Subscription(ABC):
    @abstractmethod
    async def get(self) -> Event:
        """Wait for the next event; EventBusError when the transport fails."""

    async def next(self, timeout: float | None = None) -> Event | None:
        """The next event, or None when timeout passes first."""
        try:
            return await asyncio.wait_for(self.get(), timeout)
        except TimeoutError:
            return None

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        return await self.get()


class EventBus(ABC):
    @abstractmethod
    async def publish(self, channel: str, event: Event) -> None: ...

    @abstractmethod
    def subscribe(self, channel: str) -> contextlib.AbstractAsyncContextManager[Subscription]: ...

    async def close(self) -> None:  # noqa: B027 - optional hook
        pass

    async def check(self) -> None:  # noqa: B027 - optional hook
        pass


class _QueueSubscription(Subscription):
    def __init__(self, queue: asyncio.Queue[Event]) -> None:
        self.queue = queue

    async def get(self) -> Event:
        return await self.queue.get()


class InProcessEventBus(EventBus):
    # Bounded per subscriber: a stalled consumer loses old events rather than growing memory.
    MAX_PENDING = 10_000

    def __init__(self) -> None:
        self._subscribers: defaultdict[str, set[asyncio.Queue[Event]]] = defaultdict(set)

    async def publish(self, channel: str, event: Event) -> None:
        for queue in list(self._subscribers.get(channel, ())):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(event)

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscription]:
        queue: asyncio.Queue[Event] = asyncio.Queue(self.MAX_PENDING)
        self._subscribers[channel].add(queue)
        try:
            yield _QueueSubscription(queue)
        finally:
            subscribers = self._subscribers.get(channel)
            if subscribers is not None:
                subscribers.discard(queue)
                if not subscribers:
                    del self._subscribers[channel]


class _RedisSubscription(Subscription):
    def __init__(self, pubsub: Any) -> None:
        self.pubsub = pubsub

    async def get(self) -> Event:
        try:
            while True:
                message = await self.pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=None
                )
                if message is not None and message.get("type") == "message":
                    event: Event = orjson.loads(message["data"])
                    return event
        except (RedisError, OSError) as error:
            raise EventBusError(f"event stream lost: {error}") from error


class RedisEventBus(EventBus):
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def publish(self, channel: str, event: Event) -> None:
        try:
            await self.redis.publish(channel, orjson.dumps(event))
        except (RedisError, OSError) as error:
            raise EventBusError(f"publishing on {channel} failed: {error}") from error

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscription]:
        pubsub = self.redis.pubsub()
        try:
            await pubsub.subscribe(channel)
        except (RedisError, OSError) as error:
            await pubsub.aclose()  # type: ignore[no-untyped-call]
            raise EventBusError(f"subscribing to {channel} failed: {error}") from error
        try:
            yield _RedisSubscription(pubsub)
        finally:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.unsubscribe(channel)
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def check(self) -> None:
        await self.redis.ping()
