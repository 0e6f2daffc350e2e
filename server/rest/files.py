"""Signed downloads from the local object folder (S3 hands out presigned URLs instead)."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from server.resources import Resources
from server.rest.responses import JSON
from server.storage import LocalStorage, ObjectMissing


async def download(request: Request) -> Response:
    resources: Resources = request.app.state.resources
    storage = resources.storage
    key = request.path_params["key"]
    try:
        expires = int(request.query_params.get("expires", "0"))
    except ValueError:
        expires = 0
    signature = request.query_params.get("signature", "")
    if not isinstance(storage, LocalStorage) or not storage.verify(key, expires, signature):
        return JSON({"error": {"code": "FORBIDDEN", "message": "invalid or expired link"}}, 403)
    size = await storage.size(key)
    if size is None:
        return JSON({"error": {"code": "NOT_FOUND", "message": "no such file"}}, 404)
    filename = request.query_params.get("filename") or key.rsplit("/", 1)[-1]
    headers = {
        "Content-Length": str(size),
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}",
    }
    try:
        stream = storage.read(key)
    except ObjectMissing:
        return JSON({"error": {"code": "NOT_FOUND", "message": "no such file"}}, 404)
    return StreamingResponse(stream, media_type="application/octet-stream", headers=headers)
