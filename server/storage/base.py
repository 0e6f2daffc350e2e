"""The storage interface and what both backends share."""

from __future__ import annotations

import asyncio
import hashlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from pathlib import Path

CHUNK_SIZE = 1 << 20


class StorageError(Exception):
    """The object store failed or is unreachable."""


class ObjectMissing(StorageError):
    def __init__(self, key: str) -> None:
        super().__init__(f"object {key!r} does not exist")
        self.key = key


class ObjectTooLarge(StorageError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the object is larger than the limit of {limit} bytes")
        self.limit = limit


@dataclass(frozen=True, slots=True)
class WriteResult:
    size: int
    sha256: str


class Storage(ABC):
    """Keys are '/'-separated paths such as 'users/<id>/uploads/<id>/original'."""

    name: str

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Prepare the backend (create the bucket or folder)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    @abstractmethod
    async def write(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        content_type: str = "application/octet-stream",
        max_bytes: int | None = None,
    ) -> WriteResult:
        """Store the stream under key, all or nothing; past max_bytes, ObjectTooLarge and nothing
        is kept."""

    @abstractmethod
    def read(self, key: str, *, chunk_size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
        """Stream the object's bytes; ObjectMissing when there is none."""

    @abstractmethod
    async def size(self, key: str) -> int | None:
        """The object's size, or None when it does not exist."""

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Remove the object; a missing object is not an error."""

    @abstractmethod
    async def delete_prefix(self, prefix: str) -> int:
        """Remove every object under prefix; returns how many."""

    @abstractmethod
    async def url(self, key: str, *, expires_in: int = 3600, filename: str | None = None) -> str:
        """A time-limited download URL (absolute on S3; a signed path on the app for folders)."""

    @abstractmethod
    async def check(self) -> None:
        """Raise StorageError when the backend cannot serve requests."""

    async def write_bytes(self, key: str, data: bytes, *, content_type: str = "") -> WriteResult:
        async def one() -> AsyncIterator[bytes]:
            yield data

        return await self.write(key, one(), content_type=content_type or "application/octet-stream")

    async def write_file(self, key: str, path: Path, *, content_type: str = "") -> WriteResult:
        return await self.write(
            key, file_chunks(path), content_type=content_type or "application/octet-stream"
        )

    async def read_bytes(self, key: str) -> bytes:
        return b"".join([chunk async for chunk in self.read(key)])

    async def download(self, key: str, path: Path) -> int:
        """Copy the object into a local file, chunk by chunk; returns the size."""
        path.parent.mkdir(parents=True, exist_ok=True)
        size = 0
        with path.open("wb") as out:
            async for chunk in self.read(key):
                await asyncio.to_thread(out.write, chunk)
                size += len(chunk)
        return size


async def file_chunks(path: Path, chunk_size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
    with path.open("rb") as source:
        while chunk := await asyncio.to_thread(source.read, chunk_size):
            yield chunk


class Hasher:
    """Counts and hashes bytes on their way through, enforcing an optional size limit."""

    __slots__ = ("digest", "limit", "size")

    def __init__(self, limit: int | None) -> None:
        self.digest = hashlib.sha256()
        self.size = 0
        self.limit = limit

    def update(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.limit is not None and self.size > self.limit:
            raise ObjectTooLarge(self.limit)
        self.digest.update(chunk)

    def result(self) -> WriteResult:
        return WriteResult(self.size, self.digest.hexdigest())
