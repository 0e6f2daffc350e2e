"""The chat request queue between the API and the inference worker.

The API never loads a model: it puts a request on the inference queue and streams the chunks
the worker publishes on `weft:chat:{request_id}`. In production the queue is a Redis list that
`weft inference-worker` (its own process, usually on a GPU machine) pops from; embedded, it is
an asyncio queue served by the same worker code inside the weft process. Cancellations travel
on one control channel that the worker follows.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from server.events import EventBus

REQUESTS = "weft:infer:requests"
CONTROL = "weft:infer:control"
STATUS = "weft:infer:status"
# A worker's status older than this means no worker is running.
STATUS_TTL = 30

ChatRequest = dict[str, Any]


class ChatUnavailable(Exception):
    """The inference queue is full or unreachable."""


class ChatBroker(ABC):
    def __init__(self, events: EventBus, limit: int) -> None:
        self.events = events
        self.limit = limit

    @abstractmethod
    async def submit(self, request: ChatRequest) -> None:
        """Queue a request; ChatUnavailable when the queue is full."""

    @abstractmethod
    async def take(self, timeout: float) -> ChatRequest | None:
        """The worker's side: the next request, or None after timeout seconds."""

    async def cancel(self, request_id: str) -> None:
        await self.events.publish(CONTROL, {"cancel": request_id})

    @abstractmethod
    async def report(self, status: dict[str, Any]) -> None:
        """The worker's side: what it has loaded and how busy it is."""

    @abstractmethod
    async def status(self) -> dict[str, Any] | None:
        """The worker's last report, or None when no worker has reported lately."""

    @abstractmethod
    async def waiting(self) -> int: ...


class InProcessChatBroker(ChatBroker):
    def __init__(self, events: EventBus, limit: int) -> None:
        super().__init__(events, limit)
        self._queue: asyncio.Queue[ChatRequest] = asyncio.Queue()
        self._status: tuple[float, dict[str, Any]] | None = None

    async def submit(self, request: ChatRequest) -> None:
        if self._queue.qsize() >= self.limit:
            raise ChatUnavailable(
                f"{self._queue.qsize()} chat requests are waiting; try again soon"
            )
        self._queue.put_nowait(request)

    async def take(self, timeout: float) -> ChatRequest | None:
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None

    async def report(self, status: dict[str, Any]) -> None:
        self._status = (time.monotonic(), status)

    async def status(self) -> dict[str, Any] | None:
        if self._status is None or time.monotonic() - self._status[0] > STATUS_TTL:
            return None
        return self._status[1]

    async def waiting(self) -> int:
        return self._queue.qsize()


class RedisChatBroker(ChatBroker):
    def __init__(self, events: EventBus, limit: int, redis: Redis) -> None:
        super().__init__(events, limit)
        self.redis = redis

    async def submit(self, request: ChatRequest) -> None:
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.rpush(REQUESTS, orjson.dumps(request))
                pipe.llen(REQUESTS)
                _, length = await pipe.execute()
            # Over the bound: take it back (unless a worker already has it) and refuse.
            payload: Any = orjson.dumps(request)
            taken_back = int(length) > self.limit and await self.redis.lrem(  # type: ignore[misc]
                REQUESTS, -1, payload
            )
            if taken_back:
                raise ChatUnavailable(f"{self.limit} chat requests are waiting; try again soon")
        except (RedisError, OSError) as error:
            raise ChatUnavailable(f"the inference queue is unreachable: {error}") from error

    async def take(self, timeout: float) -> ChatRequest | None:
        popped = await self.redis.blpop([REQUESTS], timeout=timeout)  # type: ignore[arg-type, misc]
        if popped is None:
            return None
        request: ChatRequest = orjson.loads(popped[1])
        return request

    async def report(self, status: dict[str, Any]) -> None:
        await self.redis.set(STATUS, orjson.dumps(status), ex=STATUS_TTL)

    async def status(self) -> dict[str, Any] | None:
        raw = await self.redis.get(STATUS)
        return orjson.loads(raw) if raw else None

    async def waiting(self) -> int:
        return int(await self.redis.llen(REQUESTS))  # type: ignore[misc]
