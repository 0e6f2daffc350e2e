"""Repositories: statements scoped to the acting user. They flush, never commit.

Every repository is built with the acting user's id and every statement it makes filters by it,
so another user's id behaves exactly like a missing one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import (
    ApiToken,
    Base,
    Dataset,
    Job,
    Label,
    Labeler,
    Message,
    Model,
    Upload,
    User,
)

M = TypeVar("M", bound=Base)


class Repository(Generic[M]):
    model: ClassVar[type[Any]]

    def __init__(self, session: AsyncSession, user_id: str) -> None:
        self.session = session
        self.user_id = user_id

    def select(self) -> Select[M]:
        return select(self.model).where(self.model.user_id == self.user_id)

    async def get(self, id: str) -> M | None:
        row: M | None = await self.session.scalar(self.select().where(self.model.id == id))
        return row

    async def get_many(self, ids: Sequence[str]) -> dict[str, M]:
        if not ids:
            return {}
        rows = await self.session.scalars(self.select().where(self.model.id.in_(ids)))
        return {row.id: row for row in rows}  # type: ignore[attr-defined]

    def add(self, row: M) -> M:
        row.user_id = self.user_id  # type: ignore[attr-defined]
        self.session.add(row)
        return row

    async def delete(self, row: M) -> None:
        await self.session.delete(row)
        await self.session.flush()


class UserRepository:
    """Users are the one table not scoped to an acting user: sign-up and login look them up."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, id: str) -> User | None:
        return await self.session.get(User, id)

    async def by_email(self, email: str) -> User | None:
        user: User | None = await self.session.scalar(select(User).where(User.email == email))
        return user

    def add(self, user: User) -> User:
        self.session.add(user)
        return user


class ApiTokenRepository(Repository[ApiToken]):
    model = ApiToken

    async def by_hash(self, token_hash: str) -> ApiToken | None:
        token: ApiToken | None = await self.session.scalar(
            select(ApiToken).where(ApiToken.token_hash == token_hash)
        )
        return token


class UploadRepository(Repository[Upload]):
    model = Upload


class MessageRepository(Repository[Message]):
    model = Message

    async def count_for_upload(self, upload_id: str) -> int:
        count = await self.session.scalar(
            select(func.count())
            .select_from(Message)
            .where(Message.user_id == self.user_id, Message.upload_id == upload_id)
        )
        return int(count or 0)

    async def senders(self, upload_id: str) -> list[tuple[str, int, bool | None]]:
        """(sender, message count, is_self of their messages) for one upload, most active first."""
        rows = await self.session.execute(
            select(Message.sender, func.count(), func.max(Message.is_self))
            .where(Message.user_id == self.user_id, Message.upload_id == upload_id)
            .group_by(Message.sender)
            .order_by(func.count().desc(), Message.sender)
        )
        return [
            (sender, int(count), None if flag is None else bool(flag))
            for sender, count, flag in rows
        ]


class LabelRepository(Repository[Label]):
    model = Label


class LabelerRepository(Repository[Labeler]):
    model = Labeler


class DatasetRepository(Repository[Dataset]):
    model = Dataset


class ModelRepository(Repository[Model]):
    model = Model


class JobRepository(Repository[Job]):
    model = Job
