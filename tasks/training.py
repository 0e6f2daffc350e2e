"""train_model and export_model.

Training runs in a child process (ml.training.TrainingProcess), so the worker's loop stays free
and a cancellation kills the run at once; the model row ends cancelled (failed, with the reason,
when the job's time limit stopped it) and nothing is stored.
The adapter (or full weights), tokenizer, model card and metrics go to storage as one tar under
the model's key only after the run wrote its COMPLETE marker; a failed upload fails the job.
torch, transformers and peft are imported inside the jobs, in a thread, never by the API process.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import update

from ml.training import TrainConfig, TrainConfigError, TrainingError, is_complete
from server.db.models import Model
from server.db.repositories import DatasetRepository, ModelRepository
from server.services.models import export_key
from server.storage import StorageError
from tasks.artifacts import download_folder, upload_folder
from tasks.runner import JobContext, JobFailed, job

if TYPE_CHECKING:
    from ml.training import TrainingProcess

T = TypeVar("T")

# The model row's live curve is written at most this often (the job row carries every event).
CURVE_WRITE_SECONDS = 10.0

log = logging.getLogger(__name__)


async def _set_model(
    ctx: JobContext, model_id: str, *, unless_ready: bool = False, **values: Any
) -> None:
    statement = update(Model).where(Model.id == model_id, Model.user_id == ctx.user_id)
    if unless_ready:
        statement = statement.where(Model.status != "ready")
    async with ctx.resources.sessionmaker() as session:
        await session.execute(statement.values(**values))
        await session.commit()


def _workdir(ctx: JobContext) -> Path:
    root = ctx.resources.settings.cache_dir / "scratch"
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=root, prefix="train-"))


async def _given_up(ctx: JobContext, error: str, *, model_id: str) -> None:
    await _set_model(ctx, model_id, unless_ready=True, status="failed", error=error)


@job("train_model", queue="train", timeout=48 * 3600, max_tries=2, give_up=_given_up)
async def train_model(ctx: JobContext, *, model_id: str) -> None:
    resources = ctx.resources
    workdir: Path | None = None
    artifact: str | None = None
    curve: list[dict[str, Any]] = []
    evals: list[dict[str, Any]] = []
    run: TrainingProcess | None = None
    # The whole body is guarded: however the job ends, the model row says how.
    try:
        # torch and transformers load in a thread: on the loop they would stall the other
        # jobs (and, embedded, the API) for a second or more.
        await asyncio.to_thread(importlib.import_module, "ml.training.process")
        from ml.training import TrainingProcess

        async with resources.sessionmaker() as session:
            model = await ModelRepository(session, ctx.user_id).get(model_id)
            if model is None:
                raise JobFailed("the model no longer exists")
            dataset = (
                await DatasetRepository(session, ctx.user_id).get(model.dataset_id)
                if model.dataset_id
                else None
            )
            if dataset is None or dataset.status != "ready":
                raise JobFailed("the dataset is gone or not built")
            base_model, options, artifact = model.base_model, dict(model.config), model.object_key
            dataset_prefix = dataset.object_key
            dataset_info = {
                "dataset_id": dataset.id,
                "name": dataset.name,
                "version": dataset.version,
                "sha256": dataset.sha256,
                "format": dataset.spec.get("format"),
            }
        try:
            config = TrainConfig.from_dict(options)
        except TrainConfigError as error:
            raise JobFailed(f"invalid training options: {error}") from None

        await _set_model(ctx, model_id, status="training", error=None)
        workdir = _workdir(ctx)
        train_path, eval_path = workdir / "train.jsonl", workdir / "eval.jsonl"
        await resources.storage.download(dataset_prefix + "train.jsonl", train_path)
        await resources.storage.download(dataset_prefix + "eval.jsonl", eval_path)
        has_eval = eval_path.stat().st_size > 0
        output = workdir / "output"
        run = TrainingProcess(
            config,
            base_model,
            train_path,
            eval_path if has_eval else None,
            output,
            dataset_info=dataset_info,
        ).start()
        written = time.monotonic()
        async for event in run.aevents():
            kind = event.get("type")
            if kind == "log":
                curve.append(_point(event))
                total = max(int(event.get("max_steps") or 1), 1)
                await ctx.reporter.update(
                    progress=0.95 * int(event.get("step", 0)) / total,
                    message=f"step {event.get('step')} of {total}, loss {event.get('loss', 0):.4f}",
                    detail={**_point(event), "phase": "training"},
                )
            elif kind == "eval":
                evals.append(_point(event))
                await ctx.reporter.update(detail={**_point(event), "phase": "evaluating"})
            elif kind == "start":
                await ctx.reporter.update(message="training started", detail=_point(event))
            if time.monotonic() - written >= CURVE_WRITE_SECONDS:
                await _set_model(ctx, model_id, training_curve=curve + evals)
                written = time.monotonic()
        result = await run.await_result()
        if not is_complete(output):
            raise JobFailed("the trainer stopped before writing a complete model")
        await ctx.reporter.update(progress=0.96, message="uploading the model")
        stored = await upload_folder(resources.storage, artifact, output, workdir / "scratch")
        await _set_model(
            ctx,
            model_id,
            status="ready",
            metrics=result.metrics,
            training_curve=result.curve + result.eval_curve,
            artifact_size=stored.size,
            error=None,
        )
        await ctx.reporter.update(progress=1.0, message="model ready", detail=result.metrics)
    except asyncio.CancelledError:
        # A user's cancel or a stopping worker: cancelled. The job's time limit: failed.
        stopped: dict[str, Any] = (
            {"status": "failed", "error": ctx.too_long("training")}
            if ctx.timed_out()
            else {"status": "cancelled"}
        )
        if run is not None:
            await asyncio.shield(asyncio.to_thread(run.cancel))
        await asyncio.shield(
            _set_model(ctx, model_id, unless_ready=True, training_curve=curve + evals, **stopped)
        )
        raise
    except (TrainingError, JobFailed) as error:
        await _set_model(
            ctx, model_id, status="failed", error=str(error), training_curve=curve + evals
        )
        raise JobFailed(str(error)) from None
    except Exception as error:
        await _set_model(ctx, model_id, status="failed", error=f"training failed: {error}")
        if artifact is not None:
            try:
                await resources.storage.delete(artifact)
            except StorageError:  # storage is down (likely why we are here): the row says failed
                log.warning("could not remove the artifact %s", artifact, exc_info=True)
        raise
    finally:
        if run is not None:
            await asyncio.shield(asyncio.to_thread(run.close))
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)


def _point(event: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in event.items() if key != "type"} | {
        "kind": event.get("type")
    }


@job("export_model", queue="train", timeout=6 * 3600, max_tries=2)
async def export_model(ctx: JobContext, *, model_id: str) -> None:
    await asyncio.to_thread(importlib.import_module, "ml.training.adapters")
    from ml.training import merge_adapter

    resources = ctx.resources
    async with resources.sessionmaker() as session:
        model = await ModelRepository(session, ctx.user_id).get(model_id)
        if model is None or model.status != "ready":
            raise JobFailed("the model is gone or not ready")
        artifact, base_model = model.object_key, model.base_model
    workdir = _workdir(ctx)
    try:
        adapter = await download_folder(
            resources.storage, artifact, workdir / "adapter", workdir / "scratch"
        )
        await ctx.reporter.update(progress=0.3, message="merging the adapter into its base")
        merged = workdir / "merged"
        try:
            await _in_thread(merge_adapter, base_model, adapter, merged)
        except (TrainingError, OSError, ValueError) as error:
            raise JobFailed(f"cannot merge: {error}") from None
        await ctx.reporter.update(progress=0.8, message="uploading the merged model")
        stored = await upload_folder(
            resources.storage, export_key(ctx.user_id, model_id, True), merged, workdir / "scratch"
        )
        await ctx.reporter.update(
            progress=1.0, message="merged model ready", detail={"bytes": stored.size}
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def _in_thread(function: Callable[..., T], *args: Any) -> T:
    """Run `function` in a thread; if cancelled, wait for the thread before passing the
    cancellation on. A thread cannot be stopped, and one still running would write into
    folders its job has already removed."""
    work = asyncio.ensure_future(asyncio.to_thread(function, *args))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        await asyncio.gather(asyncio.shield(work), return_exceptions=True)
        raise
