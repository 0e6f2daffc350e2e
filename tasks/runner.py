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
from sqlalchemy import func, update

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
    # The job's time limit, and the running limit itself (see timed_out).
    timeout: float = 0.0
    deadline: asyncio.Timeout | None = None

    def timed_out(self) -> bool:
        """Whether the job's time limit is what stopped it. Inside the body the limit arrives as
        CancelledError, exactly like a user's cancel or a stopping worker; ask this to tell
        them apart (the row then ends failed, not cancelled or re-queued)."""
        return self.deadline is not None and self.deadline.expired()

    def too_long(self, what: str) -> str:
        """The error text for a subject whose work hit the time limit."""
        return f"{what} took longer than the {self.timeout:g} s allowed"


JobBody = Callable[..., Awaitable[Any]]
GiveUp = Callable[..., Awaitable[None]]


def job(
    name: str, *, queue: str, timeout: float, max_tries: int = 3, give_up: GiveUp | None = None
) -> Callable[[JobBody], JobDefinition]:
    """Declare a job body `async def body(job: JobContext, **arguments)` as a queued job.

    `give_up(job, error, **arguments)`, if given, sets the job's subject (upload, dataset,
    model) failed when the job is given up after max_tries tries that never finished."""

    def declare(body: JobBody) -> JobDefinition:
        async def run(ctx: dict[str, Any]) -> None:
            await execute(
                ctx,
                body,
                job_id=ctx["job_id"],
                timeout=timeout,
                max_tries=max_tries,
                give_up=give_up,
            )

        run.__qualname__ = run.__name__ = name
        _DECLARED[name] = _Declared(body, give_up)
        return JobDefinition(name=name, queue=queue, func=run, timeout=timeout, max_tries=max_tries)

    return declare


@dataclass(frozen=True, slots=True)
class _Declared:
    """What `job` was given beyond the JobDefinition: the body and its give_up hook."""

    body: JobBody
    give_up: GiveUp | None


_DECLARED: dict[str, _Declared] = {}


def body_of(definition: JobDefinition) -> JobBody:
    """The body a job definition runs, for `execute` under other limits (tests use it)."""
    return _DECLARED[definition.name].body


async def execute(
    ctx: dict[str, Any],
    body: JobBody,
    *,
    job_id: str,
    timeout: float,
    max_tries: int | None = None,
    give_up: GiveUp | None = None,
) -> None:
    token = observability.job_id.set(job_id)
    try:
        await _execute(
            ctx, body, job_id=job_id, timeout=timeout, max_tries=max_tries, give_up=give_up
        )
    finally:
        observability.job_id.reset(token)


async def _execute(
    ctx: dict[str, Any],
    body: JobBody,
    *,
    job_id: str,
    timeout: float,
    max_tries: int | None,
    give_up: GiveUp | None = None,
) -> None:
    resources: Resources = ctx["resources"]
    attempt = int(ctx.get("job_try") or 1)
    exhausted = max_tries is not None and attempt > max_tries
    async with resources.sessionmaker() as session:
        row = await session.get(Job, job_id)
        if row is None or row.status in JOB_TERMINAL:
            log.info("job %s skipped: %s", job_id, "missing" if row is None else row.status)
            return
        if not exhausted:
            now = utcnow()
            # Conditional: a cancel that commits after the read above keeps the job cancelled.
            claimed = await session.execute(
                update(Job)
                .where(Job.id == job_id, Job.status.not_in(JOB_TERMINAL))
                .values(
                    status="running",
                    attempts=Job.attempts + 1,
                    started_at=func.coalesce(Job.started_at, now),
                    updated_at=now,
                    revision=Job.revision + 1,
                    message=None,
                )
                .execution_options(synchronize_session=False)
            )
            await session.commit()
            await session.refresh(row)
            if claimed.rowcount == 0:  # type: ignore[attr-defined]
                log.info("job %s skipped: %s", job_id, row.status)
                return
        arguments = dict(row.arguments or {})
        state = snapshot(row)
    reporter = ProgressReporter(resources, state)
    deadline = asyncio.timeout(timeout)
    context = JobContext(
        resources=resources,
        reporter=reporter,
        job_id=job_id,
        user_id=row.user_id,
        subject_id=row.subject_id,
        attempt=attempt,
        timeout=timeout,
        deadline=deadline,
    )
    if exhausted:
        # Every earlier try started and never finished (its worker died or was stopped): give
        # up here, where the rows can say so. arq, left to itself, fails such a job without
        # calling us, and the rows would stay unfinished for ever.
        assert max_tries is not None
        await _give_up(context, row.kind, max_tries, give_up, arguments)
        return
    log.info("job %s (%s) started, attempt %d", job_id, row.kind, context.attempt)
    started = time.monotonic()
    lease = asyncio.create_task(_hold_lease(ctx.get("redis"), job_id))
    try:
        # From here on a cancellation always ends in the handlers below (re-queue or cancel),
        # so a job is never left marked running by a worker that stopped.
        await reporter.publish()
        async with deadline:
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


async def abandon(resources: Resources, job_id: str, error: str) -> None:
    """Fail a job that will not run again, and through its give_up hook its subject; for a job
    the queue finished without the runner (see tasks.worker.sweep)."""
    async with resources.sessionmaker() as session:
        row = await session.get(Job, job_id)
        if row is None or row.status in JOB_TERMINAL:
            return
        state = snapshot(row)
    context = JobContext(
        resources=resources,
        reporter=ProgressReporter(resources, state),
        job_id=job_id,
        user_id=row.user_id,
        subject_id=row.subject_id,
        attempt=row.attempts,
    )
    log.warning("job %s (%s) abandoned: %s", job_id, row.kind, error)
    declared = _DECLARED.get(row.kind)
    give_up = declared.give_up if declared is not None else None
    await _finish_given_up(context, row.kind, give_up, dict(row.arguments or {}), error)


async def _give_up(
    context: JobContext,
    kind: str,
    max_tries: int,
    give_up: GiveUp | None,
    arguments: dict[str, Any],
) -> None:
    tries = "once" if max_tries == 1 else f"{max_tries} times"
    error = (
        f"the job was started {tries} and never finished (its worker stopped each time); "
        "it will not be tried again"
    )
    log.warning("job %s (%s) given up after %d tries", context.job_id, kind, max_tries)
    await _finish_given_up(context, kind, give_up, arguments, error)


async def _finish_given_up(
    context: JobContext,
    kind: str,
    give_up: GiveUp | None,
    arguments: dict[str, Any],
    error: str,
) -> None:
    if give_up is not None:
        try:
            await give_up(context, error, **arguments)
        except Exception:
            log.exception("job %s (%s): could not mark its subject failed", context.job_id, kind)
    await context.reporter.finish("failed", error=error)
    observability.JOBS.labels(kind, "failed").inc()


async def _fail(reporter: ProgressReporter, error: BaseException) -> None:
    text = str(error) or type(error).__name__
    await reporter.finish("failed", error=text)
