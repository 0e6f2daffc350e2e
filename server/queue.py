"""The job queue: arq on Redis in production, an in-process runner when embedded.

Services enqueue jobs by name; the entry points (app, worker) hand the job registry from tasks/
to the queue at start-up, so server never imports tasks. Both backends call the same job
function as `func(ctx)`, where ctx is a dict holding "resources", "job_id" and "job_try".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from arq.connections import ArqRedis
from arq.constants import abort_jobs_ss, default_queue_name

log = logging.getLogger(__name__)

QUEUES = ("parse", "label", "train", "infer")

JobFunction = Callable[..., Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class JobDefinition:
    name: str
    queue: str
    func: JobFunction
    # Seconds before the job is stopped and marked failed.
    timeout: float
    # How often arq may start it (retries follow a worker that died mid-job).
    max_tries: int


def queue_name(queue: str) -> str:
    return f"{default_queue_name}:weft:{queue}"


class QueueError(Exception):
    pass


class JobQueue(ABC):
    def __init__(self, registry: Mapping[str, JobDefinition]) -> None:
        self.registry = dict(registry)

    def definition(self, name: str) -> JobDefinition:
        try:
            return self.registry[name]
        except KeyError:
            raise QueueError(f"unknown job {name!r}") from None

    @abstractmethod
    async def enqueue(self, name: str, *, job_id: str) -> None:
        """Queue the job whose row has this id (jobs take ids; their arguments live on the row)."""

    @abstractmethod
    async def abort(self, job_id: str) -> None:
        """Stop a running job (its function sees CancelledError) or drop a queued one."""

    @abstractmethod
    async def depths(self) -> dict[str, int]:
        """Jobs waiting per queue."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        pass


class InProcessQueue(JobQueue):
    """Runs job functions as tasks on the running event loop, a few at a time per queue."""

    def __init__(
        self, registry: Mapping[str, JobDefinition], *, concurrency: int = 2, grace: float = 10.0
    ) -> None:
        super().__init__(registry)
        self.grace = grace
        self.context: dict[str, Any] = {}
        self._limits = {queue: asyncio.Semaphore(concurrency) for queue in QUEUES}
        self._waiting = dict.fromkeys(QUEUES, 0)
        self._tasks: dict[str, asyncio.Task[None]] = {}

    async def enqueue(self, name: str, *, job_id: str) -> None:
        definition = self.definition(name)
        if job_id in self._tasks:
            return
        task = asyncio.create_task(self._run(definition, job_id), name=f"job:{job_id}")
        self._tasks[job_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(job_id, None))

    async def _run(self, definition: JobDefinition, job_id: str) -> None:
        self._waiting[definition.queue] += 1
        started = False
        try:
            async with self._limits[definition.queue]:
                self._waiting[definition.queue] -= 1
                started = True
                ctx = {**self.context, "job_id": job_id, "job_try": 1, "enqueue_time": time.time()}
                await definition.func(ctx)
        except Exception:
            log.exception("job %s (%s) raised", job_id, definition.name)
        finally:
            if not started:
                self._waiting[definition.queue] -= 1

    async def abort(self, job_id: str) -> None:
        task = self._tasks.get(job_id)
        if task is not None:
            task.cancel()

    async def depths(self) -> dict[str, int]:
        return dict(self._waiting)

    async def close(self) -> None:
        """Let running jobs finish for `grace` seconds, then cancel them (they re-queue)."""
        tasks = list(self._tasks.values())
        if not tasks:
            return
        _, pending = (
            await asyncio.wait(tasks, timeout=self.grace) if self.grace > 0 else ((), tasks)
        )
        for task in pending:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*pending, return_exceptions=True)


class ArqQueue(JobQueue):
    def __init__(self, registry: Mapping[str, JobDefinition], redis: ArqRedis) -> None:
        super().__init__(registry)
        self.redis = redis

    async def enqueue(self, name: str, *, job_id: str) -> None:
        definition = self.definition(name)
        await self.redis.enqueue_job(name, _job_id=job_id, _queue_name=queue_name(definition.queue))

    async def abort(self, job_id: str) -> None:
        # What arq's Job.abort does, without waiting for the result.
        await self.redis.zadd(abort_jobs_ss, {job_id: int(time.time() * 1000)})

    async def depths(self) -> dict[str, int]:
        return {queue: int(await self.redis.zcard(queue_name(queue))) for queue in QUEUES}
