"""parse_upload: stream an upload from storage through the parser into the messages table.

The object is spooled to a local file (constant memory; the parser needs to seek for format
detection), parsed in a thread, and inserted in multi-row batches. A retried or repeated parse
first removes what an earlier try wrote, so messages are never duplicated.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, cast

from sqlalchemy import ColumnElement, Table, delete, update

from ml.parsing import ParsedMessage, ParseError, detect, parse
from server.db.bulk import datetime_binder, insert_batch, json_text
from server.db.models import Message, Upload
from server.db.repositories import UploadRepository
from server.db.types import new_id, utcnow
from server.services.uploads import parse_in_progress
from tasks.runner import JobContext, JobFailed, job

BATCH = 2000
MESSAGES = cast(Table, Message.__table__)
# Spooling is the first tenth of the job's progress, parsing the rest.
SPOOL_SHARE = 0.1


MESSAGE_COLUMNS = (
    "id",
    "user_id",
    "upload_id",
    "seq",
    "key",
    "sender",
    "sender_id",
    "timestamp",
    "utc_offset",
    "text",
    "kind",
    "is_self",
    "raw",
)


def message_row(
    message: ParsedMessage,
    *,
    user_id: str,
    upload_id: str,
    seq: int,
    bind_time: Callable[[datetime], Any],
) -> tuple[Any, ...]:
    """One messages row in MESSAGE_COLUMNS order, in the driver's form."""
    key = (
        message.key if len(message.key) <= 64 else hashlib.sha256(message.key.encode()).hexdigest()
    )
    offset = message.timestamp.utcoffset()
    return (
        new_id(),
        user_id,
        upload_id,
        seq,
        key,
        message.sender[:255],
        message.sender_id[:128] if message.sender_id else None,
        bind_time(message.timestamp),
        int(offset.total_seconds() // 60) if offset is not None else 0,
        message.text,
        message.kind,
        message.is_self,
        json_text(message.raw or None),
    )


def batches(
    source: BinaryIO,
    *,
    user_id: str,
    upload_id: str,
    tz: str,
    self_name: str | None,
    bind_time: Callable[[datetime], Any],
) -> Iterator[list[tuple[Any, ...]]]:
    batch: list[tuple[Any, ...]] = []
    for seq, message in enumerate(parse(source, tz=tz, self_name=self_name)):
        row = message_row(
            message, user_id=user_id, upload_id=upload_id, seq=seq, bind_time=bind_time
        )
        batch.append(row)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


async def _given_up(ctx: JobContext, error: str, *, upload_id: str) -> None:
    await _failed(ctx, upload_id, error, keep_parsed=True)


@job("parse_upload", queue="parse", timeout=6 * 3600, max_tries=3, give_up=_given_up)
async def parse_upload(ctx: JobContext, *, upload_id: str) -> None:
    resources = ctx.resources
    async with resources.sessionmaker() as session:
        upload = await UploadRepository(session, ctx.user_id).get(upload_id)
        if upload is None:
            raise JobFailed("the upload no longer exists")
        upload.status = "parsing"
        upload.error = None
        upload.message_count = 0
        key, size, tz, self_name = upload.object_key, upload.size, upload.timezone, upload.self_name
        await session.execute(delete(Message).where(Message.upload_id == upload_id))
        await session.commit()

    spool_dir = resources.settings.cache_dir / "spool"
    # Everything after the upload says "parsing" is guarded, the last update included: however
    # the job ends, the upload ends parsed, failed, or back to uploaded, never half-parsed.
    try:
        spool_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=spool_dir, suffix=".upload") as spooled:
            await _spool(ctx, key, Path(spooled.name), size)
            count = await _ingest(
                ctx, spooled.name, upload_id=upload_id, size=size, tz=tz, self_name=self_name
            )
        async with resources.sessionmaker() as session:
            await session.execute(
                update(Upload)
                .where(Upload.id == upload_id, Upload.user_id == ctx.user_id)
                .values(status="parsed", message_count=count, parsed_at=utcnow(), error=None)
            )
            await session.commit()
    except ParseError as error:
        await _failed(ctx, upload_id, str(error))
        raise JobFailed(str(error)) from None
    except asyncio.CancelledError:
        await asyncio.shield(_interrupted(ctx, upload_id))
        raise
    except Exception as error:
        await asyncio.shield(_failed(ctx, upload_id, f"parsing failed: {error}"))
        raise
    await ctx.reporter.update(progress=1.0, message=f"{count} messages", detail={"messages": count})


async def _spool(ctx: JobContext, key: str, path: Path, size: int) -> None:
    done = 0
    with path.open("wb") as out:
        async for chunk in ctx.resources.storage.read(key):
            await asyncio.to_thread(out.write, chunk)
            done += len(chunk)
            await ctx.reporter.update(progress=SPOOL_SHARE * done / max(size, 1))


