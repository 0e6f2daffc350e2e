"""Object storage: one interface, an S3 backend (aiobotocore) and a local-folder backend.

Neither backend holds a whole object in memory: writes take an async stream of chunks, reads
give one, and both compute size and sha256 as the bytes pass.
"""

from __future__ import annotations

from server.settings import Settings
from server.storage.base import (
    CHUNK_SIZE,
    ObjectMissing,
    ObjectTooLarge,
    Storage,
    StorageError,
    WriteResult,
    file_chunks,
)
from server.storage.local import LocalStorage
from server.storage.s3 import S3Storage

__all__ = [
    "CHUNK_SIZE",
    "LocalStorage",
    "ObjectMissing",
    "ObjectTooLarge",
    "S3Storage",
    "Storage",
    "StorageError",
    "WriteResult",
    "file_chunks",
    "open_storage",
]


async def open_storage(settings: Settings) -> Storage:
    storage: Storage
    if settings.uses_s3:
        storage = S3Storage(
            bucket=settings.s3_bucket,
            endpoint=settings.s3_endpoint or None,
            access_key=settings.s3_access_key or None,
            secret_key=settings.s3_secret_key or None,
            region=settings.s3_region,
            timeout=settings.s3_timeout_seconds,
        )
    else:
        storage = LocalStorage(settings.objects_dir, secret=settings.secret())
    await storage.open()
    return storage
