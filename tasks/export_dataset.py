"""export_dataset: build a dataset's train.jsonl and eval.jsonl and stream them into storage.

Messages are read from the database on the event loop and handed to the builder in a worker
thread; the builder's output goes back to the loop and into two storage writes that run at the
same time (S3 multipart uploads, or temporary files renamed into place). Memory stays flat in
the number of messages; a failed build aborts both writes, so no half-written file remains.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any, BinaryIO, cast

import orjson
from sqlalchemy import update

from ml.datasets import DatasetInputError, DatasetStats, build_dataset, llamafactory_dataset_info
from server.db.models import Dataset
from server.db.repositories import DatasetRepository, UploadRepository
from server.services.datasets import MessageFeed, messages_for, spec_of
from server.storage import StorageError, WriteResult
from tasks.runner import JobContext, JobFailed, job

log = logging.getLogger(__name__)

FILES = ("train.jsonl", "eval.jsonl")


class StreamOut:
    """A binary file for the builder's thread whose writes become chunks of an async stream.

    The queue is bounded, so a slow store slows the builder down instead of filling memory; if
    the store fails, the next write raises instead of waiting forever."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue(8)
        self._consumer_gone = threading.Event()

    def consumer(self, task: asyncio.Task[Any]) -> asyncio.Task[Any]:
        task.add_done_callback(lambda _: self._consumer_gone.set())
        return task

    def _put(self, item: bytes | BaseException | None) -> None:
        future = asyncio.run_coroutine_threadsafe(self._queue.put(item), self._loop)
        while True:
            try:
                future.result(timeout=0.5)
                return
            except concurrent.futures.TimeoutError:
                if self._consumer_gone.is_set():
                    future.cancel()
                    raise BuildFailed("the storage write stopped") from None

    def write(self, data: bytes) -> int:
        self._put(bytes(data))
        return len(data)

    def close(self, error: BaseException | None = None) -> None:
        with contextlib.suppress(BuildFailed):
            self._put(error)

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item


class BuildFailed(Exception):
    pass


async def _given_up(ctx: JobContext, error: str, *, dataset_id: str) -> None:
    async with ctx.resources.sessionmaker() as session:
        dataset = await DatasetRepository(session, ctx.user_id).get(dataset_id)
        # A dataset that was built (its job's last write was lost) keeps its files.
        prefix = dataset.object_key if dataset is not None and dataset.status != "ready" else None
    if prefix is not None:
        await _fail(ctx, dataset_id, prefix, [], error)


