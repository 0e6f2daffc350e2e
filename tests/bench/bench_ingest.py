"""Ingest into MariaDB: the parse_upload job's path against a bare multi-row INSERT.

    .venv/bin/python tests/bench/bench_ingest.py [--messages 200000] [--mysql URL]

Generates a MemoTrace TXT export, then in one process:
- bare: the same rows, already built, sent with aiomysql's executemany (one multi-row INSERT
  per 2,000 rows) — the floor for getting these rows into the table;
- weft: what parse_upload does — parse the file (tasks.parse_upload.batches, in a thread) and
  insert each 2,000-row batch (server.db.bulk.insert_batch), committing per batch.
Prints rows/s of each and the ratio (target >= 0.5x).

Then reads the ingested upload back as a dataset build does (server.services.datasets.
messages_for: pages of 2,000 in (timestamp, seq) order, with labels) against one bare SELECT of
the same columns, and prints that ratio too.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sqlalchemy import text

from server.db.bulk import datetime_binder, insert_batch
from server.db.migrate import upgrade
from server.db.models import Upload, User
from server.db.session import create_engine, create_sessionmaker
from server.db.types import new_id
from server.services.datasets import messages_for
from tasks.parse_upload import BATCH, MESSAGE_COLUMNS, MESSAGES, batches
from tests.bench.bench_parse import generate_txt


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--mysql", default="mysql+aiomysql://root@127.0.0.1:3306/")
    args = parser.parse_args()

    import pymysql

    database = f"weft_bench_{uuid.uuid4().hex[:8]}"
    admin = pymysql.connect(host="127.0.0.1", user="root")
    admin.cursor().execute(f"CREATE DATABASE {database} CHARACTER SET utf8mb4")
    url = args.mysql.rstrip("/") + "/" + database + "?charset=utf8mb4"
    try:
        await asyncio.to_thread(upgrade, url)
        engine = create_engine(url)
        sessionmaker = create_sessionmaker(engine)
        user_id = new_id()
        uploads = {name: new_id() for name in ("bare", "weft")}
        async with sessionmaker() as session:
            session.add(User(id=user_id, email="bench@x", name="b", password_hash="x"))
            await session.flush()
            for upload_id in uploads.values():
                session.add(Upload(id=upload_id, user_id=user_id, filename="b", object_key="b"))
            await session.commit()

        folder = Path(tempfile.mkdtemp(prefix="weft-ingest-"))
        export = folder / "chat.txt"
        generate_txt(export, args.messages)
        print(f"{args.messages} messages, {export.stat().st_size / 1e6:.0f} MB, MariaDB")

        # Build the bare path's rows ahead of time: it measures the insert alone.
        bind_time = datetime_binder("mysql")
        with export.open("rb") as source:
            plain = [
                row
                for batch in batches(
                    source,
                    user_id=user_id,
                    upload_id=uploads["bare"],
                    tz="Asia/Shanghai",
                    self_name=None,
                    bind_time=bind_time,
                )
                for row in batch
            ]
        placeholders = ", ".join(["%s"] * len(MESSAGE_COLUMNS))
        columns = ", ".join(f"`{column}`" for column in MESSAGE_COLUMNS)
        statement = f"INSERT INTO messages ({columns}) VALUES ({placeholders})"
        started = time.perf_counter()
        async with engine.connect() as connection:
            raw = await connection.get_raw_connection()
            driver = raw.driver_connection
            async with driver.cursor() as cursor:
                for start in range(0, len(plain), BATCH):
                    await cursor.executemany(statement, plain[start : start + BATCH])
                    await driver.commit()
        bare = len(plain) / (time.perf_counter() - started)

        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[list[tuple[Any, ...]] | None] = asyncio.Queue(4)

        def produce() -> None:
            with export.open("rb") as source:
                for batch in batches(
                    source,
                    user_id=user_id,
                    upload_id=uploads["weft"],
                    tz="Asia/Shanghai",
                    self_name=None,
                    bind_time=bind_time,
                ):
                    asyncio.run_coroutine_threadsafe(queue.put(batch), loop).result()
            asyncio.run_coroutine_threadsafe(queue.put(None), loop).result()

        started = time.perf_counter()
        producer = loop.run_in_executor(None, produce)
        count = 0
        while (batch := await queue.get()) is not None:
            await insert_batch(engine, MESSAGES, MESSAGE_COLUMNS, batch)
            count += len(batch)
        await producer
        weft = count / (time.perf_counter() - started)
        async with engine.connect() as connection:
            stored = (await connection.execute(text("SELECT COUNT(*) FROM messages"))).scalar()
        assert stored == 2 * args.messages, stored
        print(f"    bare multi-row INSERT: {bare:9.0f} rows/s")
        print(f"  parse + insert (job):  {weft:9.0f} rows/s")
        print(f"                  ratio: {weft / bare:.2f}x (target >= 0.5x)")

        started = time.perf_counter()
        async with engine.connect() as connection:
            result = await connection.stream(
                text(
                    "SELECT id, seq, sender, timestamp, utc_offset, text, kind, is_self "
                    "FROM messages WHERE upload_id = :upload"
                ),
                {"upload": uploads["weft"]},
            )
            read = sum([len(rows) async for rows in result.partitions(BATCH)])
        bare_read = read / (time.perf_counter() - started)
        started = time.perf_counter()
        fed = 0
        async for page in messages_for(sessionmaker, user_id, [uploads["weft"]]):
            fed += len(page)
        assert fed == read == args.messages, (fed, read)
        feed = fed / (time.perf_counter() - started)
        print(f"        bare SELECT, read: {bare_read:9.0f} rows/s")
        print(f"  dataset feed (pages):  {feed:9.0f} rows/s")
        print(f"                  ratio: {feed / bare_read:.2f}x")
        await engine.dispose()
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {database}")
        admin.close()


if __name__ == "__main__":
    asyncio.run(main())
