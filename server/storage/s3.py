"""Objects in an S3-compatible bucket (AWS, MinIO, SeaweedFS) through aiobotocore.

Large writes go up as multipart uploads of PART_SIZE parts, so at most one part is in memory;
a failed or oversized write aborts the multipart upload and leaves nothing behind.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any
from urllib.parse import quote

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from server.storage.base import (
    CHUNK_SIZE,
    Hasher,
    ObjectMissing,
    Storage,
    StorageError,
    WriteResult,
)

# S3's minimum part size is 5 MiB (for all parts but the last).
PART_SIZE = 8 << 20


class S3Storage(Storage):
    name = "s3"

    def __init__(
        self,
        *,
        bucket: str,
        endpoint: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        region: str = "us-east-1",
        timeout: float = 30.0,
    ) -> None:
        self.bucket = bucket
        self._endpoint = endpoint
        self._credentials = {"aws_access_key_id": access_key, "aws_secret_access_key": secret_key}
        self._region = region
        self._timeout = timeout
        self._exit = contextlib.AsyncExitStack()
        self._client: Any = None

    async def open(self) -> None:
        config = AioConfig(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            # Standard retries back off exponentially between attempts.
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=min(5.0, self._timeout),
            read_timeout=self._timeout,
        )
        session = get_session()
        self._client = await self._exit.enter_async_context(
            session.create_client(
                "s3",
                endpoint_url=self._endpoint,
                region_name=self._region,
                config=config,
                **self._credentials,
            )
        )
        # botocore asks for "Expect: 100-continue" on uploads, and aiohttp waits for the 100
        # with no timeout: a server that stops answering would hang the upload for ever.
        self._client.meta.events.register("before-sign.s3.*", _no_expect)
        try:
            await self._client.head_bucket(Bucket=self.bucket)
        except ClientError as error:
            if _code(error) not in {"404", "NoSuchBucket", "NotFound"}:
                raise StorageError(f"bucket {self.bucket!r}: {error}") from error
            with contextlib.suppress(ClientError):
                await self._client.create_bucket(Bucket=self.bucket)
        except BotoCoreError as error:
            await self.close()
            raise StorageError(
                f"S3 at {self._endpoint or 'AWS'} is unreachable: {error}"
            ) from error

    async def close(self) -> None:
        await self._exit.aclose()
        self._client = None

    async def write(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        content_type: str = "application/octet-stream",
        max_bytes: int | None = None,
    ) -> WriteResult:
        hasher = Hasher(max_bytes)
        buffer = bytearray()
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        try:
            async for chunk in chunks:
                hasher.update(chunk)
                buffer += chunk
                if len(buffer) >= PART_SIZE:
                    if upload_id is None:
                        created = await self._client.create_multipart_upload(
                            Bucket=self.bucket, Key=key, ContentType=content_type
                        )
                        upload_id = created["UploadId"]
                    parts.append(await self._part(key, upload_id, len(parts) + 1, bytes(buffer)))
                    buffer.clear()
            if upload_id is None:
                await self._client.put_object(
                    Bucket=self.bucket, Key=key, Body=bytes(buffer), ContentType=content_type
                )
            else:
                if buffer:
                    parts.append(await self._part(key, upload_id, len(parts) + 1, bytes(buffer)))
                await self._client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                )
                upload_id = None
        except (BotoCoreError, ClientError) as error:
            raise StorageError(f"writing {key!r} failed: {error}") from error
        finally:
            if upload_id is not None:
                with contextlib.suppress(BotoCoreError, ClientError):
                    await self._client.abort_multipart_upload(
                        Bucket=self.bucket, Key=key, UploadId=upload_id
                    )
        return hasher.result()

    async def _part(self, key: str, upload_id: str, number: int, body: bytes) -> dict[str, Any]:
        response = await self._client.upload_part(
            Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
        )
        return {"ETag": response["ETag"], "PartNumber": number}

    async def read(self, key: str, *, chunk_size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
        try:
            response = await self._client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _code(error) in {"NoSuchKey", "404"}:
                raise ObjectMissing(key) from None
            raise StorageError(f"reading {key!r} failed: {error}") from error
        except BotoCoreError as error:
            raise StorageError(f"reading {key!r} failed: {error}") from error
        async with response["Body"] as body:
            while chunk := await body.read(chunk_size):
                yield chunk

    async def size(self, key: str) -> int | None:
        try:
            head = await self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _code(error) in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise StorageError(str(error)) from error
        except BotoCoreError as error:
            raise StorageError(f"looking up {key!r} failed: {error}") from error
        return int(head["ContentLength"])

    async def delete(self, key: str) -> None:
        try:
            await self._client.delete_object(Bucket=self.bucket, Key=key)
        except (BotoCoreError, ClientError) as error:
            raise StorageError(f"deleting {key!r} failed: {error}") from error

    async def delete_prefix(self, prefix: str) -> int:
        count = 0
        paginator = self._client.get_paginator("list_objects_v2")
        try:
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                if not keys:
                    continue
                answer = await self._client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": keys}
                )
                if answer.get("Errors"):  # some keys were not deleted
                    first = answer["Errors"][0]
                    raise StorageError(f"deleting {first.get('Key')!r} failed: {first}")
                count += len(keys)
        except (BotoCoreError, ClientError) as error:
            raise StorageError(f"deleting {prefix!r} failed: {error}") from error
        return count

    async def url(self, key: str, *, expires_in: int = 3600, filename: str | None = None) -> str:
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if filename:
            params["ResponseContentDisposition"] = f"attachment; filename*=UTF-8''{quote(filename)}"
        url: str = await self._client.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=expires_in
        )
        return url

    async def check(self) -> None:
        try:
            await self._client.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as error:
            raise StorageError(f"bucket {self.bucket!r} is unavailable: {error}") from error


def _no_expect(request: Any, **_: Any) -> None:
    if "Expect" in request.headers:
        del request.headers["Expect"]


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))