@job("export_dataset", queue="label", timeout=6 * 3600, max_tries=3, give_up=_given_up)
async def export_dataset(ctx: JobContext, *, dataset_id: str) -> None:
    resources = ctx.resources
    async with resources.sessionmaker() as session:
        dataset = await DatasetRepository(session, ctx.user_id).get(dataset_id)
        if dataset is None:
            raise JobFailed("the dataset no longer exists")
        spec, upload_ids = spec_of(dataset)
        prefix = dataset.object_key
        uploads = await UploadRepository(session, ctx.user_id).get_many(upload_ids)
        total = sum(upload.message_count for upload in uploads.values())
        dataset.status = "building"
        dataset.error = None
        await session.commit()

    loop = asyncio.get_running_loop()
    feed = MessageFeed(messages_for(resources.sessionmaker, ctx.user_id, upload_ids), loop)
    outputs = [StreamOut(loop), StreamOut(loop)]
    writes = [
        out.consumer(
            asyncio.create_task(
                resources.storage.write(
                    prefix + name, out.chunks(), content_type="application/jsonl"
                )
            )
        )
        for name, out in zip(FILES, outputs, strict=True)
    ]

    def report(stats: DatasetStats) -> None:
        asyncio.run_coroutine_threadsafe(
            ctx.reporter.update(
                progress=0.99 * stats.messages / max(total, 1),
                message=f"{stats.messages} messages read, {stats.examples} examples",
                detail={"messages": stats.messages, "examples": stats.examples},
            ),
            loop,
        )

    def build() -> DatasetStats:
        try:
            train, evaluation = (cast(BinaryIO, out) for out in outputs)
            stats = build_dataset(feed.messages(), spec, train, evaluation, progress=report)
        except BaseException as error:
            for out in outputs:
                out.close(BuildFailed(str(error)))
            raise
        for out in outputs:
            out.close()
        return stats

    pump = asyncio.create_task(feed.pump())
    # The builder's thread cannot be cancelled: its task is awaited to the end (wind_down).
    builder = asyncio.create_task(asyncio.to_thread(build))

    async def wind_down(error: str | None) -> None:
        """Stop the feed and, given an error, fail the dataset (which ends the writes); then
        wait for the builder's thread, which both of those wake."""
        try:
            feed.stop()
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
            if error is not None:
                await _fail(ctx, dataset_id, prefix, writes, error)
        finally:
            await asyncio.gather(builder, return_exceptions=True)

    # Everything after the dataset says "building" is guarded, the last update included, so
    # the dataset ends ready or failed (its files removed), never stuck building.
    try:
        stats = await asyncio.shield(builder)
        results: list[WriteResult] = list(await asyncio.gather(*writes))
        info = {
            "weft_train": llamafactory_dataset_info(spec.format, FILES[0]),
            "weft_eval": llamafactory_dataset_info(spec.format, FILES[1]),
        }
        await resources.storage.write_bytes(
            prefix + "dataset_info.json", orjson.dumps(info, option=orjson.OPT_INDENT_2)
        )
        summary: dict[str, Any] = stats.to_dict()
        content = hashlib.sha256(f"{results[0].sha256}\n{results[1].sha256}".encode()).hexdigest()
        async with resources.sessionmaker() as session:
            await session.execute(
                update(Dataset)
                .where(Dataset.id == dataset_id, Dataset.user_id == ctx.user_id)
                .values(status="ready", sha256=content, stats=summary, error=None)
            )
            await session.commit()
    except (DatasetInputError, ValueError) as error:
        await asyncio.shield(wind_down(f"the dataset cannot be built: {error}"))
        raise JobFailed(f"the dataset cannot be built: {error}") from None
    except asyncio.CancelledError:
        stopped = ctx.too_long("the export") if ctx.timed_out() else "the export was stopped"
        await asyncio.shield(wind_down(stopped))
        raise
    except BaseException as error:
        await asyncio.shield(wind_down(f"export failed: {_cause(error, writes)}"))
        raise
    finally:
        await asyncio.shield(wind_down(None))
    await ctx.reporter.update(
        progress=1.0,
        message=f"{stats.train_examples} train and {stats.eval_examples} eval examples",
        detail=summary,
    )


def _cause(error: BaseException, writes: list[asyncio.Task[Any]]) -> BaseException:
    """What made the export fail: when a storage write failed, the builder only saw its stream
    stop (BuildFailed), and the write's own error says more."""
    if isinstance(error, BuildFailed):
        for write in writes:
            if write.done() and not write.cancelled() and write.exception() is not None:
                return write.exception() or error
    return error


async def _fail(
    ctx: JobContext, dataset_id: str, prefix: str, writes: list[asyncio.Task[Any]], error: str
) -> None:
    for write in writes:
        write.cancel()
    await asyncio.gather(*writes, return_exceptions=True)
    # The status first: when storage is down (often why we are here) the row still says so.
    async with ctx.resources.sessionmaker() as session:
        await session.execute(
            update(Dataset)
            .where(
                Dataset.id == dataset_id,
                Dataset.user_id == ctx.user_id,
                Dataset.status != "ready",  # a finished dataset is never taken back
            )
            .values(status="failed", error=error[:2000])
        )
        await session.commit()
    try:
        await ctx.resources.storage.delete_prefix(prefix)
    except StorageError:
        log.warning("could not remove the files under %s", prefix, exc_info=True)
