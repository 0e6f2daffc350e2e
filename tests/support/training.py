"""A small chat a tiny model can learn by heart, and helpers to train on it through the API."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tests.support.live import Client
from tests.support.uploads import upload_and_parse, wait_for_job

PAIRS = [
    ("你好", "你好呀，今天过得怎么样？"),
    ("工资什么时候发", "下周一发工资"),
    ("明天开会吗", "明天下午三点开会"),
    ("谢谢", "不客气[微笑]"),
    ("报告写完了吗", "写完了，发你邮箱了"),
    ("加班费怎么算", "按一点五倍算"),
    ("几点下班", "六点下班"),
    ("午饭吃什么", "去食堂吧"),
]
# A reply with a phone number, for the output filter's test.
PII_PAIRS = [
    ("电话多少", "我的电话是13812345678"),
    ("你好", "你好呀"),
    ("谢谢", "不客气"),
    ("明天开会吗", "明天下午三点开会"),
]
# Each pair five times, one conversation a day: enough to learn by heart, and every example
# stands alone, so the eval split gets some.
LINES = [line for _ in range(5) for q, a in PAIRS for line in (("老王", q), ("我", a))]
CHAT = "\n".join(
    f"{datetime(2024, 6, 1) + timedelta(days=n // 2, minutes=n % 2):%Y-%m-%d %H:%M:%S} "
    f"{sender}\n{text}\n"
    for n, (sender, text) in enumerate(LINES)
).encode()

TRAIN = """mutation($input: TrainModelInput!) {
  trainModel(input: $input) {
    __typename
    ... on TrainModelSuccess { model { id status method baseModel } job { id kind queue } }
    ... on UserError { message field code }
  }
}"""
# Settings under which the tiny model learns PAIRS by heart.
MEMORIZE = {
    "maxSteps": 60,
    "learningRate": 5e-3,
    "lrScheduler": "CONSTANT",
    "loraR": 16,
    "loraAlpha": 32,
    "loraDropout": 0.0,
    "batchSize": 4,
    "loggingSteps": 5,
    "evalEverySteps": 30,
}


async def dataset_for(user: Client) -> str:
    """Upload CHAT and build a single-turn dataset of 我's replies; its id."""
    upload_id = await upload_and_parse(user, CHAT)
    result = await user.query(
        """mutation($u: ID!) { createDataset(input: {name: "tiny", uploadIds: [$u],
             persona: ["我"], evalRatio: 0.25, maxContextTurns: 0, dedupeExact: false,
             dedupeNear: false}) {
             ... on CreateDatasetSuccess { dataset { id } job { id } } } }""",
        {"u": upload_id},
    )
    created = result["createDataset"]
    assert (await wait_for_job(user, created["job"]["id"]))["status"] == "SUCCEEDED"
    return str(created["dataset"]["id"])


async def train(user: Client, **input: Any) -> dict[str, Any]:
    """The trainModel payload."""
    data = await user.query(TRAIN, {"input": {"name": "tiny-lora", **input}})
    return data["trainModel"]  # type: ignore[no-any-return]


async def trained_model(user: Client, base_model: str, **input: Any) -> str:
    """Train to the end (MEMORIZE settings unless overridden); the ready model's id."""
    started = await train(
        user, datasetId=await dataset_for(user), baseModel=base_model, **{**MEMORIZE, **input}
    )
    assert started["__typename"] == "TrainModelSuccess", started
    final = await wait_for_job(user, started["job"]["id"])
    assert final["status"] == "SUCCEEDED", final
    return str(started["model"]["id"])
