"""Training through the API on a tiny local model: LoRA and full runs, the live loss, the
registry, cancellation, a bad base model, REST, exports."""

from __future__ import annotations

import asyncio
import io
import tarfile
from pathlib import Path

import httpx

from server.resources import Resources
from tests.support.live import Client
from tests.support.training import MEMORIZE, dataset_for, train
from tests.support.uploads import wait_for_job

MODEL = """query($id: ID!) {
  model(id: $id) {
    id name status error method metrics config artifactSize datasetId
    dataset { id version }
    trainingCurve { kind step loss evalLoss perplexity learningRate tokensPerSecond }
    downloadUrl
  }
}"""


async def test_lora_run_learns_and_registers(user: Client, tiny_model: Path) -> None:
    dataset_id = await dataset_for(user)
    started = await train(user, datasetId=dataset_id, baseModel=str(tiny_model), **MEMORIZE)
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
        "message": "lora_r must be greater than zero, got 0",
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


async def test_export_adapter_and_merged(user: Client, tiny_model: Path) -> None:
    dataset_id = await dataset_for(user)
    started = await train(user, datasetId=dataset_id, baseModel=str(tiny_model), maxSteps=3)
    assert (await wait_for_job(user, started["job"]["id"]))["status"] == "SUCCEEDED"
    model_id = started["model"]["id"]
    export = """mutation($id: ID!, $merged: Boolean!) {
      exportModel(id: $id, merged: $merged) {
        __typename ... on ExportModelSuccess { url job { id } } ... on UserError { message }
      }
    }"""
    adapter = (await user.query(export, {"id": model_id, "merged": False}))["exportModel"]
    assert adapter["job"] is None
    assert adapter["url"]
    merged = (await user.query(export, {"id": model_id, "merged": True}))["exportModel"]
    assert (await wait_for_job(user, merged["job"]["id"]))["status"] == "SUCCEEDED"
    data = await user.query(
        "query($id: ID!) { model(id: $id) { downloadUrl(merged: true) } }", {"id": model_id}
    )
    async with httpx.AsyncClient() as client:
        archive = (await client.get(data["model"]["downloadUrl"])).content
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        names = set(tar.getnames())
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= names
    assert "adapter_config.json" not in names


async def test_a_base_model_inside_weft_data_is_refused(user: Client, resources: Resources) -> None:
    # The model cache and the object folder hold other users' trained models.
    cached = resources.settings.cache_dir / "models" / ("a" * 32)
    cached.mkdir(parents=True, exist_ok=True)
    (cached / "config.json").write_text("{}")
    for path in (cached, resources.settings.data_dir):
        refused = await train(user, datasetId="0" * 32, baseModel=str(path))
        assert refused["code"] == "INVALID_INPUT"
        assert refused["field"] == "baseModel"
        assert "data directory" in refused["message"]
    labeler = await user.query(
        """mutation($encoder: String) { trainLabeler(name: "x", encoder: $encoder) {
            ... on InvalidInputError { code field message } } }""",
        {"encoder": str(cached)},
    )
    assert labeler["trainLabeler"]["field"] == "encoder"
    long = await user.query(
        """mutation($encoder: String) { trainLabeler(name: "x", encoder: $encoder) {
            ... on InvalidInputError { code field } } }""",
        {"encoder": "x" * 501},
    )
    assert long["trainLabeler"] == {"code": "INVALID_INPUT", "field": "encoder"}
