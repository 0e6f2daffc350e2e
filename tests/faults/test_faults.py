"""Faults in production mode, on private copies of the services so that nothing else is
disturbed: a parse worker killed mid-job, Redis restarted under a job and a subscription, the
S3 server going away, database connections dropped, and graceful shutdown of a worker."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pymysql
import pytest
import websockets
from sqlalchemy import text

from server.app import create_app
from server.db.session import create_engine
from server.settings import Settings
from tests.conftest import make_settings
from tests.support import services
from tests.support.exports import memotrace_txt
from tests.support.jobs import follow
from tests.support.live import Client, GraphQLError, LiveServer
from tests.support.uploads import WATCH_JOB, upload_chat, wait_for_job

pytestmark = pytest.mark.slow

BIG = 100_000  # messages: a few seconds of parsing


class RedisServer:
    """A redis-server of our own, with an append-only file so that a restart keeps its data."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = services.free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        services.wait_for_port(self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def environment(settings: Settings) -> dict[str, str]:
    """The WEFT_* variables that make a `weft` process use these settings."""
    values = {
        "WEFT_DATA_DIR": str(settings.data_dir),
        "WEFT_DATABASE_URL": settings.database_url,
        "WEFT_REDIS_URL": settings.redis_url,
        "WEFT_S3_BUCKET": settings.s3_bucket,
        "WEFT_S3_ENDPOINT": settings.s3_endpoint,
        "WEFT_S3_ACCESS_KEY": settings.s3_access_key,
        "WEFT_S3_SECRET_KEY": settings.s3_secret_key,
        "WEFT_JWT_SECRET": settings.jwt_secret,
        "WEFT_LOG_LEVEL": "WARNING",
    }
    return {**os.environ, **values}


def start_worker(settings: Settings, queue: str = "parse") -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "server.cli", "worker", queue],
        env=environment(settings),
        cwd=Path(__file__).resolve().parents[2],
    )


@pytest.fixture
async def stack(
    private_redis: RedisServer, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Settings, Client]]:
    """The API in this process on a private Redis; workers are started by each test."""
    settings = make_settings("production", tmp_path, request, redis_url=private_redis.url)
    live = LiveServer(create_app(settings))
    await live.start()
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as http:
        yield settings, await Client(live, http).register()
    await live.stop()


async def drain(iterator: AsyncIterator[Any]) -> None:
    async for _ in iterator:
        pass


async def message_count(user: Client, upload_id: str) -> int:
    data = await user.query(
        "query($u: ID!) { messages(uploadId: $u, first: 1) { totalCount } }", {"u": upload_id}
    )
    return int(data["messages"]["totalCount"])


async def test_killed_parse_worker_job_is_retried_exactly(
    stack: tuple[Settings, Client],
) -> None:
    settings, user = stack
    first = start_worker(settings)
    second: subprocess.Popen[bytes] | None = None
    try:
        result = await upload_chat(user, memotrace_txt(BIG), "big.txt")
        job_id = result["job"]["id"]
        await follow(
            user, job_id, lambda s: s["status"] == "RUNNING" and "messages" in (s["message"] or "")
        )
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        second = start_worker(settings)
        final = await asyncio.wait_for(wait_for_job(user, job_id), 240)
        assert final["status"] == "SUCCEEDED", final
        assert await message_count(user, result["upload"]["id"]) == BIG
        job = await user.query("query($j: ID!) { job(id: $j) { attempts } }", {"j": job_id})
        assert job["job"]["attempts"] == 2
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(10)


async def test_redis_restart_errors_subscriptions_and_loses_no_job(
    stack: tuple[Settings, Client], private_redis: RedisServer
) -> None:
    settings, user = stack
    worker = start_worker(settings)
    try:
        result = await upload_chat(user, memotrace_txt(BIG), "big.txt")
        job_id = result["job"]["id"]
        async with user.subscribe(WATCH_JOB, {"id": job_id}) as stream:
            iterator = aiter(stream)
            await anext(iterator)
            private_redis.stop()
            # The subscription ends with an error instead of hanging.
            with pytest.raises((GraphQLError, websockets.ConnectionClosed)):
                await asyncio.wait_for(drain(iterator), 60)
        private_redis.start()
        # A supervisor restarts workers that lost Redis; the job row says what happened.
        if worker.poll() is not None:
            worker = start_worker(settings)
        final = await asyncio.wait_for(wait_for_job(user, job_id), 240)
        assert final["status"] in {"SUCCEEDED", "FAILED"}, final
        if final["status"] == "SUCCEEDED":
            assert await message_count(user, result["upload"]["id"]) == BIG
    finally:
        if worker.poll() is None:
            worker.terminate()
            worker.wait(30)


