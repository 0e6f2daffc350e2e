"""Hostile uploads through the real upload path: each ends with the upload failed and a clear
error (or a clean refusal), no messages, and nothing half-stored."""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Callable

import pytest

from tests.ml.parsing.helpers import FIXTURES
from tests.support.exports import memotrace_txt
from tests.support.live import Client
from tests.support.uploads import upload_chat, wait_for_job

STATUS = """query($id: ID!) {
  upload(id: $id) { status error messageCount format }
  messages(uploadId: $id, first: 5) { totalCount edges { node { text kind } } }
}"""


def zipped(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def nested_zip() -> bytes:
    data = zipped([("chat.txt", memotrace_txt(3))])
    for level in range(4):
        data = zipped([(f"level{level}.zip", data)])
    return data


def truncated_html() -> bytes:
    page = (FIXTURES / "memotrace.html").read_bytes()
    return page[: page.index("displayname:'小明',title".encode())]


def csv_with_huge_field() -> bytes:
    header = b"localId,TalkerId,Type,SubType,IsSender,CreateTime,Status,StrContent,StrTime\n"
    return header + b'1,2,1,0,0,1704067200,2,"' + b"x" * (10 << 20) + b'",2024-01-01 08:00:00\n'


HOSTILE: dict[str, tuple[Callable[[], bytes], str, str]] = {
    # name: (payload, file name, words the error must contain)
    "binary renamed .txt": (
        lambda: os.urandom(8192).replace(b"PK", b"pk") + b"\x00\x00",
        "chat.txt",
        "binary",
    ),
    "png renamed .txt": (lambda: b"\x89PNG\r\n\x1a\n" + os.urandom(512), "chat.txt", "PNG image"),
    "truncated html": (truncated_html, "chat.html", "truncated"),
    "csv with a 10 MB field": (csv_with_huge_field, "chat.csv", "longer than"),
    "invalid utf-8": (
        lambda: b"2024-01-01 10:00:00 \xe5\xbc\xa0\n\xc3\x28 broken \xff\n\n",
        "chat.txt",
        "encoding",
    ),
    "zip bomb": (lambda: zipped([("chat.txt", bytes(20 << 20))]), "export.zip", "zip bomb"),
    "deeply nested zip": (nested_zip, "export.zip", "nested"),
    "path traversal in a zip": (
        lambda: zipped([("chat.txt", memotrace_txt(3)), ("../../evil.txt", b"x")]),
        "export.zip",
        "path traversal",
    ),
    "too many zip members": (
        lambda: zipped([(f"media/{n}.jpg", b"x") for n in range(50_001)]),
        "export.zip",
        "entries",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE))
async def test_hostile_upload_fails_cleanly(case: str, user: Client) -> None:
    build, filename, words = HOSTILE[case]
    result = await upload_chat(user, build(), filename)
    assert result["__typename"] == "UploadChatSuccess", result
    final = await wait_for_job(user, result["job"]["id"])
    assert final["status"] == "FAILED"
    assert words in final["error"], final["error"]
    assert "\n" not in final["error"]
    assert "Traceback" not in final["error"]
    data = await user.query(STATUS, {"id": result["upload"]["id"]})
    assert data["upload"]["status"] == "FAILED"
    assert data["upload"]["error"] == final["error"]
    assert data["upload"]["messageCount"] == 0
    assert data["messages"]["totalCount"] == 0


async def test_script_in_a_message_is_stored_and_returned_as_text(user: Client) -> None:
    result = await upload_chat(user, (FIXTURES / "memotrace.html").read_bytes(), "chat.html")
    assert (await wait_for_job(user, result["job"]["id"]))["status"] == "SUCCEEDED"
    response = await user.http.post(
        "/graphql",
        json={"query": STATUS, "variables": {"id": result["upload"]["id"]}},
        headers=user.headers,
    )
    assert response.headers["content-type"].startswith("application/json")
    texts = [edge["node"]["text"] for edge in response.json()["data"]["messages"]["edges"]]
    assert any(text.startswith("<script>alert('x')</script>") for text in texts)


async def test_a_lying_declared_type_does_not_matter(user: Client) -> None:
    """Detection reads the content: a chat declared as a PNG called .csv still parses."""
    data = (FIXTURES / "chatlog.json").read_bytes()
    result = await upload_chat(user, data, "photo.csv", content_type="image/png")
    assert (await wait_for_job(user, result["job"]["id"]))["status"] == "SUCCEEDED"
    upload = (await user.query(STATUS, {"id": result["upload"]["id"]}))["upload"]
    assert upload["format"] == "chatlog_json"
    assert upload["messageCount"] > 0
