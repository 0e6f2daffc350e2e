"""Alembic owns the schema: after `upgrade head` the database equals the models, on both engines."""

from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from server.cli import main
from server.db.migrate import schema_diff, upgrade


def _sync(url: str) -> str:
    return url.replace("+aiosqlite", "").replace("+aiomysql", "+pymysql")


def test_sqlite_schema_equals_models(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'weft.db'}"
    upgrade(url)
    engine = create_engine(_sync(url))
    with engine.connect() as connection:
        assert schema_diff(connection) == []
    engine.dispose()


def test_mysql_schema_equals_models(mysql_url: str) -> None:
    engine = create_engine(_sync(mysql_url))
    with engine.connect() as connection:
        assert schema_diff(connection) == []
        charsets = (
            connection.execute(
                text(
                    "SELECT DISTINCT CCSA.character_set_name FROM information_schema.TABLES T "
                    "JOIN information_schema.COLLATION_CHARACTER_SET_APPLICABILITY CCSA "
                    "ON CCSA.collation_name = T.table_collation WHERE T.table_schema = DATABASE() "
                    "AND T.table_name != 'alembic_version'"
                )
            )
            .scalars()
            .all()
        )
        assert charsets == ["utf8mb4"]
        indexes = {i["name"] for i in inspect(connection).get_indexes("messages")}
        assert {"ix_messages_upload_id_timestamp_seq", "ix_messages_upload_id_sender"} <= indexes
    engine.dispose()


def test_downgrade_and_upgrade_again(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'weft.db'}"
    upgrade(url)
    from alembic import command
    from server.db.migrate import alembic_config

    command.downgrade(alembic_config(url), "base")
    upgrade(url)
    engine = create_engine(_sync(url))
    with engine.connect() as connection:
        assert schema_diff(connection) == []
    engine.dispose()


def test_weft_migrate_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WEFT_DATA_DIR", str(tmp_path))
    assert main(["migrate"]) == 0
    assert "database at head" in capsys.readouterr().out
    assert (tmp_path / "weft.db").exists()
