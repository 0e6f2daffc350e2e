"""Chat with the tiny trained model through all three interfaces: the GraphQL subscription,
the seed's SSE route and the OpenAI-compatible API (with the official client)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tasks.inference import InferenceWorker
from tests.support.live import Client, GraphQLError, LiveServer
from tests.support.training import PII_PAIRS, train, trained_model
from tests.support.uploads import upload_and_parse, wait_for_job

CHAT = """subscription($input: ChatInput!) {
  chat(input: $input) {
    delta done finishReason error usage { promptTokens completionTokens totalTokens }
  }
}"""
GREEDY = {"temperature": 0.0, "maxTokens": 24}


@pytest.fixture(scope="session")
async def owner(server: LiveServer, tiny_model: Path) -> AsyncIterator[tuple[Client, str, str]]:
    """A user with two LoRA adapters trained differently on the same tiny base."""
    async with httpx.AsyncClient(base_url=server.url, timeout=120) as http:
        user = await Client(server, http).register("聊天用户")
        first = await trained_model(user, str(tiny_model))
        second = await trained_model(user, str(tiny_model), maxSteps=15, learningRate=3e-2, seed=7)
        yield user, first, second


def messages(text: str = "工资什么时候发") -> list[dict[str, str]]:
    return [{"role": "USER", "content": text}]


async def subscription(user: Client, model_id: str, **params: Any) -> list[dict[str, Any]]:
    variables = {"input": {"modelId": model_id, "messages": messages(), **GREEDY, **params}}
    chunks = []
    async with user.subscribe(CHAT, variables) as stream:
        async for data in stream:
            chunks.append(data["chat"])
    return chunks


async def test_subscription_streams_tokens(owner: tuple[Client, str, str]) -> None:
    user, model_id, _ = owner
    chunks = await subscription(user, model_id)
    final = chunks[-1]
    assert final["done"] is True
    assert final["finishReason"] in {"STOP", "LENGTH"}
    assert final["error"] is None
    assert final["usage"]["promptTokens"] > 0
    assert 0 < final["usage"]["completionTokens"] <= 24
    pieces = [c["delta"] for c in chunks[:-1]]
    assert len(pieces) >= 2, "the reply did not stream in pieces"
    assert all(pieces)
    text = "".join(pieces)
    assert text
    assert text == "".join(c["delta"] for c in await subscription(user, model_id))


async def test_all_interfaces_agree(owner: tuple[Client, str, str], server: LiveServer) -> None:
    user, model_id, _ = owner
    text = "".join(c["delta"] for c in await subscription(user, model_id))
    body = {
        "model_id": model_id,
        "messages": [{"role": "user", "content": "工资什么时候发"}],
        "temperature": 0,
        "max_tokens": 24,
    }
    one_shot = await user.http.post("/api/v1/model/chat", json=body, headers=user.headers)
    assert one_shot.status_code == 200, one_shot.text
    assert one_shot.json()["reply"] == text

    events = []
    async with user.http.stream(
        "POST", "/api/v1/model/chat", json={**body, "stream": True}, headers=user.headers
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith("data:"):
                events.append(json.loads(line[5:]))
    assert "".join(e["delta"] for e in events) == text
    assert events[-1]["done"] is True

    client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key=str(user.token))
    listed = await client.models.list()
    assert model_id in {m.id for m in listed.data}
    completion = await client.chat.completions.create(
        model=model_id,
        messages=[{"role": "user", "content": "工资什么时候发"}],
        temperature=0,
        max_tokens=24,
    )
    assert completion.choices[0].message.content == text
    assert completion.usage is not None
    assert completion.usage.completion_tokens > 0
    streamed = await client.chat.completions.create(
        model=model_id,
        messages=[{"role": "user", "content": "工资什么时候发"}],
        temperature=0,
        max_tokens=24,
        stream=True,
        stream_options={"include_usage": True},
    )
    parts = []
    async for chunk in streamed:
        if chunk.choices and chunk.choices[0].delta.content:
            parts.append(chunk.choices[0].delta.content)
    assert "".join(parts) == text
    await client.close()


async def test_two_adapters_interleaved(owner: tuple[Client, str, str]) -> None:
    user, first, second = owner
    alone_first = "".join(c["delta"] for c in await subscription(user, first))
    alone_second = "".join(c["delta"] for c in await subscription(user, second))
    assert alone_first != alone_second
    results = await asyncio.gather(
        *(subscription(user, model) for model in (first, second, first, second))
    )
    texts = ["".join(c["delta"] for c in chunks) for chunks in results]
    assert texts == [alone_first, alone_second, alone_first, alone_second]
    status = await user.query("{ inferenceStatus { online waiting detail } }")
    assert status["inferenceStatus"]["online"] is True
    detail = status["inferenceStatus"]["detail"]
    assert sorted([first, second]) == detail["your_models"]
    assert detail["adapters"] >= 2


async def test_disconnect_frees_the_worker(owner: tuple[Client, str, str]) -> None:
    user, model_id, _ = owner
    variables = {
        "input": {
            "modelId": model_id,
            "messages": messages(),
            "temperature": 1.0,
            "seed": 1,
            "maxTokens": 5000,
            "stop": [],
        }
    }
    async with user.subscribe(CHAT, variables) as stream:
        async for data in stream:
            assert data["chat"]["done"] is False
            break  # leave after the first token: the socket closes
    started = asyncio.get_running_loop().time()
    chunks = await subscription(user, model_id)
    assert chunks[-1]["finishReason"] in {"STOP", "LENGTH"}
    assert asyncio.get_running_loop().time() - started < 30


async def test_other_users_model_is_refused(
    owner: tuple[Client, str, str], other_user: Client, server: LiveServer
) -> None:
    user, model_id, _ = owner
    await subscription(user, model_id)  # the model is resident now
    status = await other_user.query("{ inferenceStatus { detail } }")
    shown = json.dumps(status["inferenceStatus"]["detail"])
    assert model_id not in shown and "/" not in shown  # neither its id nor any path
    with pytest.raises(GraphQLError, match="no such model"):
        await subscription(other_user, model_id)
    refused = await other_user.http.post(
        "/api/v1/model/chat",
        json={"model_id": model_id, "messages": [{"role": "user", "content": "hi"}]},
        headers=other_user.headers,
    )
    assert refused.status_code == 404
    client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key=str(other_user.token))
    with pytest.raises(openai.NotFoundError):
        await client.chat.completions.create(
            model=model_id, messages=[{"role": "user", "content": "hi"}]
        )
    assert model_id not in {m.id for m in (await client.models.list()).data}
    await client.close()


async def test_bad_requests(owner: tuple[Client, str, str], server: LiveServer) -> None:
    user, model_id, _ = owner
    with pytest.raises(GraphQLError, match="temperature"):
        await subscription(user, model_id, temperature=9.0)
    # Wrong JSON types are INVALID_INPUT on both REST routes, never a server error.
    hello = [{"role": "user", "content": "hi"}]
    for body, field in (
        ({"max_tokens": "5"}, "max_tokens"),
        ({"seed": "5"}, "seed"),
        ({"temperature": "hot"}, "temperature"),
        ({"stop": 5}, "stop"),
    ):
        response = await user.http.post(
            "/api/v1/model/chat",
            json={"model_id": model_id, "messages": hello, **body},
            headers=user.headers,
        )
        assert response.status_code == 422, response.text
        assert response.json()["error"]["field"] == field
    response = await user.http.post(
        "/v1/chat/completions",
        json={"model": model_id, "messages": [{"role": "user", "content": [{"text": 5}]}]},
        headers=user.headers,
    )
    assert response.status_code == 400, response.text
    client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="weft_wrong")
    with pytest.raises(openai.AuthenticationError):
        await client.models.list()
    await client.close()


async def test_pii_in_the_output_is_masked(user: Client, tiny_model: Path) -> None:
    """A model that learned a phone number by heart (from a dataset built without scrubbing)
    still never streams it: the output filter masks it, whichever tokens it is split into."""
    lines = [line for _ in range(5) for q, a in PII_PAIRS for line in (("老王", q), ("我", a))]
    chat = "\n".join(
        f"2024-07-{1 + n // 2:02d} 10:0{n % 2}:00 {sender}\n{text}\n"
        for n, (sender, text) in enumerate(lines)
    ).encode()
    upload_id = await upload_and_parse(user, chat)
    created = await user.query(
        """mutation($u: ID!) { createDataset(input: {name: "pii", uploadIds: [$u], persona: ["我"],
             format: SHAREGPT, scrubPii: false, evalRatio: 0, maxContextTurns: 0,
             dedupeExact: false, dedupeNear: false}) {
             ... on CreateDatasetSuccess { dataset { id } job { id } } } }""",
        {"u": upload_id},
    )
    await wait_for_job(user, created["createDataset"]["job"]["id"])
    started = await train(
        user,
        datasetId=created["createDataset"]["dataset"]["id"],
        baseModel=str(tiny_model),
        method="FULL",
        maxSteps=160,
        batchSize=4,
        learningRate=3e-3,
        lrScheduler="CONSTANT",
    )
    assert (await wait_for_job(user, started["job"]["id"]))["status"] == "SUCCEEDED"
    variables = {
        "input": {
            "modelId": started["model"]["id"],
            "messages": [{"role": "USER", "content": "电话多少"}],
            "temperature": 0.0,
            "maxTokens": 40,
        }
    }
    chunks = []
    async with user.subscribe(CHAT, variables) as stream:
        async for data in stream:
            chunks.append(data["chat"])
    text = "".join(c["delta"] for c in chunks)
    assert "<手机号>" in text, text
    assert "13812345678" not in text
    assert not any(ch.isdigit() for ch in text), text


async def test_the_worker_forgets_deleted_models(
    owner: tuple[Client, str, str], server: LiveServer
) -> None:
    user, model_id, _ = owner
    await subscription(user, model_id)  # downloaded into the worker's cache
    resources = server.resources
    models = resources.settings.cache_dir / "models"
    deleted = models / ("d" * 32)  # the cache of a model whose row is gone
    deleted.mkdir(parents=True, exist_ok=True)
    (deleted / "adapter_model.safetensors").write_bytes(b"weights")
    forgotten = await InferenceWorker(resources, resources.chat).forget_deleted()
    assert forgotten == ["d" * 32]
    assert not deleted.exists()
    assert (models / model_id).is_dir()
