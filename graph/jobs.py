"""Jobs: the Job type, `job`/`jobs`, `cancelJob` and the `jobProgress` subscription."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from graphql import GraphQLError
from strawberry.scalars import JSON

from graph.context import Info
from graph.errors import ConflictError, NotFoundError, user_error
from server.db.models import JOB_TERMINAL
from server.db.models import Job as JobRow
from server.db.repositories import JobRepository
from server.events import job_channel
from server.services import jobs as job_service
from server.services.errors import ServiceError

# With no event for this long, a subscription re-reads the row (an event may have been lost).
RECHECK_SECONDS = 15.0


@strawberry.enum
class JobStatus(Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


@strawberry.type(description="Long work (parsing, labeling, exports, training) and how it goes.")
class Job:
    id: strawberry.ID
    kind: str
    queue: str
    subject_id: strawberry.ID | None = strawberry.field(
        description="The upload, dataset or model the job works on."
    )
    status: JobStatus
    progress: float = strawberry.field(description="0 to 1.")
    message: str | None
    error: str | None
    detail: JSON | None = strawberry.field(
        description="Job-specific live figures, such as step and loss while training."
    )
    attempts: int
    revision: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime

    @classmethod
    def from_snapshot(cls, state: dict[str, Any]) -> Job:
        return cls(
            id=strawberry.ID(state["id"]),
            kind=state["kind"],
            queue=state["queue"],
            subject_id=state["subject_id"],
            status=JobStatus(state["status"]),
            progress=float(state["progress"]),
            message=state["message"],
            error=state["error"],
            detail=state["detail"],
            attempts=int(state["attempts"]),
            revision=int(state["revision"]),
            created_at=_datetime(state["created_at"]),
            started_at=_datetime(state["started_at"]),
            finished_at=_datetime(state["finished_at"]),
            updated_at=_datetime(state["updated_at"]),
        )

    @classmethod
    def from_row(cls, row: JobRow) -> Job:
        return cls.from_snapshot(job_service.snapshot(row))

    @property
    def terminal(self) -> bool:
        return self.status.value in JOB_TERMINAL


def _datetime(value: str | None) -> Any:
    return datetime.fromisoformat(value) if value else None


@strawberry.type
class JobQueries:
    @strawberry.field(description="One of your jobs, or null.")
    async def job(self, info: Info, id: strawberry.ID) -> Job | None:
        user_id = info.context.user_id
        async with info.context.resources.sessionmaker() as session:
            row = await JobRepository(session, user_id).get(id)
        return Job.from_row(row) if row is not None else None

    @strawberry.field(description="Your jobs, newest first.")
    async def jobs(
        self,
        info: Info,
        kind: str | None = None,
        status: JobStatus | None = None,
        first: int = 50,
    ) -> list[Job]:
        user_id = info.context.user_id
        first = max(1, min(first, info.context.resources.settings.max_page_size))
        async with info.context.resources.sessionmaker() as session:
            statement = JobRepository(session, user_id).select()
            if kind is not None:
                statement = statement.where(JobRow.kind == kind)
            if status is not None:
                statement = statement.where(JobRow.status == status.value)
            statement = statement.order_by(JobRow.created_at.desc(), JobRow.id).limit(first)
            rows = (await session.scalars(statement)).all()
        return [Job.from_row(row) for row in rows]


@strawberry.type
class CancelJobSuccess:
    job: Job


CancelJobPayload = Annotated[
    CancelJobSuccess | NotFoundError | ConflictError, strawberry.union("CancelJobPayload")
]


@strawberry.type
class JobMutations:
    @strawberry.mutation(description="Stop a queued or running job.")
    async def cancel_job(self, info: Info, id: strawberry.ID) -> CancelJobPayload:
        user_id = info.context.user_id
        resources = info.context.resources
        try:
            async with resources.sessionmaker() as session:
                row = await job_service.cancel(resources, session, user_id, id)
        except ServiceError as error:
            return user_error(error)  # type: ignore[return-value]
        return CancelJobSuccess(job=Job.from_row(row))


@strawberry.type
class JobSubscriptions:
    @strawberry.subscription(
        description="The job's current state, then every change; completes at a terminal status."
    )
    async def job_progress(self, info: Info, job_id: strawberry.ID) -> AsyncGenerator[Job, None]:
        user_id = info.context.user_id
        resources = info.context.resources
        # Subscribe first, then read the row: no event can fall between the two.
        async with resources.events.subscribe(job_channel(job_id)) as events:
            state = await _read(info, user_id, job_id)
            if state is None:
                raise GraphQLError("no such job", extensions={"code": "NOT_FOUND"})
            yield Job.from_snapshot(state)
            while state["status"] not in JOB_TERMINAL:
                event = await events.next(timeout=RECHECK_SECONDS)
                if event is None:
                    fresh = await _read(info, user_id, job_id)
                    if fresh is None or not _newer(fresh, state):
                        continue
                    event = fresh
                elif not _newer(event, state):
                    continue
                state = event
                yield Job.from_snapshot(state)


def _newer(event: dict[str, Any], seen: dict[str, Any]) -> bool:
    # A terminal event always counts: a cancellation is written by another process whose
    # revision numbers need not be above the running job's in-memory ones.
    return bool(event["status"] in JOB_TERMINAL or event["revision"] > seen["revision"])


async def _read(info: Info, user_id: str, job_id: str) -> dict[str, Any] | None:
    async with info.context.resources.sessionmaker() as session:
        row = await JobRepository(session, user_id).get(job_id)
    return job_service.snapshot(row) if row is not None else None
