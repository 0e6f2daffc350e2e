"""DataLoaders, built per request (the context makes them on first use): one query per batch."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from strawberry.dataloader import DataLoader

from server.db.models import Job, Label
from server.db.session import SessionMaker

LABEL_COLUMNS = (
    Label.id,
    Label.message_id,
    Label.key,
    Label.value,
    Label.source,
    Label.score,
    Label.rule,
    Label.created_at,
)


class Loaders:
    def __init__(self, sessionmaker: SessionMaker, user_id: str) -> None:
        self.sessionmaker = sessionmaker
        self.user_id = user_id
        self.labels: DataLoader[str, list[dict[str, Any]]] = DataLoader(load_fn=self._labels)
        self.latest_job: DataLoader[str, Job | None] = DataLoader(load_fn=self._latest_job)

    async def _labels(self, message_ids: Sequence[str]) -> list[list[dict[str, Any]]]:
        """The current (not superseded) labels of each message."""
        statement = (
            select(*LABEL_COLUMNS)
            .where(
                Label.user_id == self.user_id,
                Label.message_id.in_(message_ids),
                Label.superseded_at.is_(None),
            )
            .order_by(Label.key, Label.source, Label.value)
        )
        grouped: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
        async with self.sessionmaker() as session:
            for row in (await session.execute(statement)).mappings():
                grouped[row["message_id"]].append(dict(row))
        for labels in grouped.values():
            human_keys = {label["key"] for label in labels if label["source"] == "human"}
            for label in labels:
                label["effective"] = label["source"] == "human" or label["key"] not in human_keys
        return [grouped.get(message_id, []) for message_id in message_ids]

    async def _latest_job(self, subject_ids: Sequence[str]) -> list[Job | None]:
        """The newest job working on each subject (upload, dataset, model)."""
        statement = (
            select(Job)
            .where(Job.user_id == self.user_id, Job.subject_id.in_(subject_ids))
            .order_by(Job.created_at)
        )
        latest: dict[str, Job] = {}
        async with self.sessionmaker() as session:
            for job in await session.scalars(statement):
                if job.subject_id is not None:
                    latest[job.subject_id] = job
        return [latest.get(subject_id) for subject_id in subject_ids]
