"""Datasets: `createDataset`, `datasets`, `dataset` with its versions, `datasetPreview`,
download URLs, `deleteDataset`."""

from __future__ import annotations

import math
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, cast

import strawberry
from strawberry.scalars import JSON

from graph.context import Info
from graph.downloads import download_link
from graph.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    UnavailableError,
    user_error,
)
from graph.jobs import Job
from server.db.models import Dataset as DatasetRow
from server.db.repositories import DatasetRepository
from server.services import datasets as dataset_service
from server.services.errors import ServiceError


@strawberry.enum
class DatasetFormat(Enum):
    PROMPT_COMPLETION = "prompt_completion"
    SHAREGPT = "sharegpt"
    ALPACA = "alpaca"


@strawberry.enum
class DatasetStatus(Enum):
    PENDING = "pending"
    BUILDING = "building"
    READY = "ready"
    FAILED = "failed"


@strawberry.enum
class DatasetFile(Enum):
    TRAIN = "train.jsonl"
    EVAL = "eval.jsonl"
    LLAMAFACTORY_INFO = "dataset_info.json"


@strawberry.enum
class LabelOp(Enum):
    EQ = "eq"
    NE = "ne"
    IN = "in"
    NOT_IN = "not_in"


@strawberry.enum
class NonTextPolicy(Enum):
    DROP = "drop"
    PLACEHOLDER = "placeholder"


@strawberry.input(description="topic = 工资纠纷, sentiment ≠ negative, topic in [...], ...")
class LabelConditionInput:
    key: str
    op: LabelOp = LabelOp.EQ
    values: list[str]
    per_message: bool = strawberry.field(
        default=False,
        description="Drop single messages that fail, instead of whole examples.",
    )


@strawberry.input
class DatasetFiltersInput:
    labels: list[LabelConditionInput] = strawberry.field(default_factory=list)
    senders: list[str] = strawberry.field(default_factory=list)
    exclude_senders: list[str] = strawberry.field(default_factory=list)
    since: datetime | None = None
    until: datetime | None = None
    non_text: NonTextPolicy = NonTextPolicy.DROP
    min_length: int = 1
    max_length: int | None = None


@strawberry.input(description="What a new dataset version is built from, and how.")
class DatasetInput:
    name: str
    upload_ids: list[strawberry.ID]
    persona: list[str] = strawberry.field(
        default_factory=list,
        description="Whose replies the model learns; empty means the messages marked as yours.",
    )
    format: DatasetFormat = DatasetFormat.PROMPT_COMPLETION
    system_prompt: str = ""
    session_gap_minutes: float = 30
    merge_consecutive: bool = True
    max_context_turns: int = 4
    filters: DatasetFiltersInput | None = None
    scrub_pii: bool = True
    scrub_names: list[str] = strawberry.field(
        default_factory=list, description="Names to replace with <姓名>."
    )
    dedupe_exact: bool = True
    dedupe_near: bool = True
    eval_ratio: float = 0.05
    seed: int = 0

    def spec(self) -> dict[str, Any]:
        filters = self.filters or DatasetFiltersInput()
        gap = self.session_gap_minutes * 60
        return {
            "format": self.format.value,
            "persona": self.persona,
            "system_prompt": self.system_prompt,
            # Not a finite number: left as it is, for the spec's check to refuse it.
            "session_gap_seconds": round(gap) if math.isfinite(gap) else gap,
            "merge_consecutive": self.merge_consecutive,
            "max_context_turns": self.max_context_turns,
            "filters": {
                "labels": [
                    {
                        "key": c.key,
                        "op": c.op.value,
                        "values": c.values,
                        "scope": "message" if c.per_message else "example",
                    }
                    for c in filters.labels
                ],
                "senders": filters.senders,
                "exclude_senders": filters.exclude_senders,
                "since": filters.since.isoformat() if filters.since else None,
                "until": filters.until.isoformat() if filters.until else None,
                "non_text": filters.non_text.value,
                "min_length": filters.min_length,
                "max_length": filters.max_length,
            },
            "pii": {"enabled": self.scrub_pii, "names": self.scrub_names},
            "dedupe": {"exact": self.dedupe_exact, "near": self.dedupe_near},
            "split": {"eval_ratio": self.eval_ratio, "seed": self.seed},
        }


