"""Repositories scope every statement to the acting user (each test rolls back at its end)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import Message, Upload, User
from server.db.repositories import MessageRepository, UploadRepository, UserRepository
from server.db.types import new_id


async def two_users(session: AsyncSession) -> tuple[str, str]:
    users = UserRepository(session)
    a = users.add(User(email=f"{new_id()}@a.cn", name="甲", password_hash="x"))
    b = users.add(User(email=f"{new_id()}@b.cn", name="乙", password_hash="x"))
    await session.flush()
    return a.id, b.id


async def test_another_users_id_is_a_missing_id(db_session: AsyncSession) -> None:
    a, b = await two_users(db_session)
    upload = UploadRepository(db_session, a).add(Upload(filename="chat.txt", object_key="k"))
    await db_session.flush()
    assert upload.user_id == a
    assert await UploadRepository(db_session, a).get(upload.id) is upload
    assert await UploadRepository(db_session, b).get(upload.id) is None
    assert await UploadRepository(db_session, b).get_many([upload.id]) == {}


async def test_messages_count_and_senders_per_user(db_session: AsyncSession) -> None:
    a, b = await two_users(db_session)
    upload = UploadRepository(db_session, a).add(Upload(filename="chat.txt", object_key="k"))
    await db_session.flush()
    for seq, sender in enumerate(["张三 😀", "我", "张三 😀"]):
        MessageRepository(db_session, a).add(
            Message(
                upload_id=upload.id,
                seq=seq,
                key=f"k{seq}",
                sender=sender,
                timestamp=datetime(2024, 1, 1, tzinfo=UTC),
                text="[微笑] 你好",
                kind="text",
            )
        )
    await db_session.flush()
    assert await MessageRepository(db_session, a).count_for_upload(upload.id) == 3
    assert await MessageRepository(db_session, b).count_for_upload(upload.id) == 0
    senders = await MessageRepository(db_session, a).senders(upload.id)
    assert senders == [("张三 😀", 2, None), ("我", 1, None)]  # 4-byte emoji survive


async def test_the_transaction_is_rolled_back(db_session: AsyncSession) -> None:
    # Whatever the tests above wrote is gone: each ran in its own rolled-back transaction.
    count = await db_session.scalar(
        select(func.count()).select_from(User).where(User.name.in_(["甲", "乙"]))
    )
    assert count == 0
