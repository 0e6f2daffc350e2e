"""The messages a dataset is built from: read page by page, each once, in (time, seq) order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete

from server.db.models import Label, Message, Upload, User
from server.db.repositories import UploadRepository, UserRepository
from server.db.types import new_id
from server.resources import Resources
from server.services.datasets import messages_for


async def test_pages_meet_inside_runs_of_equal_timestamps(resources: Resources) -> None:
    start = datetime(2024, 3, 1, 8, tzinfo=UTC)
    # seq is file order; times repeat (one second holds several messages) and go back once.
    seconds = [0, 0, 0, 1, 1, 1, 1, 1, 5, 2, 2, 3, 3, 3, 3, 3, 3, 4, 9, 9, 9, 9]
    async with resources.sessionmaker() as session:
        user = UserRepository(session).add(
            User(email=f"{new_id()}@feed.cn", name="读者", password_hash="x")
        )
        await session.flush()
        upload = UploadRepository(session, user.id).add(
            Upload(filename="chat.txt", object_key="k", status="parsed")
        )
        await session.flush()
        messages = [
            Message(
                user_id=user.id,
                upload_id=upload.id,
                seq=seq,
                key=f"k{seq}",
                sender="张三",
                timestamp=start + timedelta(seconds=second),
                text=f"第{seq}条",
                kind="text",
            )
            for seq, second in enumerate(seconds)
        ]
        session.add_all(messages)
        await session.flush()
        session.add(
            Label(
                user_id=user.id,
                message_id=messages[4].id,
                upload_id=upload.id,
                key="topic",
                value="工作",
                source="human",
            )
        )
        await session.commit()
        user_id, upload_id = user.id, upload.id
    try:
        expected = [m.text for m in sorted(messages, key=lambda m: (m.timestamp, m.seq))]
        for batch in (1, 3, 4, 100):
            pages = [
                page
                async for page in messages_for(resources.sessionmaker, user_id, [upload_id], batch)
            ]
            assert [m.text for page in pages for m in page] == expected
            assert max(len(page) for page in pages) <= batch
            labelled = [m for page in pages for m in page if m.labels]
            assert [(m.text, m.labels) for m in labelled] == [("第4条", {"topic": ["工作"]})]
    finally:
        async with resources.sessionmaker() as session:
            await session.execute(delete(User).where(User.id == user_id))
            await session.commit()
