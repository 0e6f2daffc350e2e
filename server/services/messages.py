"""Reading messages: filtered, cursor-paginated pages and their counts.

Rows come back as plain dicts (`result.mappings()`): handing SQLAlchemy Row objects to the
GraphQL executor costs microseconds per row in its awaitable checks.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import Any

from sqlalchemy import Select, and_, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import Label, Message
from server.services.errors import InvalidInput
from server.services.labels import effective

MESSAGE_COLUMNS = (
    Message.id,
    Message.upload_id,
    Message.seq,
    Message.key,
    Message.sender,
    Message.sender_id,
    Message.timestamp,
    Message.utc_offset,
    Message.text,
    Message.kind,
    Message.is_self,
    Message.raw,
)


@dataclass(frozen=True, slots=True)
class LabelCondition:
    key: str
    value: str
    negate: bool = False


@dataclass(frozen=True, slots=True)
class MessageFilter:
    sender: str | None = None
    kind: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    search: str | None = None
    labels: tuple[LabelCondition, ...] = ()


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[dict[str, Any]]
    has_next: bool
    has_previous: bool


def check_time(value: datetime | None, field: str) -> datetime | None:
    """A time bound as given, if it has an offset and falls in years 1 to 9999 in UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise InvalidInput(
            f"`{field}` needs a time zone offset, e.g. 2024-01-01T00:00:00+08:00", field=field
        )
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise InvalidInput(f"`{field}` is out of range", field=field) from None
    return value


@lru_cache(maxsize=64)
def zone_of(utc_offset: int) -> tzinfo:
    """The fixed zone of a message's utc_offset (minutes east of UTC)."""
    return timezone(timedelta(minutes=utc_offset)) if utc_offset else UTC


def local_time(row: dict[str, Any]) -> datetime:
    """The message's time in the offset the chat was written in."""
    return row["timestamp"].astimezone(zone_of(row["utc_offset"]))  # type: ignore[no-any-return]


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"m:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, value = raw.partition(":")
        seq = int(value)
        if prefix != "m" or not 0 <= seq < 2**31:  # seq is a 32-bit column
            raise ValueError(raw)
        return seq
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("invalid cursor", field="after") from None


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def filtered(user_id: str, upload_id: str, where: MessageFilter) -> list[Any]:
    """The WHERE clauses for one user's messages of one upload."""
    clauses: list[Any] = [Message.user_id == user_id, Message.upload_id == upload_id]
    if where.sender is not None:
        clauses.append(Message.sender == where.sender)
    if where.kind is not None:
        clauses.append(Message.kind == where.kind)
    if where.since is not None:
        clauses.append(Message.timestamp >= where.since)
    if where.until is not None:
        clauses.append(Message.timestamp < where.until)
    if where.search:
        clauses.append(Message.text.like(f"%{_escape_like(where.search)}%", escape="\\"))
    for condition in where.labels:
        labelled = exists().where(
            Label.message_id == Message.id,
            Label.key == condition.key,
            Label.value == condition.value,
            effective(),
        )
        clauses.append(~labelled if condition.negate else labelled)
    return clauses


async def get(session: AsyncSession, user_id: str, message_id: str) -> dict[str, Any] | None:
    statement = select(*MESSAGE_COLUMNS).where(Message.user_id == user_id, Message.id == message_id)
    row = (await session.execute(statement)).mappings().first()
    return dict(row) if row is not None else None


async def page(
    session: AsyncSession,
    user_id: str,
    upload_id: str,
    where: MessageFilter,
    *,
    first: int,
    after: str | None,
) -> Page:
    statement: Select[Any] = select(*MESSAGE_COLUMNS).where(*filtered(user_id, upload_id, where))
    if after is not None:
        statement = statement.where(Message.seq > decode_cursor(after))
    statement = statement.order_by(Message.seq).limit(first + 1)
    rows = [dict(row) for row in (await session.execute(statement)).mappings()]
    return Page(rows=rows[:first], has_next=len(rows) > first, has_previous=after is not None)


async def count(session: AsyncSession, user_id: str, upload_id: str, where: MessageFilter) -> int:
    total = await session.scalar(
        select(func.count()).select_from(Message).where(and_(*filtered(user_id, upload_id, where)))
    )
    return int(total or 0)
