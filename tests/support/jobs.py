"""Jobs in tests: watch one until a condition holds, or make a row that the test runs itself."""

from __future__ import annotations

from typing import Any

from server.db.models import Job
from server.resources import Resources
from tasks.registry import JOBS
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
