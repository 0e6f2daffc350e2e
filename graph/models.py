"""Models: `trainModel`, the registry (`models`, `model`), `exportModel`, `deleteModel`."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated, Any, cast

import strawberry
from strawberry.scalars import JSON

from graph.context import Info
from graph.datasets import Dataset
from graph.downloads import download_link
from graph.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    UnavailableError,
    user_error,
)
from graph.jobs import Job
from server.db.models import Model as ModelRow
from server.db.repositories import DatasetRepository, ModelRepository
from server.services import models as model_service
from server.services.errors import InvalidInput, NotFound, ServiceError


@strawberry.enum
class TrainingMethod(Enum):
    LORA = "lora"
    FULL = "full"


@strawberry.enum
class LrSchedule(Enum):
    LINEAR = "linear"
    COSINE = "cosine"
    CONSTANT = "constant"


@strawberry.enum
class ModelStatus(Enum):
    QUEUED = "queued"
    TRAINING = "training"
    READY = "ready"
    FAILED = "failed"
    CANCELLED = "cancelled"


@strawberry.input(description="A fine-tuning run. Unset options take sensible defaults.")
class TrainModelInput:
    name: str
    dataset_id: strawberry.ID
    base_model: str = strawberry.field(
        description="A local model folder, or a hub id where the training machine can download."
    )
    method: TrainingMethod = TrainingMethod.LORA
    lora_r: int | None = None
    lora_alpha: int | None = None
    lora_dropout: float | None = None
    target_modules: list[str] | None = strawberry.field(
        default=None, description="Default: the architecture's attention and MLP projections."
    )
    epochs: float | None = None
    max_steps: int | None = strawberry.field(default=None, description="Overrides epochs.")
    learning_rate: float | None = None
    lr_scheduler: LrSchedule | None = None
    warmup_ratio: float | None = None
    batch_size: int | None = None
    gradient_accumulation: int | None = None
    max_seq_length: int | None = None
    seed: int | None = None
    eval_every_steps: int | None = None
    logging_steps: int | None = None
    gradient_checkpointing: bool | None = None

    def options(self) -> dict[str, Any]:
        return {
            "method": self.method.value,
            "lora_r": self.lora_r,
            "lora_alpha": self.lora_alpha,
            "lora_dropout": self.lora_dropout,
            "target_modules": self.target_modules,
            "epochs": self.epochs,
            "max_steps": self.max_steps,
            "learning_rate": self.learning_rate,
            "lr_scheduler": self.lr_scheduler.value if self.lr_scheduler else None,
            "warmup_ratio": self.warmup_ratio,
            "batch_size": self.batch_size,
            "gradient_accumulation": self.gradient_accumulation,
            "max_seq_length": self.max_seq_length,
            "seed": self.seed,
            "eval_every_steps": self.eval_every_steps,
            "logging_steps": self.logging_steps,
            "gradient_checkpointing": self.gradient_checkpointing,
        }


@strawberry.type
class CurvePoint:
    kind: str = strawberry.field(description="log (training step) or eval.")
    step: int
    epoch: float | None
    loss: float | None
    eval_loss: float | None
    perplexity: float | None
    learning_rate: float | None
    tokens_per_second: float | None

    @classmethod
    def from_dict(cls, point: dict[str, Any]) -> CurvePoint:
        return cls(
            kind=str(point.get("kind") or ("eval" if "eval_loss" in point else "log")),
            step=int(point.get("step", 0)),
            epoch=point.get("epoch"),
            loss=point.get("loss"),
            eval_loss=point.get("eval_loss"),
            perplexity=point.get("perplexity"),
            learning_rate=point.get("learning_rate"),
            tokens_per_second=point.get("tokens_per_second"),
        )


@strawberry.type(description="A fine-tuned model and its lineage.")
class Model:
    id: strawberry.ID
    name: str
    status: ModelStatus
    error: str | None
    method: TrainingMethod
    base_model: str
    dataset_id: strawberry.ID | None
    config: JSON = strawberry.field(description="The options the run was started with.")
    metrics: JSON | None = strawberry.field(
        description="Final loss, eval loss and perplexity, tokens/s, parameters, duration."
    )
    artifact_size: float | None = strawberry.field(description="Bytes of the stored artifact.")
    created_at: datetime
    _curve: strawberry.Private[list[dict[str, Any]]]
    _object_key: strawberry.Private[str]

    @strawberry.field(description="Loss per logging step, and the evaluations.")
    def training_curve(self) -> list[CurvePoint]:
        return [CurvePoint.from_dict(point) for point in self._curve]

    @strawberry.field(description="The dataset version it was trained on.")
    async def dataset(self, info: Info) -> Dataset | None:
        if self.dataset_id is None:
            return None
        async with info.context.resources.sessionmaker() as session:
            row = await DatasetRepository(session, info.context.user_id).get(self.dataset_id)
        return Dataset.from_row(row) if row is not None else None

    @strawberry.field(description="The training job (or the newest job on this model).")
    async def job(self, info: Info) -> Job | None:
        row = await info.context.loaders.latest_job.load(self.id)
        return Job.from_row(row) if row is not None else None

    @strawberry.field(
        description="A time-limited download link: the adapter (or full weights) with tokenizer "
        "and model card; with merged, the adapter merged into its base once exportModel ran."
    )
    async def download_url(
        self, info: Info, merged: bool = False, expires_in: int = 3600
    ) -> str | None:
        if self.status != ModelStatus.READY:
            return None
        user_id = info.context.user_id
        key = model_service.export_key(user_id, self.id, merged)
        if await info.context.resources.storage.size(key) is None:
            return None
        suffix = "merged" if merged else self.method.value
        return await download_link(
            info, key, expires_in=expires_in, filename=f"{self.name}-{suffix}.tar"
        )

    @classmethod
    def from_row(cls, row: ModelRow) -> Model:
        return cls(
            id=strawberry.ID(row.id),
            name=row.name,
            status=ModelStatus(row.status),
            error=row.error,
            method=TrainingMethod(row.method),
            base_model=row.base_model,
            dataset_id=strawberry.ID(row.dataset_id) if row.dataset_id else None,
            config=cast(JSON, row.config),
            metrics=cast(JSON, row.metrics),
            artifact_size=row.artifact_size,
            created_at=row.created_at,
            _curve=list(row.training_curve or []),
            _object_key=row.object_key,
        )


@strawberry.type
class TrainModelSuccess:
    model: Model
    job: Job


@strawberry.type
class ExportModelSuccess:
    model: Model
    job: Job | None = strawberry.field(description="The merge job; null for the adapter alone.")
    url: str | None = strawberry.field(description="The download link, when ready now.")


@strawberry.type
class DeleteModelSuccess:
    id: strawberry.ID


TrainModelPayload = Annotated[
    TrainModelSuccess | InvalidInputError | NotFoundError, strawberry.union("TrainModelPayload")
]
ExportModelPayload = Annotated[
    ExportModelSuccess | InvalidInputError | NotFoundError | ConflictError,
    strawberry.union("ExportModelPayload"),
]
DeleteModelPayload = Annotated[
    DeleteModelSuccess | NotFoundError | UnavailableError, strawberry.union("DeleteModelPayload")
]


@strawberry.type
class ModelQueries:
    @strawberry.field(description="Your models, newest first.")
    async def models(self, info: Info, status: ModelStatus | None = None) -> list[Model]:
        user_id = info.context.user_id
        async with info.context.resources.sessionmaker() as session:
            statement = ModelRepository(session, user_id).select()
            if status is not None:
                statement = statement.where(ModelRow.status == status.value)
            rows = (await session.scalars(statement.order_by(ModelRow.created_at.desc()))).all()
        return [Model.from_row(row) for row in rows]

    @strawberry.field(description="One model, or null.")
    async def model(self, info: Info, id: strawberry.ID) -> Model | None:
        user_id = info.context.user_id
        async with info.context.resources.sessionmaker() as session:
            row = await ModelRepository(session, user_id).get(id)
        return Model.from_row(row) if row is not None else None


@strawberry.type
class ModelMutations:
    @strawberry.mutation(description="Fine-tune a base model on a dataset version (a train job).")
    async def train_model(self, info: Info, input: TrainModelInput) -> TrainModelPayload:
        user_id = info.context.user_id
        try:
            model, job = await model_service.start_training(
                info.context.resources,
                user_id,
                name=input.name,
                dataset_id=input.dataset_id,
                base_model=input.base_model,
                options=input.options(),
            )
        except ServiceError as error:
            return user_error(error)  # type: ignore[return-value]
        return TrainModelSuccess(model=Model.from_row(model), job=Job.from_row(job))

    @strawberry.mutation(
        description="A downloadable archive: the adapter alone (now), or merged into its base "
        "(a job; then `downloadUrl(merged: true)`)."
    )
    async def export_model(
        self, info: Info, id: strawberry.ID, merged: bool = False
    ) -> ExportModelPayload:
        user_id = info.context.user_id
        resources = info.context.resources
        try:
            async with resources.sessionmaker() as session:
                row = await ModelRepository(session, user_id).get(id)
            if row is None:
                raise NotFound("no such model", field="id")
            model = Model.from_row(row)
            if not merged:
                if row.status != "ready":
                    raise InvalidInput("the model is not trained yet", field="id")
                return ExportModelSuccess(model=model, job=None, url=await model.download_url(info))
            job = await model_service.start_export(resources, user_id, id)
        except ServiceError as error:
            return user_error(error)  # type: ignore[return-value]
        return ExportModelSuccess(model=model, job=Job.from_row(job), url=None)

    @strawberry.mutation(description="Delete a model and its files.")
    async def delete_model(self, info: Info, id: strawberry.ID) -> DeleteModelPayload:
        user_id = info.context.user_id
        try:
            await model_service.delete_model(info.context.resources, user_id, id)
        except ServiceError as error:
            return user_error(error)  # type: ignore[return-value]
        return DeleteModelSuccess(id=id)
