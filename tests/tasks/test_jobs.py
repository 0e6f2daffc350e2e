"""A real job through both queue backends: arq workers on Redis and the in-process runner."""

from __future__ import annotations

import asyncio
from typing import Any

from server.db.models import Job, Upload
from server.db.types import new_id
from server.resources import Resources
from server.services import jobs as job_service
from server.services.uploads import upload_key
from tests.support.live import Client

PROGRESS = """subscription($id: ID!) {
  jobProgress(jobId: $id) { id status progress message error revision detail }
}"""


async def stored_upload(resources: Resources, user_id: str, data: bytes) -> Upload:
    upload_id = new_id()
    key = upload_key(user_id, upload_id)
    written = await resources.storage.write_bytes(key, data)
    upload = Upload(
        id=upload_id,
        user_id=user_id,
        filename="chat.txt",
        size=written.size,
        sha256=written.sha256,
        object_key=key,
    )
    async with resources.sessionmaker() as session:
        session.add(upload)
        await session.commit()
    return upload


async def start_job(resources: Resources, user_id: str, name: str, **arguments: Any) -> str:
    async with resources.sessionmaker() as session:
        job = job_service.new_job(user_id, name, resources, subject_id=None, arguments=arguments)
        job.user_id = user_id
        session.add(job)
        await session.commit()
    await job_service.enqueue(resources, job)
    return job.id


async def watch(user: Client, job_id: str) -> list[dict[str, Any]]:
    states = []
    async with user.subscribe(PROGRESS, {"id": job_id}) as subscription:
        async for data in subscription:
            states.append(data["jobProgress"])
    return states


async def test_job_runs_and_reports_progress(resources: Resources, user: Client) -> None:
    assert user.user_id
    upload = await stored_upload(resources, user.user_id, "你好 👋\n".encode() * 100_000)
    job_id = await start_job(resources, user.user_id, "verify_upload", upload_id=upload.id)
    states = await watch(user, job_id)
    final = states[-1]
    assert final["status"] == "SUCCEEDED", final
    assert final["progress"] == 1.0
    assert final["detail"] == {"bytes": upload.size}
    revisions = [state["revision"] for state in states]
    assert revisions == sorted(revisions)
    async with resources.sessionmaker() as session:
        row = await session.get(Job, job_id)
        assert row is not None and row.status == "succeeded" and row.finished_at is not None
        assert row.attempts == 1


async def test_failing_job_records_the_error_and_the_worker_goes_on(
    resources: Resources, user: Client
) -> None:
    assert user.user_id
    broken = await stored_upload(resources, user.user_id, b"original bytes")
    await resources.storage.write_bytes(broken.object_key, b"tampered bytes!")
    failed_id = await start_job(resources, user.user_id, "verify_upload", upload_id=broken.id)
    states = await watch(user, failed_id)
    assert states[-1]["status"] == "FAILED"
    assert "stored object differs" in states[-1]["error"]

    missing_id = await start_job(resources, user.user_id, "verify_upload", upload_id=new_id())
    states = await watch(user, missing_id)
    assert states[-1]["error"] == "the upload no longer exists"

    good = await stored_upload(resources, user.user_id, b"fine")
    states = await watch(
        user, await start_job(resources, user.user_id, "verify_upload", upload_id=good.id)
    )
    assert states[-1]["status"] == "SUCCEEDED"


async def test_terminal_job_is_not_run_again(resources: Resources, user: Client) -> None:
    assert user.user_id
    upload = await stored_upload(resources, user.user_id, b"data")
    job_id = await start_job(resources, user.user_id, "verify_upload", upload_id=upload.id)
    await watch(user, job_id)
    await resources.queue.enqueue("verify_upload", job_id=new_id())  # unknown row: skipped
    async with resources.sessionmaker() as session:
        row = await session.get(Job, job_id)
        assert row is not None
        attempts = row.attempts
    await asyncio.sleep(0.5)
    async with resources.sessionmaker() as session:
        row = await session.get(Job, job_id)
        assert row is not None and row.attempts == attempts


async def test_cancel_a_queued_job(resources: Resources, user: Client) -> None:
    assert user.user_id
    async with resources.sessionmaker() as session:
        job = job_service.new_job(
            user.user_id, "verify_upload", resources, subject_id=None, arguments={"upload_id": "x"}
        )
        job.user_id = user.user_id
        session.add(job)
        await session.commit()
    data = await user.query(
        """mutation($id: ID!) {
             cancelJob(id: $id) { __typename ... on CancelJobSuccess { job { status } } }
           }""",
        {"id": job.id},
    )
    assert data["cancelJob"]["job"]["status"] == "CANCELLED"
    again = await user.query(
        "mutation($id: ID!) { cancelJob(id: $id) { __typename ... on UserError { code } } }",
        {"id": job.id},
    )
    assert again["cancelJob"] == {"__typename": "ConflictError", "code": "CONFLICT"}
    await job_service.enqueue(resources, job)
    states = await watch(user, job.id)
    assert [state["status"] for state in states] == ["CANCELLED"]
