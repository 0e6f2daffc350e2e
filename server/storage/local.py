"""Objects as files under one folder. Writes land in a temporary file renamed into place."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from urllib.parse import quote, urlencode

from server.storage.base import (
    CHUNK_SIZE,
    Hasher,
    ObjectMissing,
    Storage,
    StorageError,
    WriteResult,
)

FILES_ROUTE = "/files/"


class LocalStorage(Storage):
    name = "folder"

    def __init__(self, root: Path, *, secret: str) -> None:
        self.root = root.resolve()
        self._secret = secret.encode()

    async def open(self) -> None:
        (self.root / ".tmp").mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        parts = key.split("/")
        if not key or any(part in {"", ".", ".."} or part.startswith(".") for part in parts):
            raise StorageError(f"invalid object key {key!r}")
        return self.root.joinpath(*parts)

    async def write(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        content_type: str = "application/octet-stream",
        max_bytes: int | None = None,
    ) -> WriteResult:
        target = self.path(key)
        temporary = self.root / ".tmp" / uuid.uuid4().hex
        hasher = Hasher(max_bytes)
        try:
            with temporary.open("wb") as out:
                async for chunk in chunks:
                    hasher.update(chunk)
                    await asyncio.to_thread(out.write, chunk)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
        return hasher.result()

    async def read(self, key: str, *, chunk_size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
        path = self.path(key)
        try:
            source = path.open("rb")
        except FileNotFoundError:
            raise ObjectMissing(key) from None
        with source:
            while chunk := await asyncio.to_thread(source.read, chunk_size):
                yield chunk

    async def size(self, key: str) -> int | None:
        try:
            return self.path(key).stat().st_size
        except FileNotFoundError:
            return None

    async def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    async def delete_prefix(self, prefix: str) -> int:
        folder = self.path(prefix.rstrip("/"))
        if folder.is_file():
            folder.unlink()
            return 1
        if not folder.is_dir():
            return 0
        count = sum(1 for p in folder.rglob("*") if p.is_file())
        await asyncio.to_thread(shutil.rmtree, folder, True)
        return count

    async def url(self, key: str, *, expires_in: int = 3600, filename: str | None = None) -> str:
        self.path(key)
        expires = int(time.time()) + expires_in
        query = {"expires": str(expires), "signature": self.signature(key, expires)}
        if filename:
            query["filename"] = filename
        return f"{FILES_ROUTE}{quote(key)}?{urlencode(query)}"

    def signature(self, key: str, expires: int) -> str:
        message = f"{key}\n{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def verify(self, key: str, expires: int, signature: str) -> bool:
        if expires < time.time():
            return False
        return hmac.compare_digest(self.signature(key, expires), signature)

    async def check(self) -> None:
        if not os.access(self.root, os.W_OK):
            raise StorageError(f"object folder {self.root} is not writable")
