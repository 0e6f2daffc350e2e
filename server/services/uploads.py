"""Uploads: stream a chat export into storage, create its row and parse job; reparse; delete;
senders and "which one is you"."""

from __future__ import annotations

import base64
import binascii
import logging
import posixpath
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import ColumnElement, and_, case, exists, func, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile

from server.db.models import Job, Message, Upload
from server.db.repositories import MessageRepository, UploadRepository
from server.db.types import new_id
from server.resources import Resources
from server.services import jobs
from server.services.errors import Conflict, InvalidInput, NotFound, TooLarge
from server.services.files import delete_files
from server.storage import CHUNK_SIZE, ObjectTooLarge

log = logging.getLogger(__name__)

PARSE_JOB = "parse_upload"


@dataclass(frozen=True, slots=True)
class Sender:
    name: str
    message_count: int
    is_self: bool | None


async def form_file_chunks(file: UploadFile) -> AsyncIterator[bytes]:
    """A multipart file part (spooled by Starlette) as a stream of chunks."""
    while chunk := await file.read(CHUNK_SIZE):
        yield chunk


def upload_key(user_id: str, upload_id: str) -> str:
    return f"users/{user_id}/uploads/{upload_id}/original"


def clean_filename(filename: str | None) -> str:
    name = posixpath.basename((filename or "").replace("\\", "/")).strip()
    name = "".join(ch for ch in name if ch.isprintable())
    return name[:255] or "upload"


def check_timezone(timezone: str | None) -> str:
    if not timezone:
        return "Asia/Shanghai"
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone {timezone!r}", field="timezone") from None
    return timezone


async def create_upload(
    resources: Resources,
    user_id: str,
    *,
    filename: str | None,
    content_type: str | None,
    chunks: AsyncIterable[bytes],
    self_name: str | None = None,
    timezone: str | None = None,
) -> tuple[Upload, Job]:
    """Store the file (streamed, hashed, size-limited), then commit the row and its parse job."""
    timezone = check_timezone(timezone)
    if self_name is not None and not 0 < len(self_name.strip()) <= 255:
        raise InvalidInput("selfName must have 1 to 255 characters", field="selfName")
    await resources.limits.hit("upload", user_id)
    upload_id = new_id()
    key = upload_key(user_id, upload_id)
    limit = resources.settings.max_upload_bytes
    try:
        written = await resources.storage.write(
            key, chunks, content_type=content_type or "application/octet-stream", max_bytes=limit
        )
    except ObjectTooLarge:
        raise TooLarge(
            f"the file is larger than the limit of {limit} bytes", limit=limit, field="file"
        ) from None
    if written.size == 0:
        await resources.storage.delete(key)
        raise InvalidInput("the file is empty", field="file")
    try:
        async with resources.sessionmaker() as session:
            upload = UploadRepository(session, user_id).add(
                Upload(
                    id=upload_id,
                    filename=clean_filename(filename),
                    content_type=(content_type or "")[:127],
                    size=written.size,
                    sha256=written.sha256,
                    object_key=key,
                    status="uploaded",
                    timezone=timezone,
                    self_name=self_name.strip() if self_name else None,
                )
            )
            job = _add_parse_job(session, resources, user_id, upload_id)
            await session.commit()
    except BaseException:
        # No row, no object: never leave a half-stored upload behind.
        await resources.storage.delete(key)
        raise
    await jobs.enqueue(resources, job)
    return upload, job


def _add_parse_job(
    session: AsyncSession, resources: Resources, user_id: str, upload_id: str
) -> Job:
    return jobs.add_job(
        session,
        resources,
        user_id,
        PARSE_JOB,
        subject_id=upload_id,
        arguments={"upload_id": upload_id},
    )


def parse_in_progress(
    user_id: str, upload_id: str, *, other_than: str | None = None
) -> ColumnElement[bool]:
    """Whether a parse job of the upload (other than job `other_than`) is queued or running."""
    return exists().where(
        Job.user_id == user_id,
        Job.subject_id == upload_id,
        Job.kind == PARSE_JOB,
        Job.status.in_(("queued", "running")),
        Job.id != other_than if other_than is not None else true(),
    )