async def test_graceful_worker_shutdown_finishes_the_job(stack: tuple[Settings, Client]) -> None:
    settings, user = stack
    worker = start_worker(settings)
    try:
        result = await upload_chat(user, memotrace_txt(20_000), "chat.txt")
        job_id = result["job"]["id"]
        await follow(user, job_id, lambda s: s["status"] == "RUNNING")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(60) == 0
        data = await user.query("query($j: ID!) { job(id: $j) { status } }", {"j": job_id})
        if data["job"]["status"] != "SUCCEEDED":
            # Not finished in the grace period: it went back to the queue for the next worker.
            assert data["job"]["status"] == "QUEUED"
            worker = start_worker(settings)
            assert (await wait_for_job(user, job_id))["status"] == "SUCCEEDED"
        assert await message_count(user, result["upload"]["id"]) == 20_000
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)


DELETE_UPLOAD = "mutation($id: ID!) { deleteUpload(id: $id) { __typename } }"


async def test_storage_outage_is_a_clear_failure_and_recovers(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    with services.seaweedfs_process() as (endpoint, weed):
        settings = make_settings(
            "production",
            tmp_path,
            request,
            s3_endpoint=endpoint,
            s3_bucket="weft-outage",
            s3_timeout_seconds=2.0,
        )
        live = LiveServer(create_app(settings))
        await live.start()
        try:
            async with httpx.AsyncClient(base_url=live.url, timeout=120) as http:
                user = await Client(live, http).register()
                first = await upload_chat(user, b"x")
                assert first["__typename"] == "UploadChatSuccess"
                weed.send_signal(signal.SIGSTOP)  # unreachable: it accepts nothing
                try:
                    started = asyncio.get_running_loop().time()
                    failed = await upload_chat(user, memotrace_txt(10))
                    elapsed = asyncio.get_running_loop().time() - started
                    health = await http.get("/healthz")
                    undeleted = await user.query(DELETE_UPLOAD, {"id": first["upload"]["id"]})
                finally:
                    weed.send_signal(signal.SIGCONT)
                # Files go first: the row stays, so that the delete can be tried again.
                assert undeleted["deleteUpload"]["__typename"] == "UnavailableError"
                assert failed["__typename"] == "UnavailableError", failed
                assert failed["message"].startswith("storage failed")
                assert elapsed < 60  # three tries with backoff, not a hang
                assert health.status_code == 503
                assert health.json()["storage"]["ok"] is False
                uploads = await user.query("{ uploads(first: 10) { totalCount } }")
                assert uploads["uploads"]["totalCount"] == 1  # nothing half-stored
                again = await upload_chat(user, memotrace_txt(10))
                assert again["__typename"] == "UploadChatSuccess"
                deleted = await user.query(DELETE_UPLOAD, {"id": first["upload"]["id"]})
                assert deleted["deleteUpload"]["__typename"] == "DeleteUploadSuccess"
                key = f"users/{user.user_id}/uploads/{first['upload']['id']}/original"
                assert await live.resources.storage.size(key) is None
        finally:
            await live.stop()


async def test_dropped_database_connections_are_replaced(
    user: Client, mysql_url: str, settings: Settings
) -> None:
    if not settings.uses_redis:
        pytest.skip("MySQL only")
    await user.query("{ me { id } }")
    database = mysql_url.rsplit("/", 1)[1].split("?")[0]
    admin = pymysql.connect(host=services.MYSQL_HOST, port=services.MYSQL_PORT, user="root")
    try:
        with admin.cursor() as cursor:
            cursor.execute(
                "SELECT id FROM information_schema.processlist WHERE db = %s", (database,)
            )
            for (connection_id,) in cursor.fetchall():
                cursor.execute(f"KILL {int(connection_id)}")
    finally:
        admin.close()
    for _ in range(3):
        assert (await user.query("{ me { id } }"))["me"]["id"] == user.user_id
    async with user.server.resources.engine.connect() as connection:
        assert (await connection.execute(text("SELECT 1"))).scalar() == 1


async def test_embedded_shutdown_requeues_and_restart_resumes(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Stopping `weft serve` mid-job (here with no grace period) puts the job back in the
    queue; the next start runs it again from the beginning, with exactly its messages."""
    settings = make_settings("embedded", tmp_path, request, shutdown_grace_seconds=0.0)
    first = LiveServer(create_app(settings))
    await first.start()
    async with httpx.AsyncClient(base_url=first.url, timeout=60) as http:
        user = await Client(first, http).register()
        result = await upload_chat(user, memotrace_txt(BIG), "big.txt")
        job_id = result["job"]["id"]
        await follow(user, job_id, lambda s: s["status"] == "RUNNING")
    await first.stop()  # the in-process queue waits briefly, then interrupts the job
    engine = create_engine(settings.resolved_database_url)
    async with engine.connect() as connection:
        status = (
            await connection.execute(text("SELECT status FROM jobs WHERE id = :id"), {"id": job_id})
        ).scalar()
    await engine.dispose()
    assert status == "queued", status  # no grace: interrupted, back in the queue
    second = LiveServer(create_app(settings))
    await second.start()
    try:
        async with httpx.AsyncClient(base_url=second.url, timeout=60) as http:
            user = Client(second, http, user.token)
            final = await asyncio.wait_for(wait_for_job(user, job_id), 240)
            assert final["status"] == "SUCCEEDED", final
            assert await message_count(user, result["upload"]["id"]) == BIG
    finally:
        await second.stop()
