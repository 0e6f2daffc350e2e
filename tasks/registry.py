"""Every job weft runs, by name. The entry points hand this to the queue at start-up."""

from __future__ import annotations

from server.queue import JobDefinition
from tasks.export_dataset import export_dataset
from tasks.labeling import auto_label_messages, train_labeler
from tasks.parse_upload import parse_upload
from tasks.training import export_model, train_model
from tasks.verify_upload import verify_upload

JOBS: dict[str, JobDefinition] = {
    definition.name: definition
    for definition in (
        parse_upload,
        verify_upload,
        auto_label_messages,
        train_labeler,
        export_dataset,
        train_model,
        export_model,
    )
}


def jobs_for(queue: str) -> list[JobDefinition]:
    return [definition for definition in JOBS.values() if definition.queue == queue]
