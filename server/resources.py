"""Everything with a connection, opened in one place and shared by the app and the workers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from arq.connections import ArqRedis, RedisSettings
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from server.chat import ChatBroker, InProcessChatBroker, RedisChatBroker
from server.db.migrate import upgrade
from server.db.session import SessionMaker, create_engine, create_sessionmaker
from server.events import EventBus, InProcessEventBus, RedisEventBus
from server.queue import ArqQueue, InProcessQueue, JobDefinition, JobQueue
from server.services.limits import RateLimiter
from server.settings import Settings
from server.storage import Storage, open_storage


@dataclass
class Resources:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: SessionMaker
    storage: Storage
    events: EventBus
    queue: JobQueue
    redis: ArqRedis | None
    limits: RateLimiter
    chat: ChatBroker

    @classmethod
    async def open(
        cls,
        settings: Settings,
        registry: Mapping[str, JobDefinition],
        *,
        migrate: bool | None = None,
    ) -> Resources:
        """Open every backend. Embedded databases migrate on open unless migrate=False."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        if migrate if migrate is not None else settings.embedded_database:
            await asyncio.to_thread(upgrade, settings.resolved_database_url)
        engine = create_engine(settings.resolved_database_url)
        redis: ArqRedis | None = None
        storage: Storage | None = None
        try:
            storage = await open_storage(settings)
            queue: JobQueue
            events: EventBus
            chat: ChatBroker
            limit = settings.inference_queue_limit
            if settings.uses_redis:
                redis = ArqRedis(**_redis_kwargs(RedisSettings.from_dsn(settings.redis_url)))
                queue = ArqQueue(registry, redis)
                events = RedisEventBus(redis)
                chat = RedisChatBroker(events, limit, redis)
            else:
                queue = InProcessQueue(
                    registry,
                    concurrency=settings.inprocess_concurrency,
                    grace=settings.shutdown_grace_seconds,
                )
                events = InProcessEventBus()
                chat = InProcessChatBroker(events, limit)
        except BaseException:
            if storage is not None:
                await storage.close()
            await engine.dispose()
            raise
        resources = cls(
            settings=settings,
            engine=engine,
            sessionmaker=create_sessionmaker(engine),
            storage=storage,
            events=events,
            queue=queue,
            redis=redis,
            limits=RateLimiter(
                {
                    "login": settings.login_rate_per_minute,
                    "register": settings.login_rate_per_minute,
                    "upload": settings.upload_rate_per_minute,
                },
                redis,
            ),
            chat=chat,
        )
        if isinstance(queue, InProcessQueue):
            queue.context["resources"] = resources
        return resources

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.queue.close()
        with contextlib.suppress(Exception):
            await self.events.close()
        with contextlib.suppress(Exception):
            await self.storage.close()
        if self.redis is not None:
            with contextlib.suppress(Exception):
                await self.redis.aclose()
        await self.engine.dispose()

    async def health(self) -> dict[str, Any]:
        """Each backend's state: {"database": {"ok": True, "backend": "mysql"}, ...}."""
        checks: dict[str, Any] = {}

        async def database() -> None:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))

        async def redis() -> None:
            if self.redis is not None:
                await self.redis.ping()

        for name, backend, check in (
            ("database", self.engine.dialect.name, database),
            ("redis", "redis" if self.redis is not None else "in-process", redis),
            ("storage", self.storage.name, self.storage.check),
        ):
            try:
                await asyncio.wait_for(check(), timeout=5)
                checks[name] = {"ok": True, "backend": backend}
            except Exception as error:
                checks[name] = {"ok": False, "backend": backend, "error": str(error) or repr(error)}
        return checks


def _redis_kwargs(settings: RedisSettings) -> dict[str, Any]:
    return {
        "host": settings.host,
        "port": settings.port,
        "db": settings.database,
        "username": settings.username,
        "password": settings.password,
        "ssl": settings.ssl,
        "socket_connect_timeout": 5,
        "health_check_interval": 30,
        "retry_on_timeout": True,
    }
