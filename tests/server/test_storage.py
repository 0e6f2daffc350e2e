"""The object store, on the local folder (embedded) and on a real S3 server (production)."""

import hashlib
import os
from collections.abc import AsyncIterator

import httpx
import pytest

from server.resources import Resources
from server.storage import ObjectMissing, ObjectTooLarge, WriteResult
from server.storage.s3 import PART_SIZE
from tests.support.live import LiveServer


async def _stream(total: int, chunk: int = 1 << 20) -> AsyncIterator[bytes]:
    block = os.urandom(chunk)
    sent = 0
    while sent < total:
        piece = block[: min(chunk, total - sent)]
        sent += len(piece)
        yield piece


async def test_write_and_read_back(resources: Resources) -> None:
    storage = resources.storage
    data = "聊天记录 😀\n".encode() * 1000
    result = await storage.write_bytes("tests/roundtrip/a.txt", data)
    assert result == WriteResult(len(data), hashlib.sha256(data).hexdigest())
    assert await storage.read_bytes("tests/roundtrip/a.txt") == data
    assert await storage.size("tests/roundtrip/a.txt") == len(data)


async def test_large_object_streams_through_multipart(resources: Resources) -> None:
    storage = resources.storage
    total = 2 * PART_SIZE + 12345
    digest = hashlib.sha256()
    async for piece in _stream(total):
        digest.update(piece)
    # Same bytes again: _stream repeats one random block.
    result = await storage.write("tests/large/blob", _stream(total))
    assert result.size == total
    read = hashlib.sha256()
    size = 0
    async for chunk in storage.read("tests/large/blob", chunk_size=1 << 20):
        read.update(chunk)
        size += len(chunk)
    assert size == total
    assert read.hexdigest() == result.sha256


async def test_oversized_write_leaves_nothing(resources: Resources) -> None:
    storage = resources.storage
    with pytest.raises(ObjectTooLarge):
        await storage.write("tests/too-big/blob", _stream(PART_SIZE * 2), max_bytes=PART_SIZE + 1)
    assert await storage.size("tests/too-big/blob") is None


async def test_missing_object(resources: Resources) -> None:
    assert await resources.storage.size("tests/missing/none") is None
    with pytest.raises(ObjectMissing):
        await resources.storage.read_bytes("tests/missing/none")
    await resources.storage.delete("tests/missing/none")


async def test_delete_prefix(resources: Resources) -> None:
    storage = resources.storage
    for name in ("a", "b", "c/d"):
        await storage.write_bytes(f"tests/prefix/{name}", b"x")
    await storage.write_bytes("tests/prefix-other/a", b"y")
    assert await storage.delete_prefix("tests/prefix/") == 3
    assert await storage.size("tests/prefix/c/d") is None
    assert await storage.size("tests/prefix-other/a") == 1


async def test_download_url(resources: Resources, server: LiveServer) -> None:
    storage = resources.storage
    await storage.write_bytes("tests/url/file.jsonl", b'{"a": 1}\n')
    url = await storage.url("tests/url/file.jsonl", expires_in=60, filename="数据.jsonl")
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.get(url)
        assert response.status_code == 200
        assert response.content == b'{"a": 1}\n'
        if storage.name == "folder":
            tampered = url.replace("signature=", "signature=0")
            assert (await client.get(tampered)).status_code == 403


async def test_health_reports_the_backend(resources: Resources) -> None:
    health = await resources.health()
    assert all(check["ok"] for check in health.values()), health
    expected = "s3" if resources.settings.uses_s3 else "folder"
    assert health["storage"]["backend"] == expected
