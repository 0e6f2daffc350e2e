"""Every job weft runs, by name. The entry points hand this to the queue at start-up."""

from __future__ import annotations

from server.queue import JobDefinition
from tasks.verify_upload import verify_upload

JOBS: dict[str, JobDefinition] = {definition.name: definition for definition in (verify_upload,)}


def jobs_for(queue: str) -> list[JobDefinition]:
    return [definition for definition in JOBS.values() if definition.queue == queue]
