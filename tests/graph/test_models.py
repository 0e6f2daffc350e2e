"""Training through the API on a tiny local model: LoRA and full runs, the live loss, the
registry, cancellation, a bad base model, REST, exports."""

from __future__ import annotations

import asyncio
import io
import tarfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from ml.tiny import make_tiny_model
from server.resources import Resources
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
MODEL = """query($id: ID!) {
  model(id: $id) {
    id name status error method metrics config artifactSize datasetId
    dataset { id version }
    trainingCurve { kind step loss evalLoss perplexity learningRate tokensPerSecond }
    downloadUrl
  }
}"""


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    texts = [text for _, text in LINES]
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "qwen", texts)


async def dataset_for(user: Client) -> str:
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
    data = await user.query(TRAIN, {"input": {"name": "tiny-lora", **input}})
    return data["trainModel"]  # type: ignore[no-any-return]


async def test_lora_run_learns_and_registers(user: Client, tiny_model: Path) -> None:
    dataset_id = await dataset_for(user)
    started = await train(
        user,
        datasetId=dataset_id,
        baseModel=str(tiny_model),
        maxSteps=60,
        learningRate=5e-3,
        lrScheduler="CONSTANT",
        loraR=16,
        loraAlpha=32,
        loraDropout=0.0,
        batchSize=4,
        loggingSteps=5,
        evalEverySteps=30,
    )
    assert started["__typename"] == "TrainModelSuccess", started
    assert started["job"]["queue"] == "train"
    states = []
    async with user.subscribe(
        "subscription($id: ID!) { jobProgress(jobId: $id) { status progress detail } }",
        {"id": started["job"]["id"]},
    ) as subscription:
        async for data in subscription:
            states.append(data["jobProgress"])
    assert states[-1]["status"] == "SUCCEEDED", states[-1]
    live = [s["detail"] for s in states if s["detail"] and s["detail"].get("kind") == "log"]
    assert live, "no live loss reached the subscriber"
    assert {"step", "loss", "learning_rate", "tokens_per_second", "eta_seconds"} <= set(live[-1])

    model = (await user.query(MODEL, {"id": started["model"]["id"]}))["model"]
    assert model["status"] == "READY"
    assert model["dataset"]["id"] == dataset_id
    assert model["artifactSize"] > 0
    losses = [p["loss"] for p in model["trainingCurve"] if p["kind"] == "log"]
    assert len(losses) >= 4
    assert losses[-1] < losses[0] - 0.5, losses  # it memorizes the set
    evals = [p for p in model["trainingCurve"] if p["kind"] == "eval"]
    assert evals, model["metrics"]
    assert evals[-1]["perplexity"] > 0
    assert model["metrics"]["eval_loss"] > 0
    async with httpx.AsyncClient() as client:
        archive = (await client.get(model["downloadUrl"])).content
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        names = set(tar.getnames())
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md", "COMPLETE"} <= names
    listed = await user.query("{ models { id status } }")
    assert started["model"]["id"] in {m["id"] for m in listed["models"]}


async def test_full_fine_tune(user: Client, tiny_model: Path) -> None:
    dataset_id = await dataset_for(user)
    started = await train(
        user, datasetId=dataset_id, baseModel=str(tiny_model), method="FULL", maxSteps=6
    )
    final = await wait_for_job(user, started["job"]["id"])
    assert final["status"] == "SUCCEEDED", final
    model = (await user.query(MODEL, {"id": started["model"]["id"]}))["model"]
    assert model["method"] == "FULL"
    assert model["status"] == "READY"


async def test_bad_base_model_fails_clearly(user: Client, tmp_path: Path) -> None:
    dataset_id = await dataset_for(user)
    started = await train(user, datasetId=dataset_id, baseModel=str(tmp_path / "no-such-model"))
    final = await wait_for_job(user, started["job"]["id"])
    assert final["status"] == "FAILED"
    assert "no-such-model" in final["error"]
    model = (await user.query(MODEL, {"id": started["model"]["id"]}))["model"]
    assert model["status"] == "FAILED"
    assert model["downloadUrl"] is None


async def test_cancel_mid_run(user: Client, tiny_model: Path, resources: Resources) -> None:
    dataset_id = await dataset_for(user)
    started = await train(
        user, datasetId=dataset_id, baseModel=str(tiny_model), maxSteps=100_000, loggingSteps=1
    )
    job_id = started["job"]["id"]
    async with user.subscribe(
        "subscription($id: ID!) { jobProgress(jobId: $id) { status detail } }", {"id": job_id}
    ) as subscription:
        async for data in subscription:
            detail = data["jobProgress"]["detail"] or {}
            if detail.get("kind") == "log":
                break
    cancelled = await user.query(
        "mutation($id: ID!) { cancelJob(id: $id) { __typename } }", {"id": job_id}
    )
    assert cancelled["cancelJob"]["__typename"] == "CancelJobSuccess"
    model_id = started["model"]["id"]
    for _ in range(100):
        model = (await user.query(MODEL, {"id": model_id}))["model"]
        if model["status"] == "CANCELLED":
            break
        await asyncio.sleep(0.2)
    assert model["status"] == "CANCELLED"
    assert model["downloadUrl"] is None
    assert (
        await resources.storage.size(f"users/{user.user_id}/models/{model_id}/artifact.tar") is None
    )


async def test_invalid_options_and_rest_route(user: Client, tiny_model: Path) -> None:
    dataset_id = await dataset_for(user)
    bad = await train(user, datasetId=dataset_id, baseModel=str(tiny_model), loraR=0)
    assert bad == {
        "__typename": "InvalidInputError",
        "message": "lora_r must be an integer from 1 to 1024",
        "field": "lora_r",
        "code": "INVALID_INPUT",
    }
    missing = await train(user, datasetId="0" * 32, baseModel=str(tiny_model))
    assert missing["__typename"] == "NotFoundError"
    response = await user.http.post(
        "/api/v1/train/start",
        json={
            "name": "rest",
            "dataset_id": dataset_id,
            "base_model": str(tiny_model),
            "max_steps": 2,
        },
        headers=user.headers,
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert (await wait_for_job(user, body["job_id"]))["status"] == "SUCCEEDED"
    refused = await user.http.post(
        "/api/v1/train/start", json={"name": "x", "dataset_id": dataset_id}, headers=user.headers
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["field"] == "base_model"
    unauthenticated = await user.http.post("/api/v1/train/start", json={})
    assert unauthenticated.status_code == 401
