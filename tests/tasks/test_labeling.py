"""auto_label_messages run by the runner as a worker runs it: a re-run that stops midway."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from sqlalchemy import select

import tasks.labeling
from ml.labeling import RuleSet
from server.db.models import Label, Message
from server.resources import Resources
from server.services import jobs as job_service
from tests.support.jobs import job_row, run_job, unqueued_job
from tests.support.live import Client
from tests.tasks.test_jobs import stored_upload

CHAT = "\n".join(
    f"2024-03-01 1{n}:00:00 {sender}\n{text}\n"
    for n, (sender, text) in enumerate(
        [
            ("张三", "老板拖欠工资三个月了，太过分了"),
            ("我", "谢谢你的提醒[微笑]"),
            ("张三", "工资什么时候发？"),
            ("我", "明天下午三点开会"),
            ("张三", "我们去劳动仲裁吧，讨薪"),
            ("我", "好的👍"),
            ("张三", "不是工资的问题"),
            ("我", "请帮我把报告发过来"),
            ("张三", "不满意，再改改"),
        ]
    )
).encode()
# Every message gets one label, and a label the default rules never give.
RERUN_RULES = """\
version: 1
rules:
  - {id: rerun, key: topic, value: 重跑, patterns: ['.']}
"""

LabelRow = tuple[str, str, str, float, str | None]
LABEL = "auto_label_messages"


async def label_job(resources: Resources, user_id: str, upload_id: str, rules: str | None) -> str:
    return await unqueued_job(
        resources,
        user_id,
        LABEL,
        upload_id,
        upload_id=upload_id,
        rules=rules,
        use_rules=True,
        labeler_id=None,
    )


async def labels_by_message(resources: Resources, upload_id: str) -> dict[str, list[LabelRow]]:
    """Every message of the upload, in order, with its labels (sorted)."""
    async with resources.sessionmaker() as session:
        messages = (
            await session.execute(
                select(Message.id, Message.text)
                .where(Message.upload_id == upload_id)
                .order_by(Message.seq)
            )
        ).all()
        labels = (
            await session.execute(
                select(
                    Label.message_id, Label.key, Label.value, Label.source, Label.score, Label.rule
                ).where(Label.upload_id == upload_id)
            )
        ).all()
    found: dict[str, list[LabelRow]] = {text: [] for _, text in messages}
    text_of = dict(messages)
    for message_id, key, value, source, score, rule in labels:
        # MariaDB keeps a FLOAT in single precision; the rules round scores to 4 places.
        found[text_of[message_id]].append((key, value, source, round(score, 4), rule))
    return {text: sorted(rows, key=repr) for text, rows in found.items()}


def rule_labels(rules: RuleSet, text: str) -> list[LabelRow]:
    return sorted(((h.key, h.value, "rule", h.score, h.rule) for h in rules.label(text)), key=repr)


@pytest.mark.parametrize("how", ["failed", "cancelled"])
async def test_a_rerun_that_stops_midway_leaves_old_or_new_labels(
    user: Client, resources: Resources, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    assert user.user_id
    upload_id = (await stored_upload(resources, user.user_id, CHAT)).id
    parse = await unqueued_job(
        resources, user.user_id, "parse_upload", upload_id, upload_id=upload_id
    )
    await run_job(resources, parse, "parse_upload")
    await run_job(resources, await label_job(resources, user.user_id, upload_id, None), LABEL)
    old = await labels_by_message(resources, upload_id)
    texts = list(old)
    assert len(texts) == 9 and all(old.values())
    human = texts[0]
    async with resources.sessionmaker() as session:
        message_id = await session.scalar(
            select(Message.id).where(Message.upload_id == upload_id, Message.text == human)
        )
        assert message_id is not None
        session.add(
            Label(
                user_id=user.user_id,
                message_id=message_id,
                upload_id=upload_id,
                key="topic",
                value="人工",
                source="human",
            )
        )
        await session.commit()
    old = await labels_by_message(resources, upload_id)

    # The re-run labels three messages a batch and stops in its second batch.
    monkeypatch.setattr(tasks.labeling, "BATCH", 3)
    label = tasks.labeling._label
    calls = 0
    inside, release = threading.Event(), threading.Event()

    def stop_in_the_second_batch(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            if how == "failed":
                raise RuntimeError("the labeler broke")
            inside.set()
            release.wait(30)
        return label(*args)

    monkeypatch.setattr(tasks.labeling, "_label", stop_in_the_second_batch)
    job_id = await label_job(resources, user.user_id, upload_id, RERUN_RULES)
    rerun = asyncio.create_task(run_job(resources, job_id, LABEL))
    try:
        if how == "cancelled":
            assert await asyncio.to_thread(inside.wait, 30)
            async with resources.sessionmaker() as session:
                await job_service.cancel(resources, session, user.user_id, job_id)
            rerun.cancel()  # what the queue's abort does to the job's task
        await asyncio.gather(rerun, return_exceptions=True)
    finally:
        release.set()
    assert (await job_row(resources, job_id)).status == how

    new_rules = RuleSet.load(RERUN_RULES)
    after = await labels_by_message(resources, upload_id)
    kept = [("topic", "人工", "human", 1.0, None)]
    assert after[human] == sorted(rule_labels(new_rules, human) + kept, key=repr)
    for text in texts[1:3]:  # the first batch: new labels
        assert after[text] == rule_labels(new_rules, text), text
    for text in texts[3:]:  # the rest: the old ones, all of them
        assert after[text] == old[text], text

    # A run that goes through replaces them all, and keeps the human label.
    monkeypatch.setattr(tasks.labeling, "_label", label)
    job_id = await label_job(resources, user.user_id, upload_id, RERUN_RULES)
    await run_job(resources, job_id, LABEL)
    after = await labels_by_message(resources, upload_id)
    assert after[human] == sorted(rule_labels(new_rules, human) + kept, key=repr)
    for text in texts[1:]:
        assert after[text] == rule_labels(new_rules, text), text
    row = await job_row(resources, job_id)
    assert row.status == "succeeded"
    assert row.progress == 1.0
    assert row.message == "9 labels on 9 messages"
