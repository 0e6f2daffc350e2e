"""arq workers, one per queue: `weft worker parse|label|train`."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from arq import func
from arq.connections import RedisSettings
from arq.constants import in_progress_key_prefix, job_key_prefix, result_key_prefix
from arq.jobs import deserialize_result
from arq.worker import Worker
from sqlalchemy import select

from server.db.models import Job
from server.queue import QUEUES, queue_name
from server.resources import Resources
from server.settings import Settings
from tasks.registry import JOBS, jobs_for
from tasks.runner import abandon
from tasks.scratch import sweep_scratch

log = logging.getLogger(__name__)

# arq stops a job at its own timeout; ours (inside the job) fires first so the row says why.
TIMEOUT_MARGIN = 30
# How often a worker looks for unfinished jobs that arq lost.
SWEEP_SECONDS = 60


def create_worker(queue: str, settings: Settings, **overrides: Any) -> Worker:
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}; choose one of {', '.join(QUEUES)}")
    if not settings.uses_redis:
        raise ValueError("a worker needs WEFT_REDIS_URL (embedded mode runs jobs in process)")
    definitions = jobs_for(queue)

    async def startup(ctx: dict[str, Any]) -> None:
        resources = await Resources.open(settings, JOBS, migrate=False)
        ctx["resources"] = resources
        await asyncio.to_thread(sweep_scratch, settings.cache_dir)
        ctx["sweeper"] = asyncio.create_task(sweep_forever(resources, queue))

    async def shutdown(ctx: dict[str, Any]) -> None:
        sweeper: asyncio.Task[None] | None = ctx.get("sweeper")
        if sweeper is not None:
            sweeper.cancel()
            await asyncio.gather(sweeper, return_exceptions=True)
        resources: Resources | None = ctx.get("resources")
        if resources is not None:
            await resources.close()

    options: dict[str, Any] = {
        "functions": [
            func(
                definition.func,  # type: ignore[arg-type]
                name=definition.name,
                timeout=definition.timeout + TIMEOUT_MARGIN,
                # One more than ours: arq fails a job past its max_tries without calling it,
                # so the extra try is where the runner gives up and says so on the rows.
                max_tries=definition.max_tries + 1,
            )
            for definition in definitions
        ],
        "queue_name": queue_name(queue),
        "redis_settings": RedisSettings.from_dsn(settings.redis_url),
        "on_startup": startup,
        "on_shutdown": shutdown,
        "allow_abort_jobs": True,
        "max_jobs": 1 if queue == "train" else 8,
        "keep_result": 3600,
        "handle_signals": False,
        "job_completion_wait": 25,
        "poll_delay": 0.2,
    }
    options.update(overrides)
    return Worker(**options)


async def sweep(resources: Resources, queue: str) -> int:
    """Queue again the jobs of this queue that their rows say are unfinished but arq no longer
    knows (Redis lost its data in a restart, or the job was never queued); returns how many."""
    redis = resources.redis
    assert redis is not None
    async with resources.sessionmaker() as session:
        rows = (
            await session.execute(
                select(Job.id, Job.kind).where(
                    Job.queue == queue, Job.status.in_(("queued", "running"))
                )
            )
        ).all()
    recovered = 0
    for job_id, kind in rows:
        known = await redis.exists(job_key_prefix + job_id, in_progress_key_prefix + job_id)
        queued = await redis.zscore(queue_name(queue), job_id)
        if known or queued is not None or kind not in JOBS:
            continue
        result = await redis.get(result_key_prefix + job_id)
        if result is not None:
            # arq finished the job without our runner finishing the row (it gave up on it, or
            # the runner could not start): the row must not stay unfinished.
            await _fail_abandoned(resources, job_id, result)
            continue
        await resources.queue.enqueue(kind, job_id=job_id)
        recovered += 1
    if recovered:
        log.warning("queued %d orphaned %s jobs again", recovered, queue)
    return recovered


async def _fail_abandoned(resources: Resources, job_id: str, result: bytes) -> None:
    try:
        outcome = deserialize_result(result).result
        reason = str(outcome) or type(outcome).__name__
    except Exception:
        reason = "unknown"
    await abandon(resources, job_id, f"the job queue gave up on the job: {reason}")


async def sweep_forever(resources: Resources, queue: str) -> None:
    while True:
        try:
            await sweep(resources, queue)
        except Exception:
            log.warning("the orphaned-job sweep failed", exc_info=True)
        await asyncio.sleep(SWEEP_SECONDS)


def run_worker(queue: str, settings: Settings) -> None:
    """Run until SIGTERM/SIGINT; jobs in flight get job_completion_wait seconds to finish, the
    rest go back to the queue."""
    worker = create_worker(queue, settings, handle_signals=True)
    worker.run()
