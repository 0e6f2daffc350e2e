"""The engine and session factory. The service or job owns the transaction; repositories flush."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

SessionMaker = async_sessionmaker[AsyncSession]


def normalize_url(url: str) -> str:
    """MySQL URLs always carry charset=utf8mb4: WeChat text is full of 4-byte emoji."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "mysql" and "charset" not in parsed.query:
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    return parsed.render_as_string(hide_password=False)


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    url = normalize_url(url)
    backend = make_url(url).get_backend_name()
    options: dict[str, Any] = {"echo": echo}
    if backend == "mysql":
        # Recycle below MySQL's default wait_timeout (8 h) and MySQL 8's interactive defaults;
        # pre-ping replaces connections the server or a restart closed.
        options.update(pool_pre_ping=True, pool_recycle=1800, pool_size=10, max_overflow=20)
    elif backend == "sqlite":
        options.update(connect_args={"timeout": 30})
    engine = create_async_engine(url, **options)
    if backend == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def create_sessionmaker(engine: AsyncEngine) -> SessionMaker:
    return async_sessionmaker(engine, expire_on_commit=False)
