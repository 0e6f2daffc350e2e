"""verify_upload: read an upload's object back and check its size and sha256 against the row.

A cheap integrity check, and the smallest real job: it reads storage as a stream and reports
progress as the fraction of bytes read.
"""

from __future__ import annotations

import hashlib

from server.db.repositories import UploadRepository
from tasks.runner import JobContext, JobFailed, job


@job("verify_upload", queue="parse", timeout=3600, max_tries=3)
async def verify_upload(ctx: JobContext, *, upload_id: str) -> None:
    async with ctx.resources.sessionmaker() as session:
        upload = await UploadRepository(session, ctx.user_id).get(upload_id)
        if upload is None:
            raise JobFailed("the upload no longer exists")
        key, expected_size, expected_sha = upload.object_key, upload.size, upload.sha256
    digest = hashlib.sha256()
    done = 0
    async for chunk in ctx.resources.storage.read(key):
        digest.update(chunk)
        done += len(chunk)
        await ctx.reporter.update(progress=done / max(expected_size, 1))
    if done != expected_size or digest.hexdigest() != expected_sha:
        raise JobFailed(
            f"stored object differs from the upload: {done} bytes, sha256 {digest.hexdigest()}"
            f" (expected {expected_size} bytes, sha256 {expected_sha})"
        )
    await ctx.reporter.update(message=f"{done} bytes verified", detail={"bytes": done})
