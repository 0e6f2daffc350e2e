"""Fixtures: both modes of weft, on real services.

`mode` is "embedded" (SQLite + object folder + in-process jobs and events) or "production"
(MariaDB + SeaweedFS S3 + arq workers on Redis). Tests that take `server`, `resources` or a
client run once per mode.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from arq.worker import Worker
from sqlalchemy.ext.asyncio import AsyncSession

from ml.tiny import DEFAULT_TEXTS, make_tiny_model
from server.app import create_app
from server.db.migrate import upgrade
from server.resources import Resources
from server.settings import Settings
from tasks.inference import InferenceWorker
from tasks.registry import JOBS, jobs_for
from tasks.worker import create_worker
from tests.support import services
from tests.support.live import Client, LiveServer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TEST_SECRET = "weft-test-secret-0123456789abcdef0123456789"
MODES = ["embedded", "production"]


@pytest.fixture(scope="session")
def mysql_url() -> Iterator[str]:
    with services.mysql_database() as url:
        # Alembic runs its own event loop: keep it off any loop this fixture is created under.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(upgrade, url).result()
        yield url


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with services.seaweedfs() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    client = redis.Redis.from_url(services.REDIS_URL)
    client.flushdb()
    yield services.REDIS_URL
    client.flushdb()
    client.close()


def make_settings(
    mode: str, root: Path, request: pytest.FixtureRequest, **overrides: Any
) -> Settings:
    common: dict[str, Any] = {
        "data_dir": root / mode,
        "jwt_secret": TEST_SECRET,
        "login_rate_per_minute": 100_000,
        "upload_rate_per_minute": 100_000,
        "max_upload_bytes": 16 << 20,
        "inference_threads": 1,
    }
    if mode == "production":
        common.update(
            database_url=request.getfixturevalue("mysql_url"),
            redis_url=request.getfixturevalue("redis_url"),
            s3_bucket="weft-test",
            s3_endpoint=request.getfixturevalue("s3_endpoint"),
            s3_access_key="weft",
            s3_secret_key="weft-secret",
        )
    common.update(overrides)
    return Settings(**common)


@pytest.fixture(scope="session", params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def settings(
    mode: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Settings:
    return make_settings(mode, tmp_path_factory.mktemp("weft"), request)


@pytest.fixture(scope="session")
async def server(settings: Settings) -> AsyncIterator[LiveServer]:
    live = LiveServer(create_app(settings))
    await live.start()
    workers: list[Worker] = []
    tasks: list[asyncio.Task[None]] = []
    stop_inference = asyncio.Event()
    inference_resources: Resources | None = None
    if settings.uses_redis:
        # Production mode: arq workers and the inference worker, each with its own resources.
        inference_resources = await Resources.open(settings, JOBS, migrate=False)
        worker = InferenceWorker(inference_resources, inference_resources.chat)
        tasks.append(asyncio.create_task(worker.run(stop_inference)))
        for queue in ("parse", "label", "train"):
            if not jobs_for(queue):
                continue
            worker = create_worker(queue, settings, handle_signals=False, job_completion_wait=0)
            workers.append(worker)
            tasks.append(asyncio.create_task(worker.async_run()))
    try:
        yield live
    finally:
        stop_inference.set()
        for worker in workers:
            await worker.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if inference_resources is not None:
            await inference_resources.close()
        await live.stop()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-init Qwen2-shaped chat model with a tokenizer trained on the test chats."""
    from tests.support.training import PAIRS, PII_PAIRS

    texts = [*DEFAULT_TEXTS, *(text for pair in PAIRS + PII_PAIRS for text in pair)]
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "qwen", texts)


@pytest.fixture(scope="session")
def resources(server: LiveServer) -> Resources:
    return server.resources


@pytest.fixture
async def anon(server: LiveServer) -> AsyncIterator[Client]:
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        yield Client(server, http)


@pytest.fixture
async def user(anon: Client) -> Client:
    return await anon.register()


@pytest.fixture
async def other_user(anon: Client) -> Client:
    return await anon.register("另一个用户")


@pytest.fixture
async def db_session(resources: Resources) -> AsyncIterator[AsyncSession]:
    """A session inside a transaction rolled back at the end: commits become savepoints."""
    async with resources.engine.connect() as connection:
        transaction = await connection.begin()
        session = AsyncSession(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        try:
            yield session
        finally:
            await session.close()
            await transaction.rollback()
