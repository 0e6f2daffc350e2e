"""How every job runs, on arq or in process: load the row, skip it when it is already terminal,
mark it running, call the job body with the row's arguments, and record how it ended."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix

from server import observability
from server.db.models import JOB_TERMINAL, Job
from server.db.types import utcnow
from server.queue import JobDefinition
from server.resources import Resources
from server.services.jobs import snapshot
from tasks.progress import ProgressReporter

log = logging.getLogger(__name__)

# How soon after its worker dies a running job can be taken over by another worker.
LEASE_SECONDS = 30.0


class JobFailed(Exception):
    """An expected failure: its message is shown to the user as the job's error."""


@dataclass(frozen=True, slots=True)
class JobContext:
    resources: Resources
    reporter: ProgressReporter
    job_id: str
    user_id: str
    subject_id: str | None
    attempt: int


JobBody = Callable[..., Awaitable[Any]]


def job(
    name: str, *, queue: str, timeout: float, max_tries: int = 3
) -> Callable[[JobBody], JobDefinition]:
    """Declare a job body `async def body(job: JobContext, **arguments)` as a queued job."""

    def declare(body: JobBody) -> JobDefinition:
        async def run(ctx: dict[str, Any]) -> None:
            await execute(ctx, body, job_id=ctx["job_id"], timeout=timeout)

        run.__qualname__ = run.__name__ = name
        return JobDefinition(name=name, queue=queue, func=run, timeout=timeout, max_tries=max_tries)

    return declare


async def execute(ctx: dict[str, Any], body: JobBody, *, job_id: str, timeout: float) -> None:
    token = observability.job_id.set(job_id)
    try:
        await _execute(ctx, body, job_id=job_id, timeout=timeout)
    finally:
        observability.job_id.reset(token)


async def _execute(ctx: dict[str, Any], body: JobBody, *, job_id: str, timeout: float) -> None:
    resources: Resources = ctx["resources"]
    async with resources.sessionmaker() as session:
        row = await session.get(Job, job_id)
        if row is None or row.status in JOB_TERMINAL:
            log.info("job %s skipped: %s", job_id, "missing" if row is None else row.status)
            return
        now = utcnow()
        row.status = "running"
        row.attempts += 1
        row.started_at = row.started_at or now
        row.updated_at = now
        row.revision += 1
        row.message = None
        arguments = dict(row.arguments or {})
        await session.commit()
        state = snapshot(row)
    reporter = ProgressReporter(resources, state)
    context = JobContext(
        resources=resources,
        reporter=reporter,
        job_id=job_id,
        user_id=row.user_id,
        subject_id=row.subject_id,
        attempt=int(ctx.get("job_try") or 1),
    )
    log.info("job %s (%s) started, attempt %d", job_id, row.kind, context.attempt)
    started = time.monotonic()
    lease = asyncio.create_task(_hold_lease(ctx.get("redis"), job_id))
    try:
        # From here on a cancellation always ends in the handlers below (re-queue or cancel),
        # so a job is never left marked running by a worker that stopped.
        await reporter.publish()
        async with asyncio.timeout(timeout) as deadline:
            await body(context, **arguments)
    except TimeoutError as error:
        if not deadline.expired():
            await _fail(reporter, error)
        else:
            await reporter.finish("failed", error=f"the job took longer than {timeout:g} s")
    except asyncio.CancelledError:
        # Either the user cancelled (the row is already cancelled) or the worker is stopping:
        # then the job goes back to queued, and arq or the embedded start-up runs it again.
        await asyncio.shield(reporter.requeue("interrupted; it will run again"))
        raise
    except JobFailed as error:
        await reporter.finish("failed", error=str(error))
    except Exception as error:
        log.exception("job %s (%s) failed", job_id, row.kind)
        await _fail(reporter, error)
    else:
        await reporter.finish("succeeded")
    finally:
        lease.cancel()
    observability.JOBS.labels(row.kind, reporter.state["status"]).inc()
    observability.JOB_SECONDS.labels(row.kind).observe(time.monotonic() - started)
    log.info("job %s (%s) ended %s", job_id, row.kind, reporter.state["status"])


async def _hold_lease(redis: ArqRedis | None, job_id: str) -> None:
    """Keep arq's in-progress mark on this job short-lived while we work on it.

    arq marks a running job for its whole timeout (hours, for training), so a job whose worker
    was killed would wait that long to run again. Renewing a short lease instead means another
    worker takes the job over within LEASE_SECONDS of a crash.
    """
    if redis is None:
        return
    key = in_progress_key_prefix + job_id
    while True:
        try:
            await redis.pexpire(key, int(LEASE_SECONDS * 1000))
        except Exception:
            log.warning("could not renew the lease of job %s", job_id, exc_info=True)
        await asyncio.sleep(LEASE_SECONDS / 3)


async def _fail(reporter: ProgressReporter, error: BaseException) -> None:
    text = str(error) or type(error).__name__
    await reporter.finish("failed", error=text)