async def reparse(resources: Resources, user_id: str, upload_id: str) -> tuple[Upload, Job]:
    async with resources.sessionmaker() as session:
        upload = await UploadRepository(session, user_id).get(upload_id)
        if upload is None:
            raise NotFound("no such upload", field="id")
        # Claimed in one statement, so that of two reparses at once only one finds no parse
        # job active (two parses of one upload would fight over its messages).
        claimed = await session.execute(
            update(Upload)
            .where(
                Upload.id == upload_id,
                Upload.user_id == user_id,
                ~parse_in_progress(user_id, upload_id),
            )
            .values(status="uploaded", error=None)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount == 0:  # type: ignore[attr-defined]
            raise Conflict("the upload is being parsed already", field="id")
        job = _add_parse_job(session, resources, user_id, upload_id)
        await session.commit()
        upload.status, upload.error = "uploaded", None
    await jobs.enqueue(resources, job)
    return upload, job


async def delete_upload(resources: Resources, user_id: str, upload_id: str) -> None:
    """Remove the upload with its messages and labels (cascade), its jobs' work, and its object."""
    async with resources.sessionmaker() as session:
        upload = await UploadRepository(session, user_id).get(upload_id)
        if upload is None:
            raise NotFound("no such upload", field="id")
        await jobs.cancel_unfinished(resources, session, user_id, upload_id)
        await delete_files(resources, f"users/{user_id}/uploads/{upload_id}/")
        await session.delete(upload)
        await session.commit()


async def senders(session: AsyncSession, user_id: str, upload_id: str) -> list[Sender]:
    if await UploadRepository(session, user_id).get(upload_id) is None:
        raise NotFound("no such upload", field="uploadId")
    rows = await MessageRepository(session, user_id).senders(upload_id)
    return [Sender(name, count, flag) for name, count, flag in rows]


async def set_self(session: AsyncSession, user_id: str, upload_id: str, sender: str) -> Upload:
    """Mark `sender` as the user: their messages get is_self true, everyone else's false."""
    upload = await UploadRepository(session, user_id).get(upload_id)
    if upload is None:
        raise NotFound("no such upload", field="uploadId")
    exists = await session.scalar(
        select(func.count())
        .select_from(Message)
        .where(Message.user_id == user_id, Message.upload_id == upload_id, Message.sender == sender)
    )
    if not exists:
        raise InvalidInput(f"no messages from {sender!r} in this upload", field="sender")
    await session.execute(
        update(Message)
        .where(Message.user_id == user_id, Message.upload_id == upload_id)
        .values(is_self=case((Message.sender == sender, True), else_=False))
    )
    upload.self_name = sender
    await session.commit()
    return upload


@dataclass(frozen=True, slots=True)
class UploadPage:
    rows: list[Upload]
    has_next: bool


def encode_upload_cursor(upload: Upload) -> str:
    raw = f"u:{upload.created_at.isoformat()}|{upload.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_upload_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, rest = raw.partition(":")
        created, _, upload_id = rest.partition("|")
        when = datetime.fromisoformat(created)
        if prefix != "u" or not upload_id or when.tzinfo is None:
            raise ValueError(raw)
        when.astimezone(UTC)  # in range for the column
        return when, upload_id
    except (ValueError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("invalid cursor", field="after") from None


async def list_uploads(
    session: AsyncSession, user_id: str, *, first: int, after: str | None
) -> UploadPage:
    """The user's uploads, newest first."""
    statement = UploadRepository(session, user_id).select()
    if after is not None:
        created, upload_id = _decode_upload_cursor(after)
        statement = statement.where(
            or_(
                Upload.created_at < created,
                and_(Upload.created_at == created, Upload.id > upload_id),
            )
        )
    statement = statement.order_by(Upload.created_at.desc(), Upload.id).limit(first + 1)
    rows = list((await session.scalars(statement)).all())
    return UploadPage(rows=rows[:first], has_next=len(rows) > first)


async def count_uploads(session: AsyncSession, user_id: str) -> int:
    total = await session.scalar(
        select(func.count()).select_from(Upload).where(Upload.user_id == user_id)
    )
    return int(total or 0)