@strawberry.type
class Dataset:
    id: strawberry.ID
    name: str
    version: int
    status: DatasetStatus
    error: str | None
    format: DatasetFormat
    upload_ids: list[strawberry.ID]
    spec: JSON = strawberry.field(description="Everything the bytes depend on, as stored.")
    sha256: str | None = strawberry.field(
        description="Content hash: sha256 of the train and eval files' sha256 digests."
    )
    stats: JSON | None = strawberry.field(
        description="Examples, turns, approximate tokens, scrubbed PII by type, label counts, "
        "what was dropped and why."
    )
    created_at: datetime

    @strawberry.field(description="Every version under this name, newest first.")
    async def versions(self, info: Info) -> list[Dataset]:
        user_id = info.context.user_id
        async with info.context.resources.sessionmaker() as session:
            rows = await dataset_service.versions(session, user_id, self.name)
        return [Dataset.from_row(row) for row in rows]

    @strawberry.field(description="The job that built (or is building) this version.")
    async def job(self, info: Info) -> Job | None:
        row = await info.context.loaders.latest_job.load(self.id)
        return Job.from_row(row) if row is not None else None

    @strawberry.field(description="A time-limited download link (null until the dataset is ready).")
    async def download_url(
        self, info: Info, file: DatasetFile = DatasetFile.TRAIN, expires_in: int = 3600
    ) -> str | None:
        if self.status != DatasetStatus.READY:
            return None
        async with info.context.resources.sessionmaker() as session:
            row = await DatasetRepository(session, info.context.user_id).get(self.id)
        if row is None:
            return None
        return await download_link(
            info,
            row.object_key + file.value,
            expires_in=expires_in,
            filename=f"{self.name}-v{self.version}-{file.value}",
        )

    @classmethod
    def from_row(cls, row: DatasetRow) -> Dataset:
        spec = dict(row.spec)
        return cls(
            id=strawberry.ID(row.id),
            name=row.name,
            version=row.version,
            status=DatasetStatus(row.status),
            error=row.error,
            format=DatasetFormat(spec["format"]),
            upload_ids=[strawberry.ID(u) for u in spec["uploads"]],
            spec=cast(JSON, spec),
            sha256=row.sha256,
            stats=cast(JSON, row.stats),
            created_at=row.created_at,
        )


@strawberry.type
class Turn:
    role: str
    content: str


@strawberry.type(description="One example as it will be written, PII placeholders visible.")
class DatasetExample:
    split: str
    turns: list[Turn]
    record: JSON = strawberry.field(description="The JSON line, as written.")
    labels: JSON
    approx_tokens: int
    message_ids: list[strawberry.ID]


@strawberry.type
class CreateDatasetSuccess:
    dataset: Dataset
    job: Job


@strawberry.type
class DeleteDatasetSuccess:
    id: strawberry.ID


CreateDatasetPayload = Annotated[
    CreateDatasetSuccess | InvalidInputError | NotFoundError | ConflictError,
    strawberry.union("CreateDatasetPayload"),
]
DeleteDatasetPayload = Annotated[
    DeleteDatasetSuccess | NotFoundError | UnavailableError,
    strawberry.union("DeleteDatasetPayload"),
]


@strawberry.type
class DatasetQueries:
    @strawberry.field(description="Your datasets (every version), newest first.")
    async def datasets(self, info: Info, name: str | None = None) -> list[Dataset]:
        user_id = info.context.user_id
        async with info.context.resources.sessionmaker() as session:
            statement = DatasetRepository(session, user_id).select()
            if name is not None:
                statement = statement.where(DatasetRow.name == name)
            statement = statement.order_by(DatasetRow.created_at.desc(), DatasetRow.version.desc())
            rows = (await session.scalars(statement)).all()
        return [Dataset.from_row(row) for row in rows]

    @strawberry.field(description="One dataset version, or null.")
    async def dataset(self, info: Info, id: strawberry.ID) -> Dataset | None:
        user_id = info.context.user_id
        async with info.context.resources.sessionmaker() as session:
            row = await DatasetRepository(session, user_id).get(id)
        return Dataset.from_row(row) if row is not None else None

    @strawberry.field(description="The first examples a dataset's spec makes, rendered.")
    async def dataset_preview(
        self, info: Info, id: strawberry.ID, first: int = 10
    ) -> list[DatasetExample]:
        user_id = info.context.user_id
        first = max(1, min(first, 100))
        try:
            examples = await dataset_service.preview_dataset(
                info.context.resources, user_id, id, first
            )
        except ServiceError:
            return []
        return [
            DatasetExample(
                split=example.split,
                turns=[Turn(role=role, content=content) for role, content in example.turns],
                record=cast(JSON, example.record),
                labels=cast(JSON, example.labels),
                approx_tokens=example.tokens,
                message_ids=[strawberry.ID(i) for i in example.message_ids],
            )
            for example in examples
        ]


@strawberry.type
class DatasetMutations:
    @strawberry.mutation(
        description="Build a new dataset version from uploads (a name in use gets version n+1)."
    )
    async def create_dataset(self, info: Info, input: DatasetInput) -> CreateDatasetPayload:
        user_id = info.context.user_id
        try:
            dataset, job = await dataset_service.create_dataset(
                info.context.resources,
                user_id,
                name=input.name,
                upload_ids=input.upload_ids,
                spec=input.spec(),
            )
        except ServiceError as error:
            return user_error(error)  # type: ignore[return-value]
        return CreateDatasetSuccess(dataset=Dataset.from_row(dataset), job=Job.from_row(job))

    @strawberry.mutation(description="Delete one dataset version and its files.")
    async def delete_dataset(self, info: Info, id: strawberry.ID) -> DeleteDatasetPayload:
        user_id = info.context.user_id
        try:
            await dataset_service.delete_dataset(info.context.resources, user_id, id)
        except ServiceError as error:
            return user_error(error)  # type: ignore[return-value]
        return DeleteDatasetSuccess(id=id)
