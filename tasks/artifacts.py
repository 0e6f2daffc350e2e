"""Folders (classifiers, adapters, models) as tar archives in object storage."""

from __future__ import annotations

import asyncio
import tarfile
import tempfile
from pathlib import Path

from server.storage import Storage, WriteResult


def _pack(directory: Path, archive: Path) -> None:
    with tarfile.open(archive, "w") as tar:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=str(path.relative_to(directory)))


def _unpack(archive: Path, directory: Path) -> None:
    with tarfile.open(archive) as tar:
        # The "data" filter refuses absolute paths, traversal, links out and device files.
        tar.extractall(directory, filter="data")


async def upload_folder(storage: Storage, key: str, directory: Path, scratch: Path) -> WriteResult:
    """Tar the folder into scratch space and stream it into storage under key."""
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=scratch, suffix=".tar") as archive:
        await asyncio.to_thread(_pack, directory, Path(archive.name))
        return await storage.write_file(key, Path(archive.name), content_type="application/x-tar")


async def download_folder(storage: Storage, key: str, directory: Path, scratch: Path) -> Path:
    """Fetch the archive under key and unpack it into directory (created)."""
    scratch.mkdir(parents=True, exist_ok=True)
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=scratch, suffix=".tar") as archive:
        await storage.download(key, Path(archive.name))
        await asyncio.to_thread(_unpack, Path(archive.name), directory)
    return directory
