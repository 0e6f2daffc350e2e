"""JSON responses encoded with orjson: fast, and Chinese text stays readable (no \\u escapes)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse


class JSON(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
