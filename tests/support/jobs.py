"""Jobs in tests: watch one until a condition holds, or make a row that the test runs itself
(through the runner, as a worker would), and read it back."""

from __future__ import annotations

from typing import Any

from server.db.models import Job
from server.resources import Resources
from tasks.registry import JOBS
from tasks.runner import body_of, execute
from tests.support.live import Client
from tests.support.uploads import WATCH_JOB


async def follow(user: Client, job_id: str, until: Any) -> dict[str, Any]:
    """Watch a job until `until(state)` holds; that state."""
    async with user.subscribe(WATCH_JOB, {"id": job_id}) as stream:
        async for data in stream:
            state: dict[str, Any] = data["jobProgress"]
            if until(state):
                return state
    raise AssertionError("the job ended before the condition held")


async def unqueued_job(
    resources: Resources, user_id: str, name: str, subject_id: str, **arguments: Any
) -> str:
    """A queued jobs row that no queue runs: the test runs it (tasks.runner.execute)."""
    async with resources.sessionmaker() as session:
        job = Job(
            user_id=user_id,
            kind=name,
            queue=JOBS[name].queue,
            subject_id=subject_id,
            status="queued",
            arguments=arguments,
        )
        session.add(job)
        await session.commit()
    return job.id


async def run_job(resources: Resources, job_id: str, name: str, *, timeout: float = 60) -> None:
    """Run a job through the runner as a worker does, here and under `timeout`."""
    ctx = {"resources": resources, "job_id": job_id, "job_try": 1}
    await execute(ctx, body_of(JOBS[name]), job_id=job_id, timeout=timeout)


async def job_row(resources: Resources, job_id: str) -> Job:
    async with resources.sessionmaker() as session:
        row = await session.get(Job, job_id)
    assert row is not None
    return row