async def _ingest(
    ctx: JobContext, path: str, *, upload_id: str, size: int, tz: str, self_name: str | None
) -> int:
    """Parse in a thread, insert on the loop; the bounded queue keeps memory flat."""
    loop = asyncio.get_running_loop()
    pending: asyncio.Queue[list[tuple[Any, ...]] | BaseException | None] = asyncio.Queue(maxsize=4)
    bind_time = datetime_binder(ctx.resources.engine.dialect.name)
    stop = False
    detected: str | None = None

    with open(path, "rb") as raw:

        def produce() -> None:
            nonlocal detected
            try:
                detected = detect(raw)
                raw.seek(0)
                for batch in batches(
                    raw,
                    user_id=ctx.user_id,
                    upload_id=upload_id,
                    tz=tz,
                    self_name=self_name,
                    bind_time=bind_time,
                ):
                    if stop:
                        return
                    asyncio.run_coroutine_threadsafe(pending.put(batch), loop).result()
                asyncio.run_coroutine_threadsafe(pending.put(None), loop).result()
            except BaseException as error:  # handed to the loop, raised there
                with contextlib.suppress(RuntimeError):
                    asyncio.run_coroutine_threadsafe(pending.put(error), loop).result()

        producer = loop.run_in_executor(None, produce)
        count = 0
        try:
            while True:
                item = await pending.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                if count == 0 and detected is not None:
                    await _set_format(ctx, upload_id, detected)
                await insert_batch(ctx.resources.engine, MESSAGES, MESSAGE_COLUMNS, item)
                count += len(item)
                # How far the parser has read the spooled file (its buffered reader's position).
                fraction = SPOOL_SHARE + (1 - SPOOL_SHARE) * raw.tell() / max(size, 1)
                await ctx.reporter.update(
                    progress=min(fraction, 0.99),
                    message=f"{count} messages",
                    detail={"messages": count},
                )
        finally:
            stop = True
            # Unblock a producer waiting on a full queue, then let it finish.
            while not producer.done():
                with contextlib.suppress(asyncio.QueueEmpty):
                    pending.get_nowait()
                await asyncio.sleep(0.01)
    return count


async def _set_format(ctx: JobContext, upload_id: str, name: str) -> None:
    async with ctx.resources.sessionmaker() as session:
        await session.execute(
            update(Upload)
            .where(Upload.id == upload_id, Upload.user_id == ctx.user_id)
            .values(format=name[:32])
        )
        await session.commit()
    await ctx.reporter.update(message=f"reading {name}")


def _another_parse(ctx: JobContext, upload_id: str) -> ColumnElement[bool]:
    """Whether a later parse of the upload (a reparse after a cancel) owns it now: then this
    job's clean-up must not touch its messages or its status."""
    return parse_in_progress(ctx.user_id, upload_id, other_than=ctx.job_id)


async def _failed(
    ctx: JobContext, upload_id: str, error: str, *, keep_parsed: bool = False
) -> None:
    """Fail the upload and remove its messages; `keep_parsed`: unless it was parsed (a job
    given up after its body finished, whose last write was lost)."""
    finished = [Upload.status != "parsed"] if keep_parsed else []
    async with ctx.resources.sessionmaker() as session:
        changed = await session.execute(
            update(Upload)
            .where(
                Upload.id == upload_id,
                Upload.user_id == ctx.user_id,
                ~_another_parse(ctx, upload_id),
                *finished,
            )
            .values(status="failed", error=error[:2000], message_count=0)
        )
        if changed.rowcount:  # type: ignore[attr-defined]
            await session.execute(delete(Message).where(Message.upload_id == upload_id))
        await session.commit()


async def _interrupted(ctx: JobContext, upload_id: str) -> None:
    """Stopped half-way: remove what this try wrote. A user's cancel or a stopping worker
    leaves the upload as uploaded (a retry or a reparse starts over); the time limit fails it."""
    if ctx.timed_out():
        values: dict[str, Any] = {"status": "failed", "error": ctx.too_long("parsing")}
    else:
        values = {"status": "uploaded", "error": None}
    async with ctx.resources.sessionmaker() as session:
        changed = await session.execute(
            update(Upload)
            .where(
                Upload.id == upload_id,
                Upload.user_id == ctx.user_id,
                Upload.status == "parsing",
                ~_another_parse(ctx, upload_id),
            )
            .values(message_count=0, **values)
        )
        # Only while it was still parsing: a parse that finished keeps its messages.
        if changed.rowcount:  # type: ignore[attr-defined]
            await session.execute(delete(Message).where(Message.upload_id == upload_id))
        await session.commit()
