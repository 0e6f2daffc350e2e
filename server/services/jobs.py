"""Jobs: create the row, commit, enqueue by id; cancel; the snapshot events and the API share."""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import JOB_TERMINAL, Job
from server.db.repositories import JobRepository
from server.db.types import utcnow
from server.events import job_channel
from server.resources import Resources
from server.services.errors import Conflict, NotFound

log = logging.getLogger(__name__)

JobSnapshot = dict[str, Any]


def snapshot(job: Job) -> JobSnapshot:
    """The job's state as a JSON object: what jobProgress events carry."""
    return {
        "id": job.id,
        "user_id": job.user_id,
        "kind": job.kind,
        "queue": job.queue,
        "subject_id": job.subject_id,
        "status": job.status,
        "progress": job.progress,
        "message": job.message,
        "error": job.error,
        "detail": job.detail,
        "revision": job.revision,
        "attempts": job.attempts,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "updated_at": _iso(job.updated_at),
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def new_job(
    user_id: str,
    name: str,
    resources: Resources,
    *,
    subject_id: str | None,
    arguments: dict[str, Any],
) -> Job:
    """A queued jobs row for `name` (add it to the session; enqueue it after commit)."""
    definition = resources.queue.definition(name)
    return Job(
        user_id=user_id,
        kind=name,
        queue=definition.queue,
        subject_id=subject_id,
        status="queued",
        arguments=arguments,
        updated_at=utcnow(),
    )


def add_job(
    session: AsyncSession,
    resources: Resources,
    user_id: str,
    name: str,
    *,
    subject_id: str | None,
    arguments: dict[str, Any],
) -> Job:
    """A queued jobs row for `name`, added to the session (enqueue it after the commit)."""
    job = new_job(user_id, name, resources, subject_id=subject_id, arguments=arguments)
    return JobRepository(session, user_id).add(job)


async def enqueue(resources: Resources, job: Job) -> None:
    """Put a committed job on its queue; a queue failure fails the row rather than leaving it."""
    try:
        await resources.queue.enqueue(job.kind, job_id=job.id)
    except Exception as error:
        log.exception("enqueue of job %s failed", job.id)
        async with resources.sessionmaker() as session:
            await session.execute(
                update(Job)
                .where(Job.id == job.id)
                .values(
                    status="failed",
                    error=f"the job could not be queued: {error}",
                    finished_at=utcnow(),
                    updated_at=utcnow(),
                    revision=Job.revision + 1,
                )
            )
            await session.commit()
        raise


async def cancel(resources: Resources, session: AsyncSession, user_id: str, job_id: str) -> Job:
    jobs = JobRepository(session, user_id)
    job = await jobs.get(job_id)
    if job is None:
        raise NotFound("no such job", field="id")
    if job.status in JOB_TERMINAL:
        raise Conflict(f"the job has already {job.status}", field="id")
    now = utcnow()
    # Conditional, so that a job finishing at this moment keeps its outcome.
    changed = await session.execute(
        update(Job)
        .where(Job.id == job.id, Job.status.not_in(JOB_TERMINAL))
        .values(
            status="cancelled",
            message="cancelled by the user",
            finished_at=now,
            updated_at=now,
            revision=Job.revision + 1,
        )
        .execution_options(synchronize_session=False)
    )
    await session.commit()
    await session.refresh(job)
    if changed.rowcount == 0:  # type: ignore[attr-defined]
        raise Conflict(f"the job has already {job.status}", field="id")
    await resources.queue.abort(job.id)
    try:
        await resources.events.publish(job_channel(job.id), snapshot(job))
    except Exception:
        log.warning("could not publish the cancellation of job %s", job.id, exc_info=True)
    return job


async def cancel_unfinished(
    resources: Resources, session: AsyncSession, user_id: str, subject_id: str
) -> None:
    """Cancel the queued and running jobs working on a subject that is about to go."""
    statement = (
        JobRepository(session, user_id)
        .select()
        .where(Job.subject_id == subject_id, Job.status.in_(("queued", "running")))
    )
    for job in (await session.scalars(statement)).all():
        with contextlib.suppress(Conflict):  # it finished meanwhile: nothing to cancel
            await cancel(resources, session, user_id, job.id)


async def resume_unfinished(resources: Resources) -> int:
    """Embedded start-up: queue again the jobs a previous run left queued or running."""
    async with resources.sessionmaker() as session:
        rows = (
            await session.scalars(
                select(Job).where(Job.status.in_(("queued", "running"))).order_by(Job.created_at)
            )
        ).all()
    for row in rows:
        await resources.queue.enqueue(row.kind, job_id=row.id)
    return len(rows)
