"""Models: training runs (train_model), the registry, exports and deletion.

The API process validates what it can without loading torch: the training options are checked
again, fully, by the job before the trainer starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from ml.training.config import TrainConfig
from ml.training.errors import TrainConfigError
from server.db.models import Job, Model
from server.db.repositories import DatasetRepository, ModelRepository
from server.db.types import new_id
from server.resources import Resources
from server.services import jobs
from server.services.errors import Conflict, InvalidInput, NotFound
from server.services.files import delete_files
from server.services.model_sources import check_model_source

TRAIN_JOB = "train_model"
EXPORT_JOB = "export_model"
ARTIFACT = "artifact.tar"


def model_prefix(user_id: str, model_id: str) -> str:
    return f"users/{user_id}/models/{model_id}/"


def artifact_key(user_id: str, model_id: str) -> str:
    return model_prefix(user_id, model_id) + ARTIFACT


def export_key(user_id: str, model_id: str, merged: bool) -> str:
    return model_prefix(user_id, model_id) + ("export-merged.tar" if merged else ARTIFACT)


def check_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options a user set, checked by the trainer's own rules (no torch is loaded)."""
    chosen = {key: value for key, value in options.items() if value is not None}
    try:
        TrainConfig.from_dict(chosen)
    except TrainConfigError as error:
        message = str(error)
        field = message.split(" ", 1)[0]
        raise InvalidInput(message, field=field if field in chosen else None) from None
    return chosen


async def start_training(
    resources: Resources,
    user_id: str,
    *,
    name: str,
    dataset_id: str,
    base_model: str,
    options: Mapping[str, Any],
) -> tuple[Model, Job]:
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise InvalidInput("the name has 1 to 100 characters", field="name")
    base_model = check_model_source(resources.settings, base_model, "baseModel")
    config = check_options(options)
    async with resources.sessionmaker() as session:
        dataset = await DatasetRepository(session, user_id).get(dataset_id)
        if dataset is None:
            raise NotFound("no such dataset", field="datasetId")
        if dataset.status != "ready":
            raise InvalidInput("the dataset is not built yet", field="datasetId")
        model_id = new_id()
        model = ModelRepository(session, user_id).add(
            Model(
                id=model_id,
                name=name,
                dataset_id=dataset.id,
                base_model=base_model,
                method=config.get("method", "lora"),
                config=config,
                status="queued",
                object_key=artifact_key(user_id, model_id),
            )
        )
        job = jobs.add_job(
            session,
            resources,
            user_id,
            TRAIN_JOB,
            subject_id=model_id,
            arguments={"model_id": model_id},
        )
        await session.commit()
    await jobs.enqueue(resources, job)
    return model, job


async def start_export(resources: Resources, user_id: str, model_id: str) -> Job:
    """Merge the adapter into its base and archive the result (a job: it loads the model)."""
    async with resources.sessionmaker() as session:
        model = await ModelRepository(session, user_id).get(model_id)
        if model is None:
            raise NotFound("no such model", field="id")
        if model.status != "ready":
            raise InvalidInput("the model is not trained yet", field="id")
        if model.method != "lora":
            raise InvalidInput("a full fine-tune has nothing to merge: download it", field="merged")
        job = jobs.add_job(
            session,
            resources,
            user_id,
            EXPORT_JOB,
            subject_id=model_id,
            arguments={"model_id": model_id},
        )
        await session.commit()
    await jobs.enqueue(resources, job)
    return job


async def delete_model(resources: Resources, user_id: str, model_id: str) -> None:
    async with resources.sessionmaker() as session:
        model = await ModelRepository(session, user_id).get(model_id)
        if model is None:
            raise NotFound("no such model", field="id")
        await jobs.cancel_unfinished(resources, session, user_id, model_id)
        await delete_files(resources, model_prefix(user_id, model_id))
        await session.delete(model)
        await session.commit()


async def ready_model(session: AsyncSession, user_id: str, model_id: str) -> Model:
    """A model the caller owns that can serve chat."""
    model = await ModelRepository(session, user_id).get(model_id)
    if model is None:
        raise NotFound("no such model", field="modelId")
    if model.status != "ready":
        raise Conflict(f"the model is {model.status}, not ready", field="modelId")
    return model
