"""Rate limits per action and client: a fixed one-minute window, in Redis when there is one."""

from __future__ import annotations

import time
from collections.abc import Mapping

from redis.asyncio import Redis
from starlette.requests import HTTPConnection

from server.services.errors import RateLimited

WINDOW = 60


def client_key(connection: HTTPConnection) -> str:
    return connection.client.host if connection.client else "unknown"


class RateLimiter:
    def __init__(self, per_minute: Mapping[str, int], redis: Redis | None = None) -> None:
        self.per_minute = dict(per_minute)
        self.redis = redis
        self._counts: dict[tuple[str, str, int], int] = {}

    async def hit(self, action: str, key: str) -> None:
        """Count one request; RateLimited once the action's budget for this minute is spent."""
        limit = self.per_minute.get(action)
        if not limit:
            return
        now = time.time()
        window = int(now // WINDOW)
        if self.redis is not None:
            name = f"weft:rate:{action}:{key}:{window}"
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.incr(name)
                pipe.expire(name, WINDOW * 2)
                count, _ = await pipe.execute()
        else:
            if len(self._counts) > 10_000:
                self._counts = {k: v for k, v in self._counts.items() if k[2] == window}
            count = self._counts.get((action, key, window), 0) + 1
            self._counts[(action, key, window)] = count
        if int(count) > limit:
            retry = (window + 1) * WINDOW - now
            raise RateLimited(
                f"too many {action} requests; try again in {retry:.0f} s", retry_after=retry
            )
