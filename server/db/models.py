"""The tables. Every row that holds user data carries user_id, and every query filters by it.

Statuses and kinds are short strings (validated in the services) rather than database enums,
so that adding a value never needs a migration on MySQL.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from server.db.types import IdType, Json, LongText, UTCDateTime, new_id, utcnow

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    # WeChat text is full of emoji: 4-byte UTF-8 everywhere on MySQL.
    __table_args__: Any = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}  # noqa: RUF012


def _id() -> Mapped[str]:
    return mapped_column(IdType, primary_key=True, default=new_id)


def _owner() -> Mapped[str]:
    return mapped_column(IdType, ForeignKey("users.id", ondelete="CASCADE"), nullable=False)


def _created() -> Mapped[datetime]:
    return mapped_column(UTCDateTime, nullable=False, default=utcnow)


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = _id()
    email: Mapped[str] = mapped_column(String(254), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    created_at: Mapped[datetime] = _created()


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[str] = _id()
    user_id: Mapped[str] = _owner()
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    # sha256 hex of the secret: the secret itself is shown once and never stored.
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    created_at: Mapped[datetime] = _created()
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index(None, "user_id"), Base.__table_args__)


class Upload(Base):
    __tablename__ = "uploads"

    id: Mapped[str] = _id()
    user_id: Mapped[str] = _owner()
    filename: Mapped[str] = mapped_column(String(255), nullable=False)
    content_type: Mapped[str] = mapped_column(String(127), nullable=False, default="")
    size: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    object_key: Mapped[str] = mapped_column(String(255), nullable=False)
    # uploaded -> parsing -> parsed | failed
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="uploaded")
    error: Mapped[str | None] = mapped_column(LongText)
    format: Mapped[str | None] = mapped_column(String(32))
    timezone: Mapped[str] = mapped_column(String(64), nullable=False, default="Asia/Shanghai")
    self_name: Mapped[str | None] = mapped_column(String(255))
    message_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = _created()
    parsed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index(None, "user_id", "created_at"), Base.__table_args__)


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[str] = _id()
    user_id: Mapped[str] = _owner()
    upload_id: Mapped[str] = mapped_column(
        IdType, ForeignKey("uploads.id", ondelete="CASCADE"), nullable=False
    )
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    # Stable across exports of the same chat: the exporter's server id, else a content hash.
    key: Mapped[str] = mapped_column(String(64), nullable=False)
    sender: Mapped[str] = mapped_column(String(255), nullable=False)
    sender_id: Mapped[str | None] = mapped_column(String(128))
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    # Minutes east of UTC at which the chat was written (exports are local time).
    utc_offset: Mapped[int] = mapped_column(SmallInteger, nullable=False, default=0)
    text: Mapped[str] = mapped_column(LongText, nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    is_self: Mapped[bool | None] = mapped_column(Boolean)
    raw: Mapped[dict[str, Any] | None] = mapped_column(Json)

    __table_args__ = (
        UniqueConstraint("upload_id", "seq"),
        # Dataset builds page through an upload in (timestamp, seq) order: with seq in the
        # index each page is a short range read, not a sort of the whole upload.
        Index(None, "upload_id", "timestamp", "seq"),
        Index(None, "upload_id", "sender"),
        Index(None, "user_id", "key"),
        Base.__table_args__,
    )


class Label(Base):
    """One label on one message. Human labels are never overwritten: a change supersedes the
    current row (superseded_at set) and inserts a new one, so the history stays."""

    __tablename__ = "labels"

    id: Mapped[str] = _id()
    user_id: Mapped[str] = _owner()
    message_id: Mapped[str] = mapped_column(
        IdType, ForeignKey("messages.id", ondelete="CASCADE"), nullable=False
    )
    upload_id: Mapped[str] = mapped_column(
        IdType, ForeignKey("uploads.id", ondelete="CASCADE"), nullable=False
    )
    key: Mapped[str] = mapped_column(String(32), nullable=False)
    # Label values are categories: a string keeps (key, value) indexable on MySQL.
    value: Mapped[str] = mapped_column(String(128), nullable=False)
    # rule | model | human
    source: Mapped[str] = mapped_column(String(8), nullable=False)
    score: Mapped[float] = mapped_column(Float, nullable=False, default=1.0)
    # Which rule (or model) decided it.
    rule: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = _created()
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index(None, "message_id", "key"),
        Index(None, "upload_id", "key", "value"),
        Index(None, "user_id", "key", "value"),
        Base.__table_args__,
    )


class Labeler(Base):
    """A trained label classifier (encoder reference plus heads), stored in object storage."""

    __tablename__ = "labelers"

    id: Mapped[str] = _id()
    user_id: Mapped[str] = _owner()
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    encoder: Mapped[str] = mapped_column(String(500), nullable=False)
    # queued -> training -> ready | failed
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="queued")
    error: Mapped[str | None] = mapped_column(LongText)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(Json)
    object_key: Mapped[str] = mapped_column(String(255), nullable=False)
    created_at: Mapped[datetime] = _created()

    __table_args__ = (Index(None, "user_id", "created_at"), Base.__table_args__)


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[str] = _id()
    user_id: Mapped[str] = _owner()
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    spec: Mapped[dict[str, Any]] = mapped_column(Json, nullable=False)
    # pending -> building -> ready | failed
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    error: Mapped[str | None] = mapped_column(LongText)
    object_key: Mapped[str] = mapped_column(String(255), nullable=False)
    sha256: Mapped[str | None] = mapped_column(String(64))
    stats: Mapped[dict[str, Any] | None] = mapped_column(Json)
    created_at: Mapped[datetime] = _created()

    __table_args__ = (UniqueConstraint("user_id", "name", "version"), Base.__table_args__)


class Model(Base):
    __tablename__ = "models"

    id: Mapped[str] = _id()
    user_id: Mapped[str] = _owner()
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    dataset_id: Mapped[str | None] = mapped_column(
        IdType, ForeignKey("datasets.id", ondelete="SET NULL")
    )
    base_model: Mapped[str] = mapped_column(String(500), nullable=False)
    # lora | full
    method: Mapped[str] = mapped_column(String(8), nullable=False)
    config: Mapped[dict[str, Any]] = mapped_column(Json, nullable=False)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(Json)
    training_curve: Mapped[list[dict[str, Any]] | None] = mapped_column(Json)
    # queued -> training -> ready | failed | cancelled
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="queued")
    error: Mapped[str | None] = mapped_column(LongText)
    object_key: Mapped[str] = mapped_column(String(255), nullable=False)
    artifact_size: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = _created()

    __table_args__ = (Index(None, "user_id", "created_at"), Base.__table_args__)


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = _id()
    user_id: Mapped[str] = _owner()
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    queue: Mapped[str] = mapped_column(String(16), nullable=False)
    # The row the job works on (an upload, dataset, model ...).
    subject_id: Mapped[str | None] = mapped_column(IdType)
    # queued -> running -> succeeded | failed | cancelled
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="queued")
    progress: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    message: Mapped[str | None] = mapped_column(String(500))
    error: Mapped[str | None] = mapped_column(LongText)
    # Job-specific live figures (step, loss ...), and what the job's arguments were.
    detail: Mapped[dict[str, Any] | None] = mapped_column(Json)
    arguments: Mapped[dict[str, Any] | None] = mapped_column(Json)
    # Grows with every progress event, so a subscriber can tell stale events from new ones.
    revision: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = _created()
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    __table_args__ = (
        Index(None, "user_id", "created_at"),
        Index(None, "subject_id"),
        Base.__table_args__,
    )


JOB_TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
