"""Messages and their labels: the `messages` connection."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.scalars import JSON

from graph.context import Info
from graph.errors import query_error
from graph.labels import Label
from graph.pagination import Connection, Edge, PageInfo, page_size
from server.services import labels as label_service
from server.services import messages as message_service
from server.services.errors import InvalidInput
from server.services.messages import LabelCondition, MessageFilter


@strawberry.enum
class MessageKind(Enum):
    TEXT = "text"
    IMAGE = "image"
    VOICE = "voice"
    VIDEO = "video"
    FILE = "file"
    LINK = "link"
    STICKER = "sticker"
    LOCATION = "location"
    CALL = "call"
    TRANSFER = "transfer"
    RED_PACKET = "red_packet"
    SYSTEM = "system"
    RECALL = "recall"
    OTHER = "other"


@strawberry.type
class Message:
    id: strawberry.ID
    upload_id: strawberry.ID
    seq: int = strawberry.field(description="Position in the upload, from 0.")
    key: str = strawberry.field(
        description="Stable across exports of the same chat: the exporter's id or a content hash."
    )
    sender: str
    sender_id: str | None
    timestamp: datetime = strawberry.field(description="When it was sent, in the chat's offset.")
    text: str
    kind: MessageKind
    is_self: bool | None = strawberry.field(
        description="Whether you sent it; null until the export or setSelf says."
    )
    raw: JSON | None = strawberry.field(
        description="What the export says beyond the text: media, links, quotes, type codes."
    )

    @strawberry.field(
        description="Current labels from rules, the model and people; `effective` marks the "
        "ones that count (a human label overrides the others on its key)."
    )
    async def labels(self, info: Info) -> list[Label]:
        rows = await info.context.loaders.labels.load(self.id)
        return [Label.from_row(row) for row in rows]

    @strawberry.field(description="Every label this message ever had, superseded ones included.")
    async def label_history(self, info: Info) -> list[Label]:
        user_id = info.context.user_id
        async with info.context.resources.sessionmaker() as session:
            rows = await label_service.history(session, user_id, self.id)
        return [Label.from_model(row) for row in rows]

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Message:
        return cls(
            id=strawberry.ID(row["id"]),
            upload_id=strawberry.ID(row["upload_id"]),
            seq=row["seq"],
            key=row["key"],
            sender=row["sender"],
            sender_id=row["sender_id"],
            timestamp=message_service.local_time(row),
            text=row["text"],
            kind=MessageKind(row["kind"]),
            is_self=row["is_self"],
            raw=row["raw"],
        )


@strawberry.input(description="Messages that carry (or, with negate, lack) this label.")
class LabelFilter:
    key: str
    value: str
    negate: bool = False


MessageConnection = Connection[Message]


@strawberry.type
class MessageQueries:
    @strawberry.field(description="One of your messages, or null.")
    async def message(self, info: Info, id: strawberry.ID) -> Message | None:
        user_id = info.context.user_id
        async with info.context.resources.sessionmaker() as session:
            row = await message_service.get(session, user_id, id)
        return Message.from_row(row) if row is not None else None

    @strawberry.field(description="One upload's messages in chat order, filtered.")
    async def messages(
        self,
        info: Info,
        upload_id: strawberry.ID,
        sender: str | None = None,
        kind: MessageKind | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        search: str | None = None,
        label: list[LabelFilter] | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> MessageConnection:
        user_id = info.context.user_id
        size = page_size(info, first, default=100)
        where = MessageFilter(
            sender=sender,
            kind=kind.value if kind is not None else None,
            since=_aware(since, "since"),
            until=_aware(until, "until"),
            search=search or None,
            labels=tuple(LabelCondition(c.key, c.value, c.negate) for c in label or ()),
        )
        sessionmaker = info.context.resources.sessionmaker
        # Every statement filters by the caller, so another user's upload reads as empty.
        async with sessionmaker() as session:
            try:
                result = await message_service.page(
                    session, user_id, upload_id, where, first=size, after=after
                )
            except InvalidInput as error:
                raise query_error(error) from None

        async def total() -> int:
            async with sessionmaker() as session:
                return await message_service.count(session, user_id, upload_id, where)

        edges = [
            Edge(cursor=message_service.encode_cursor(row["seq"]), node=Message.from_row(row))
            for row in result.rows
        ]
        return MessageConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=result.has_next,
                has_previous_page=result.has_previous,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
            _count=total,
        )


def _aware(value: datetime | None, field: str) -> datetime | None:
    try:
        return message_service.check_time(value, field)
    except InvalidInput as error:
        raise query_error(error) from None
