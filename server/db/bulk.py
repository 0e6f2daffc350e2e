"""Bulk inserts on the hot path (hundreds of thousands of parsed messages or labels).

SQLAlchemy's ORM bulk insert spends most of its time per row in parameter processing; here
rows arrive as tuples already in the driver's form (naive UTC datetimes, JSON as text) and go
to the driver's executemany in one statement, which aiomysql sends as multi-row INSERTs.
tests/bench/bench_ingest.py measures it against a bare multi-row INSERT.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


def datetime_binder(dialect: str) -> Callable[[datetime], Any]:
    """How an aware datetime is sent to this database (as UTCDateTime stores it)."""
    if dialect == "sqlite":
        # The text form SQLAlchemy's SQLite DateTime writes, so comparisons stay consistent.
        return lambda value: value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return lambda value: value.astimezone(UTC).replace(tzinfo=None)


def json_text(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


async def insert_batch(
    engine: AsyncEngine, table: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Insert and commit one batch as a unit that a cancellation cannot cut in half.

    A job cancelled mid-transaction would leave its connection holding locks (on SQLite, the
    whole database) while the job's clean-up tries to write; shielded, the batch commits and
    the cancellation lands between batches.
    """

    async def transaction() -> None:
        async with engine.begin() as connection:
            await insert_many(connection, table, columns, rows)

    await asyncio.shield(transaction())


async def insert_many(
    connection: AsyncConnection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
) -> None:
    if not rows:
        return
    dialect = connection.dialect
    quote = dialect.identifier_preparer.quote
    marker = "?" if dialect.paramstyle == "qmark" else "%s"
    statement = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
        f"VALUES ({', '.join([marker] * len(columns))})"
    )
    await connection.exec_driver_sql(statement, list(rows))
