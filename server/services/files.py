"""Removing a subject's files from storage, for the services that delete uploads, datasets and
models."""

from __future__ import annotations

from server.resources import Resources
from server.services.errors import Unavailable
from server.storage import StorageError


async def delete_files(resources: Resources, prefix: str) -> None:
    """Delete every object under `prefix`; UNAVAILABLE if storage fails.

    Services call it before deleting the row: if storage fails the row stays and the user can
    try again, where the other order would leave files behind that nothing points to.
    """
    try:
        await resources.storage.delete_prefix(prefix)
    except StorageError as error:
        raise Unavailable(
            f"storage failed, so not everything was deleted: {error}; try again", field="id"
        ) from None
