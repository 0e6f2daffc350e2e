from pathlib import Path

import pytest

from server.settings import Settings, SettingsError, setting_names


def test_defaults_are_the_embedded_mode() -> None:
    settings = Settings.from_env({})
    assert settings.data_dir == Path("weft-data")
    assert settings.resolved_database_url.startswith("sqlite+aiosqlite:///")
    assert settings.resolved_database_url.endswith("weft-data/weft.db")
    assert not settings.uses_redis
    assert not settings.uses_s3


def test_values_are_read_and_converted() -> None:
    settings = Settings.from_env(
        {
            "WEFT_DATABASE_URL": "mysql+aiomysql://weft:pw@db/weft",
            "WEFT_REDIS_URL": "redis://redis:6379/0",
            "WEFT_S3_BUCKET": "weft",
            "WEFT_MAX_UPLOAD_BYTES": "1024",
            "WEFT_GRAPHQL_INTROSPECTION": "false",
            "WEFT_DATA_DIR": "/srv/weft",
            "UNRELATED": "x",
        }
    )
    assert settings.uses_redis and settings.uses_s3 and not settings.embedded_database
    assert settings.max_upload_bytes == 1024
    assert settings.graphql_introspection is False
    assert settings.data_dir == Path("/srv/weft")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WEFT_MAX_UPLOAD_BYTES", "lots"),
        ("WEFT_LOG_JSON", "maybe"),
        ("WEFT_ENVIRONMENT", "staging"),
    ],
)
def test_bad_values_are_named(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name.removeprefix("WEFT_") if "ENV" in name else name):
        Settings.from_env({name: value})


def test_production_needs_a_secret() -> None:
    with pytest.raises(SettingsError, match="WEFT_JWT_SECRET"):
        Settings.from_env({"WEFT_ENVIRONMENT": "production"})


def test_embedded_secret_is_generated_once(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = settings.secret()
    assert len(first) > 40
    assert Settings(data_dir=tmp_path).secret() == first


def test_every_setting_has_a_variable() -> None:
    names = setting_names()
    assert "WEFT_DATABASE_URL" in names and "WEFT_S3_ENDPOINT" in names
    assert all(name.startswith("WEFT_") and name.isupper() for name in names)
