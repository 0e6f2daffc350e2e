"""Datasets through the API: build, versions, preview with PII placeholders, downloads,
determinism, deletion."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from server.resources import Resources
from tests.support.live import Client
from tests.support.uploads import upload_and_parse, wait_for_job

CHAT = "\n".join(
    f"2024-05-0{1 + n // 6} 10:{n:02d}:00 {sender}\n{text}\n"
    for n, (sender, text) in enumerate(
        [
            ("老王", "在吗？工资什么时候发？"),
            ("我", "下周一，财务说的"),
            ("老王", "我的手机号是13812345678，有消息告诉我"),
            ("我", "好的，收到"),
            ("老王", "谢谢[抱拳]"),
            ("我", "不客气，有事发邮件到 wang.li@example.com"),
            ("老王", "这个月绩效怎么算？"),
            ("我", "按季度考核，订单号 20240115001 的那单算你的"),
            ("老王", "好的明白了"),
            ("我", "[图片]"),
            ("老王", "收到"),
            ("我", "价格是3500元，别告诉别人"),
        ]
    )
).encode()

CREATE = """mutation($input: DatasetInput!) {
  createDataset(input: $input) {
    __typename
    ... on CreateDatasetSuccess { dataset { id name version status } job { id } }
    ... on UserError { message field code }
  }
}"""
DATASET = """query($id: ID!) {
  dataset(id: $id) {
    id name version status error sha256 stats format uploadIds
    versions { id version }
    train: downloadUrl(file: TRAIN) eval: downloadUrl(file: EVAL)
    info: downloadUrl(file: LLAMAFACTORY_INFO)
  }
}"""


async def create(user: Client, **input: Any) -> dict[str, Any]:
    data = await user.query(CREATE, {"input": input})
    return data["createDataset"]  # type: ignore[no-any-return]


async def build(user: Client, **input: Any) -> dict[str, Any]:
    result = await create(user, **input)
    assert result["__typename"] == "CreateDatasetSuccess", result
    final = await wait_for_job(user, result["job"]["id"])
    assert final["status"] == "SUCCEEDED", final
    data = await user.query(DATASET, {"id": result["dataset"]["id"]})
    return data["dataset"]  # type: ignore[no-any-return]


async def fetch(url: str) -> str:
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 200, response.text
    return response.text


async def download(url: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (await fetch(url)).splitlines()]


async def test_build_download_and_version(user: Client) -> None:
    upload_id = await upload_and_parse(user, CHAT)
    dataset = await build(user, name="客服", uploadIds=[upload_id], persona=["我"], evalRatio=0.0)
    assert dataset["status"] == "READY"
    assert dataset["version"] == 1
    assert dataset["format"] == "PROMPT_COMPLETION"
    stats = dataset["stats"]
    assert stats["train_examples"] >= 4
    assert stats["scrubbed"]["phone"] == 1
    assert stats["scrubbed"]["email"] == 1
    lines = await download(dataset["train"])
    assert len(lines) == stats["train_examples"]
    assert all(set(line) == {"prompt", "completion"} for line in lines)
    assert all(line["prompt"].startswith("用户: ") for line in lines)
    assert all(line["completion"].startswith("回复: ") for line in lines)
    text = json.dumps(lines, ensure_ascii=False)
    assert "13812345678" not in text
    assert "wang.li@example.com" not in text
    assert "20240115001" in text  # an order number is not a phone number
    assert "3500元" in text
    assert await download(dataset["eval"]) == []
    info = json.loads(await fetch(dataset["info"]))
    assert info["weft_train"]["file_name"] == "train.jsonl"

    again = await build(user, name="客服", uploadIds=[upload_id], persona=["我"], evalRatio=0.0)
    assert again["version"] == 2
    assert again["sha256"] == dataset["sha256"]  # same spec, same messages, same bytes
    assert [v["version"] for v in again["versions"]] == [2, 1]


async def test_versions_created_at_once_are_all_kept(user: Client) -> None:
    upload_id = await upload_and_parse(user, CHAT)
    results = await asyncio.gather(
        *(create(user, name="同时", uploadIds=[upload_id], persona=["我"]) for _ in range(8))
    )
    assert all(r["__typename"] == "CreateDatasetSuccess" for r in results), results
    assert sorted(r["dataset"]["version"] for r in results) == list(range(1, 9))
    for result in results:
        assert (await wait_for_job(user, result["job"]["id"]))["status"] == "SUCCEEDED"


async def test_formats_load_back(user: Client) -> None:
    upload_id = await upload_and_parse(user, CHAT)
    chat = await build(
        user,
        name="chat",
        uploadIds=[upload_id],
        persona=["我"],
        format="SHAREGPT",
        systemPrompt="你是我。",
        evalRatio=0.0,
    )
    lines = await download(chat["train"])
    assert lines
    for line in lines:
        roles = [m["role"] for m in line["messages"]]
        assert roles[0] == "system"
        assert roles[-1] == "assistant"
    alpaca = await build(
        user, name="alpaca", uploadIds=[upload_id], persona=["我"], format="ALPACA", evalRatio=0.0
    )
    for line in await download(alpaca["train"]):
        assert {"instruction", "input", "output"} <= set(line)


async def test_preview_shows_placeholders(user: Client) -> None:
    upload_id = await upload_and_parse(user, CHAT)
    result = await create(user, name="p", uploadIds=[upload_id], persona=["我"])
    await wait_for_job(user, result["job"]["id"])
    data = await user.query(
        """query($id: ID!) { datasetPreview(id: $id, first: 20) {
             split turns { role content } record approxTokens messageIds } }""",
        {"id": result["dataset"]["id"]},
    )
    examples = data["datasetPreview"]
    assert examples
    contents = " ".join(t["content"] for e in examples for t in e["turns"])
    assert "<手机号>" in contents
    assert "<邮箱>" in contents
    assert "13812345678" not in contents


async def test_filters_and_bad_spec(user: Client, other_user: Client) -> None:
    upload_id = await upload_and_parse(user, CHAT)
    bad = await create(user, name="x", uploadIds=[upload_id], evalRatio=1.5)
    assert bad["__typename"] == "InvalidInputError"
    assert "eval_ratio" in bad["field"]
    endless = await create(user, name="x", uploadIds=[upload_id], sessionGapMinutes=1e307)
    assert (endless["code"], endless["field"]) == ("INVALID_INPUT", "session_gap_seconds")
    missing = await create(user, name="x", uploadIds=["0" * 32])
    assert missing["__typename"] == "NotFoundError"
    theirs = await create(other_user, name="x", uploadIds=[upload_id])
    assert theirs["__typename"] == "NotFoundError"
    narrow = await build(
        user,
        name="narrow",
        uploadIds=[upload_id],
        persona=["我"],
        evalRatio=0.0,
        filters={"until": "2024-05-01T10:04:00+08:00"},
    )
    assert narrow["stats"]["train_examples"] == 2


async def test_delete_dataset(user: Client, resources: Resources) -> None:
    upload_id = await upload_and_parse(user, CHAT)
    dataset = await build(user, name="gone", uploadIds=[upload_id], persona=["我"])
    result = await user.query(
        "mutation($id: ID!) { deleteDataset(id: $id) { __typename } }", {"id": dataset["id"]}
    )
    assert result["deleteDataset"]["__typename"] == "DeleteDatasetSuccess"
    assert (await user.query(DATASET, {"id": dataset["id"]}))["dataset"] is None
    prefix = f"users/{user.user_id}/datasets/{dataset['id']}/"
    assert await resources.storage.delete_prefix(prefix) == 0
