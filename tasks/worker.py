"""arq workers, one per queue: `weft worker parse|label|train`."""

from __future__ import annotations

import logging
from typing import Any

from arq import func
from arq.connections import RedisSettings
from arq.worker import Worker

from server.queue import QUEUES, queue_name
from server.resources import Resources
from server.settings import Settings
from tasks.registry import JOBS, jobs_for

log = logging.getLogger(__name__)

# arq stops a job at its own timeout; ours (inside the job) fires first so the row says why.
TIMEOUT_MARGIN = 30


def create_worker(queue: str, settings: Settings, **overrides: Any) -> Worker:
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}; choose one of {', '.join(QUEUES)}")
    if not settings.uses_redis:
        raise ValueError("a worker needs WEFT_REDIS_URL (embedded mode runs jobs in process)")
    definitions = jobs_for(queue)

    async def startup(ctx: dict[str, Any]) -> None:
        ctx["resources"] = await Resources.open(settings, JOBS, migrate=False)

    async def shutdown(ctx: dict[str, Any]) -> None:
        resources: Resources | None = ctx.get("resources")
        if resources is not None:
            await resources.close()

    options: dict[str, Any] = {
        "functions": [
            func(
                definition.func,  # type: ignore[arg-type]
                name=definition.name,
                timeout=definition.timeout + TIMEOUT_MARGIN,
                max_tries=definition.max_tries,
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


def run_worker(queue: str, settings: Settings) -> None:
    """Run until SIGTERM/SIGINT; jobs in flight get job_completion_wait seconds to finish, the
    rest go back to the queue."""
    worker = create_worker(queue, settings, handle_signals=True)
    worker.run()
