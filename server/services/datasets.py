"""Datasets: versioned fine-tuning sets built from uploads by the export_dataset job.

A dataset row stores the spec it was built with (the ml.datasets spec plus its uploads), so
the same spec on the same messages gives the same bytes. Versions are immutable: creating a
dataset under an existing name adds version n+1.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, cast

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ml.datasets import (
    DatasetMessage,
    DatasetSpec,
    MessageKind,
    RenderedExample,
    SpecError,
    preview,
)
from server.db.models import Dataset, Job, Label, Message, User
from server.db.repositories import DatasetRepository, UploadRepository
from server.db.session import SessionMaker
from server.db.types import new_id
from server.resources import Resources
from server.services import jobs
from server.services.errors import Conflict, InvalidInput, NotFound
from server.services.files import delete_files
from server.services.labels import effective
from server.services.messages import zone_of

EXPORT_JOB = "export_dataset"
BATCH = 2000
MAX_UPLOADS = 100
CREATE_ATTEMPTS = 10


def dataset_prefix(user_id: str, dataset_id: str) -> str:
    return f"users/{user_id}/datasets/{dataset_id}/"


def spec_of(row: Dataset) -> tuple[DatasetSpec, list[str]]:
    stored = dict(row.spec)
    uploads = list(stored.pop("uploads"))
    return DatasetSpec.from_dict(stored), uploads


def check_spec(spec: dict[str, Any]) -> DatasetSpec:
    try:
        return DatasetSpec.from_dict(spec)
    except SpecError as error:
        raise InvalidInput(f"{error.field}: {error}", field=error.field) from None


async def create_dataset(
    resources: Resources,
    user_id: str,
    *,
    name: str,
    upload_ids: Sequence[str],
    spec: dict[str, Any],
) -> tuple[Dataset, Job]:
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise InvalidInput("the name has 1 to 100 characters", field="name")
    if not 1 <= len(upload_ids) <= MAX_UPLOADS:
        raise InvalidInput(f"choose 1 to {MAX_UPLOADS} uploads", field="uploadIds")
    parsed = check_spec(spec)
    upload_ids = list(dict.fromkeys(upload_ids))
    stored = {**parsed.to_dict(), "uploads": upload_ids}
    for _ in range(CREATE_ATTEMPTS):
        async with resources.sessionmaker() as session:
            # Creations by one user queue up on the user's row (MySQL; SQLite writes one at a
            # time anyway), so that each reads the version number the previous one took.
            await session.execute(select(User.id).where(User.id == user_id).with_for_update())
            uploads = await UploadRepository(session, user_id).get_many(upload_ids)
            for upload_id in upload_ids:
                upload = uploads.get(upload_id)
                if upload is None:
                    raise NotFound(f"no such upload {upload_id!r}", field="uploadIds")
                if upload.status != "parsed":
                    raise InvalidInput(
                        f"upload {upload.filename!r} is not parsed", field="uploadIds"
                    )
            repository = DatasetRepository(session, user_id)
            latest = await session.scalar(
                select(func.max(Dataset.version)).where(
                    Dataset.user_id == user_id, Dataset.name == name
                )
            )
            dataset_id = new_id()
            dataset = repository.add(
                Dataset(
                    id=dataset_id,
                    name=name,
                    version=int(latest or 0) + 1,
                    spec=stored,
                    status="pending",
                    object_key=dataset_prefix(user_id, dataset_id),
                )
            )
            job = jobs.add_job(
                session,
                resources,
                user_id,
                EXPORT_JOB,
                subject_id=dataset_id,
                arguments={"dataset_id": dataset_id},
            )
            try:
                await session.commit()
            except IntegrityError:
                # Another request took this version number: take the next one.
                await session.rollback()
                continue
        await jobs.enqueue(resources, job)
        return dataset, job
    raise Conflict(
        f"too many versions of {name!r} are being created at once: try again", field="name"
    )


async def versions(session: AsyncSession, user_id: str, name: str) -> list[Dataset]:
    statement = (
        DatasetRepository(session, user_id)
        .select()
        .where(Dataset.name == name)
        .order_by(Dataset.version.desc())
    )
    return list((await session.scalars(statement)).all())


async def delete_dataset(resources: Resources, user_id: str, dataset_id: str) -> None:
    async with resources.sessionmaker() as session:
        dataset = await DatasetRepository(session, user_id).get(dataset_id)
        if dataset is None:
            raise NotFound("no such dataset", field="id")
        await jobs.cancel_unfinished(resources, session, user_id, dataset_id)
        await delete_files(resources, dataset_prefix(user_id, dataset_id))
        await session.delete(dataset)
        await session.commit()


async def messages_for(
    sessionmaker: SessionMaker, user_id: str, upload_ids: Sequence[str], batch: int = BATCH
) -> AsyncIterator[list[DatasetMessage]]:
    """The uploads' messages in dataset order (upload, time, seq), in batches, with their
    effective labels."""
    for upload_id in upload_ids:
        last: tuple[Any, int] | None = None
        while True:
            async with sessionmaker() as session:
                statement = select(
                    Message.id,
                    Message.seq,
                    Message.sender,
                    Message.timestamp,
                    Message.utc_offset,
                    Message.text,
                    Message.kind,
                    Message.is_self,
                ).where(
                    Message.user_id == user_id,
                    Message.upload_id == upload_id,
                )
                if last is not None:
                    # (timestamp, seq) > last, spelled so that both engines read a range of
                    # the (upload_id, timestamp, seq) index and stop after `batch` rows; a row
                    # comparison made MariaDB read the whole upload for every page.
                    timestamp, seq = last
                    statement = statement.where(
                        Message.timestamp >= timestamp,
                        or_(Message.timestamp > timestamp, Message.seq > seq),
                    )
                statement = statement.order_by(Message.timestamp, Message.seq).limit(batch)
                rows = (await session.execute(statement)).all()
                if not rows:
                    break
                labels: defaultdict[str, defaultdict[str, list[str]]] = defaultdict(
                    lambda: defaultdict(list)
                )
                label_rows = await session.execute(
                    select(Label.message_id, Label.key, Label.value).where(
                        Label.user_id == user_id,
                        Label.message_id.in_([row[0] for row in rows]),
                        effective(),
                    )
                )
                for message_id, key, value in label_rows:
                    labels[message_id][key].append(value)
            last = (rows[-1].timestamp, rows[-1].seq)
            # Plain tuples and one zone object per offset: this loop runs for every message.
            yield [
                DatasetMessage(
                    id=message_id,
                    upload_id=upload_id,
                    sender=sender,
                    timestamp=timestamp.astimezone(zone_of(utc_offset)),
                    text=text,
                    kind=cast(MessageKind, kind),  # the builder refuses unknown kinds
                    is_self=is_self,
                    labels=(
                        {key: sorted(values) for key, values in labels[message_id].items()}
                        if message_id in labels
                        else {}
                    ),
                )
                for message_id, _, sender, timestamp, utc_offset, text, kind, is_self in rows
            ]


class FeedStopped(Exception):
    """The feed was stopped (or its pump ended) before the messages ran out."""


class MessageFeed:
    """Hands batches read on the event loop to a consumer in a worker thread, a few at a time.

    However the feed ends (its source runs out or fails, `stop()`, the pump cancelled), the
    consumer's thread is woken and ends: a thread blocked for ever would hang the shutdown."""

    # How often a waiting consumer looks whether the feed was stopped.
    POLL_SECONDS = 0.5

    def __init__(
        self, source: AsyncIterator[list[DatasetMessage]], loop: asyncio.AbstractEventLoop
    ) -> None:
        self._source = source
        self._loop = loop
        self._queue: asyncio.Queue[list[DatasetMessage] | BaseException | None] = asyncio.Queue(4)
        self._stopped = threading.Event()

    async def pump(self) -> None:
        """Run on the loop: read the source into the queue until it ends or the consumer stops."""
        try:
            async for batch in self._source:
                if self._stopped.is_set():
                    return
                await self._queue.put(batch)
            await self._queue.put(None)
        except Exception as error:
            await self._queue.put(error)
        except BaseException:
            self.stop()  # cancelled: the consumer must not wait for a batch that never comes
            raise

    def messages(self) -> Iterator[DatasetMessage]:
        """Run in the thread: the messages, in order; FeedStopped if the feed stops first."""
        while True:
            item = self._next()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield from item

    def _next(self) -> list[DatasetMessage] | BaseException | None:
        if self._stopped.is_set():
            raise FeedStopped("the message feed was stopped")
        future = asyncio.run_coroutine_threadsafe(self._queue.get(), self._loop)
        while True:
            try:
                return future.result(timeout=self.POLL_SECONDS)
            except concurrent.futures.TimeoutError:
                if self._stopped.is_set():
                    with contextlib.suppress(RuntimeError):  # the loop is already closed
                        future.cancel()
                    raise FeedStopped("the message feed was stopped") from None

    def stop(self) -> None:
        """On the loop: end the feed and wake a consumer waiting for the next batch."""
        self._stopped.set()
        with contextlib.suppress(asyncio.QueueEmpty):
            while True:
                self._queue.get_nowait()
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(FeedStopped("the message feed was stopped"))


async def preview_dataset(
    resources: Resources, user_id: str, dataset_id: str, first: int
) -> list[RenderedExample]:
    async with resources.sessionmaker() as session:
        dataset = await DatasetRepository(session, user_id).get(dataset_id)
    if dataset is None:
        raise NotFound("no such dataset", field="id")
    spec, upload_ids = spec_of(dataset)
    feed = MessageFeed(
        messages_for(resources.sessionmaker, user_id, upload_ids), asyncio.get_running_loop()
    )
    pump = asyncio.create_task(feed.pump())
    try:
        return await asyncio.to_thread(preview, feed.messages(), spec, first)
    finally:
        feed.stop()
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump
