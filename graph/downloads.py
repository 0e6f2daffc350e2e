"""Download links for stored files, as the API hands them out."""

from __future__ import annotations

from graph.context import Info

MIN_EXPIRY = 60
MAX_EXPIRY = 7 * 24 * 3600


async def download_link(info: Info, key: str, *, expires_in: int, filename: str) -> str:
    """A time-limited link to the object under key: presigned on S3; on the local folder a
    signed path on this server, made absolute from the request's own address."""
    expires_in = max(MIN_EXPIRY, min(expires_in, MAX_EXPIRY))
    url = await info.context.resources.storage.url(key, expires_in=expires_in, filename=filename)
    if url.startswith("/"):
        url = str(info.context.request.base_url).rstrip("/") + url
    return url
