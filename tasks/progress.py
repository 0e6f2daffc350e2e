"""The one way a job reports progress: an event per change, the jobs row at most about once
a second, and the terminal status always written."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from sqlalchemy import update

from server.db.models import JOB_TERMINAL, Job
from server.db.types import utcnow
from server.events import job_channel
from server.resources import Resources
from server.services.jobs import JobSnapshot

log = logging.getLogger(__name__)


class ProgressReporter:
    def __init__(self, resources: Resources, state: JobSnapshot, *, interval: float = 1.0) -> None:
        self.resources = resources
        self.state = state
        self.interval = interval
        self._written = time.monotonic()
        self._dirty = False

    @property
    def job_id(self) -> str:
        return str(self.state["id"])

    async def update(
        self,
        *,
        progress: float | None = None,
        message: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Record a change: published at once, written to the row when a second has passed."""
        if progress is not None:
            self.state["progress"] = min(max(float(progress), 0.0), 1.0)
        if message is not None:
            self.state["message"] = message[:500]
        if detail is not None:
            self.state["detail"] = detail
        self._touch()
        self._dirty = True
        await self.publish()
        if time.monotonic() - self._written >= self.interval:
            await self._write(terminal=False)

    async def flush(self) -> None:
        if self._dirty:
            await self._write(terminal=False)

    async def finish(
        self, status: str, *, error: str | None = None, message: str | None = None
    ) -> bool:
        """Write the terminal status unless the row is already terminal (say, cancelled by the
        user meanwhile); returns whether this call decided the outcome."""
        assert status in JOB_TERMINAL
        self.state["status"] = status
        if status == "succeeded":
            self.state["progress"] = 1.0
        if error is not None:
            self.state["error"] = error
        if message is not None:
            self.state["message"] = message[:500]
        self.state["finished_at"] = utcnow().isoformat()
        self._touch()
        won = await self._write(terminal=True)
        if won:
            await self.publish()
        return won

    async def requeue(self, reason: str) -> None:
        """The job was interrupted (worker shutting down): back to queued unless it is terminal."""
        self.state["status"] = "queued"
        self.state["message"] = reason
        self._touch()
        if await self._write(terminal=True):
            await self.publish()

    async def publish(self) -> None:
        try:
            await self.resources.events.publish(job_channel(self.job_id), dict(self.state))
        except Exception:
            # Live progress is best effort; the row keeps the truth.
            log.warning("progress event for job %s not published", self.job_id, exc_info=True)

    def _touch(self) -> None:
        self.state["revision"] = int(self.state["revision"]) + 1
        self.state["updated_at"] = utcnow().isoformat()

    async def _write(self, *, terminal: bool) -> bool:
        state = self.state
        values: dict[str, Any] = {
            "progress": state["progress"],
            "message": state["message"],
            "detail": state["detail"],
            "revision": state["revision"],
            "updated_at": utcnow(),
        }
        if terminal:
            values["status"] = state["status"]
            values["error"] = state["error"]
            if state["status"] in JOB_TERMINAL:
                values["finished_at"] = utcnow()
        # A finished row (cancelled by the user meanwhile, say) is never written again.
        statement = (
            update(Job)
            .where(Job.id == self.job_id, Job.status.not_in(JOB_TERMINAL))
            .values(**values)
        )

        async def write() -> bool:
            async with self.resources.sessionmaker() as session:
                result = await session.execute(statement)
                await session.commit()
            return bool(result.rowcount)  # type: ignore[attr-defined]

        # Shielded: a cancellation never cuts the write in half (see server.db.bulk).
        changed = await asyncio.shield(write())
        self._written = time.monotonic()
        self._dirty = False
        return changed
