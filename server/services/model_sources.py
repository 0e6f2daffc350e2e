"""Where a base model or an encoder may come from: a hub id, or a local folder outside weft's data.

Local folders are read by the training and inference workers, which also keep every user's
trained models under the data directory (the model cache, the local object folder): a path into
it would let one user train on, chat with or download another user's model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from server.services.errors import InvalidInput
from server.settings import Settings

MAX_LENGTH: Final = 500  # the columns that keep it


def check_model_source(settings: Settings, value: str, field: str) -> str:
    """`value` stripped, or InvalidInput naming `field`."""
    value = value.strip()
    if not 1 <= len(value) <= MAX_LENGTH:
        raise InvalidInput(
            f"name a model: a local folder or a hub id of 1 to {MAX_LENGTH} characters",
            field=field,
        )
    path = Path(value)
    if path.is_absolute() or value.startswith(".") or path.exists():
        resolved, data = path.resolve(), settings.data_dir.resolve()
        if resolved == data or data in resolved.parents:
            raise InvalidInput(
                "that folder is inside weft's data directory, which holds every user's files; "
                "use a model folder outside it",
                field=field,
            )
    return value
