"""Uploading through the API the way a browser does: a GraphQL multipart request."""

from __future__ import annotations

import json
from typing import Any

from tests.support.live import Client

UPLOAD_CHAT = """
mutation($file: Upload!, $selfName: String, $timezone: String) {
  uploadChat(file: $file, selfName: $selfName, timezone: $timezone) {
    __typename
    ... on UploadChatSuccess {
      upload { id filename size sha256 status }
      job { id kind status }
    }
    ... on UserError { message field code }
  }
}"""

WATCH_JOB = """subscription($id: ID!) {
  jobProgress(jobId: $id) { id status progress message error }
}"""


async def upload_chat(
    user: Client,
    data: bytes,
    filename: str = "chat.txt",
    *,
    variables: dict[str, Any] | None = None,
    content_type: str = "text/plain",
) -> dict[str, Any]:
    """The `uploadChat` payload (the success or error object)."""
    operations = {"query": UPLOAD_CHAT, "variables": {"file": None, **(variables or {})}}
    response = await user.http.post(
        "/graphql",
        data={"operations": json.dumps(operations), "map": json.dumps({"0": ["variables.file"]})},
        files={"0": (filename, data, content_type)},
        headers=user.headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert not body.get("errors"), body
    result: dict[str, Any] = body["data"]["uploadChat"]
    return result


async def wait_for_job(user: Client, job_id: str) -> dict[str, Any]:
    """Follow jobProgress to the end; the final state."""
    last: dict[str, Any] = {}
    async with user.subscribe(WATCH_JOB, {"id": job_id}) as subscription:
        async for data in subscription:
            last = data["jobProgress"]
    return last


async def upload_and_parse(
    user: Client, data: bytes, filename: str = "chat.txt", **variables: Any
) -> str:
    """Upload an export, wait until it is parsed; the upload id."""
    result = await upload_chat(user, data, filename, variables=variables or None)
    assert result["__typename"] == "UploadChatSuccess", result
    final = await wait_for_job(user, result["job"]["id"])
    assert final["status"] == "SUCCEEDED", final
    return str(result["upload"]["id"])
