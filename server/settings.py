"""One settings object, read once from WEFT_* environment variables.

With nothing set, weft runs embedded: a SQLite file and an object folder under ./weft-data,
jobs and events in process. Setting a Redis URL, a MySQL URL and an S3 bucket switches each
part to its production backend independently.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PREFIX = "WEFT_"


class SettingsError(ValueError):
    """A WEFT_* variable holds a value weft cannot use."""


@dataclass(frozen=True, slots=True)
class Settings:
    # Where embedded-mode state lives (SQLite file, object folder, model cache).
    data_dir: Path = Path("weft-data")
    # SQLAlchemy async URL; empty means sqlite+aiosqlite under data_dir.
    database_url: str = ""
    # redis://host:port/db; empty means in-process jobs and events.
    redis_url: str = ""
    # S3 / MinIO; an empty bucket means the local object folder under data_dir.
    s3_bucket: str = ""
    s3_endpoint: str = ""
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_region: str = "us-east-1"
    # Seconds to wait for an S3 answer before retrying (3 attempts, exponential backoff).
    s3_timeout_seconds: float = 30.0
    # Uploads larger than this are refused while they stream in.
    max_upload_bytes: int = 1 << 30
    # HS256 secret for access tokens; empty means one generated and kept in data_dir.
    jwt_secret: str = ""
    jwt_ttl_seconds: int = 24 * 3600
    # "development" shows unexpected errors' text; "production" masks them.
    environment: str = "development"
    graphql_introspection: bool = True
    graphql_max_depth: int = 12
    graphql_max_aliases: int = 30
    graphql_max_tokens: int = 2000
    max_page_size: int = 500
    # Concurrent in-process jobs per queue (embedded mode).
    inprocess_concurrency: int = 2
    # Embedded mode: on shutdown, jobs in flight get this long to finish, then go back to the
    # queue and run again at the next start.
    shutdown_grace_seconds: float = 10.0
    # Requests per minute per client for login and uploads.
    login_rate_per_minute: int = 20
    upload_rate_per_minute: int = 30
    # Workers serve Prometheus metrics on this port (0: off); the API serves them at /metrics.
    metrics_port: int = 0
    log_level: str = "INFO"
    log_json: bool = False
    host: str = "127.0.0.1"
    port: int = 8000
    # Inference worker: how many adapters/bases stay resident, queue bound, request timeout.
    inference_max_adapters: int = 8
    inference_max_bases: int = 1
    inference_queue_limit: int = 32
    inference_timeout_seconds: float = 120.0
    inference_device: str = ""
    # CPU threads for generation (0: torch's default); 1 is best on a small shared CPU.
    inference_threads: int = 0
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def embedded_database(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'weft.db').resolve()}"

    @property
    def uses_redis(self) -> bool:
        return bool(self.redis_url)

    @property
    def uses_s3(self) -> bool:
        return bool(self.s3_bucket)

    @property
    def objects_dir(self) -> Path:
        return self.data_dir / "objects"

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"

    @property
    def production(self) -> bool:
        return self.environment == "production"

    def secret(self) -> str:
        """The JWT secret; embedded mode keeps a generated one in data_dir so tokens survive."""
        if self.jwt_secret:
            return self.jwt_secret
        path = self.data_dir / "secret"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(48)
        path.write_text(value)
        path.chmod(0o600)
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name == "extra":
                continue
            raw = env.get(PREFIX + f.name.upper())
            if raw is None:
                continue
            values[f.name] = _convert(f.name, raw, f.type)
        settings = cls(**values)
        if settings.production and not settings.jwt_secret:
            raise SettingsError("WEFT_JWT_SECRET must be set when WEFT_ENVIRONMENT=production")
        if settings.environment not in {"development", "production"}:
            raise SettingsError("WEFT_ENVIRONMENT must be 'development' or 'production'")
        return settings


def setting_names() -> list[str]:
    """Every WEFT_* variable weft reads (docker-compose and the README are checked against it)."""
    return [PREFIX + f.name.upper() for f in dataclasses.fields(Settings) if f.name != "extra"]


def _convert(name: str, raw: str, annotation: object) -> object:
    kind = str(annotation)
    try:
        if kind == "bool":
            lowered = raw.strip().lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off", ""}:
                return False
            raise ValueError(raw)
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "Path":
            return Path(raw)
    except ValueError:
        raise SettingsError(f"{PREFIX}{name.upper()}={raw!r} is not a valid {kind}") from None
    return raw
