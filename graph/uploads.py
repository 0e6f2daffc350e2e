"""Uploads: `uploadChat` (GraphQL multipart), `uploads`, `upload`, `senders`, `setSelf`,
`reparseUpload`, `deleteUpload`."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry
from starlette.datastructures import UploadFile
from strawberry.file_uploads import Upload as FileUpload

from graph.context import Info
from graph.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    RateLimitedError,
    TooLargeError,
    UnavailableError,
    query_error,
    user_error,
)
from graph.jobs import Job
from graph.pagination import Connection, Edge, PageInfo, page_size
from server.db.models import Upload as UploadRow
from server.db.repositories import UploadRepository
from server.services import uploads as upload_service
from server.services.errors import InvalidInput, ServiceError, Unavailable
from server.storage import StorageError


@strawberry.enum
class UploadStatus(Enum):
    UPLOADED = "uploaded"
    PARSING = "parsing"
    PARSED = "parsed"
    FAILED = "failed"


@strawberry.type(
    name="ChatUpload",
    description="A chat export you uploaded, and how its parsing went. (Named ChatUpload "
    "because `Upload` is the GraphQL multipart scalar of `uploadChat(file: Upload!)`.)",
)
class Upload:
    id: strawberry.ID
    filename: str
    content_type: str
    size: float = strawberry.field(description="Bytes.")
    sha256: str
    status: UploadStatus
    error: str | None = strawberry.field(description="Why parsing failed, in plain words.")
    format: str | None = strawberry.field(description="The export format weft recognised.")
    timezone: str
    self_name: str | None = strawberry.field(description="Which sender is you.")
    message_count: int
    created_at: datetime
    parsed_at: datetime | None

    @strawberry.field(description="The newest job working on this upload (parse, label ...).")
    async def job(self, info: Info) -> Job | None:
        row = await info.context.loaders.latest_job.load(self.id)
        return Job.from_row(row) if row is not None else None

    @classmethod
    def from_row(cls, row: UploadRow) -> Upload:
        return cls(
            id=strawberry.ID(row.id),
            filename=row.filename,
            content_type=row.content_type,
            size=row.size,
            sha256=row.sha256,
            status=UploadStatus(row.status),
            error=row.error,
            format=row.format,
            timezone=row.timezone,
            self_name=row.self_name,
            message_count=row.message_count,
            created_at=row.created_at,
            parsed_at=row.parsed_at,
        )


@strawberry.type
class Sender:
    name: str
    message_count: int
    is_self: bool | None


@strawberry.type
class UploadChatSuccess:
    upload: Upload
    job: Job


@strawberry.type
class ReparseUploadSuccess:
    upload: Upload
    job: Job


@strawberry.type
class DeleteUploadSuccess:
    id: strawberry.ID


@strawberry.type
class SetSelfSuccess:
    upload: Upload


UploadChatPayload = Annotated[
    UploadChatSuccess | InvalidInputError | TooLargeError | RateLimitedError | UnavailableError,
    strawberry.union("UploadChatPayload"),
]
ReparseUploadPayload = Annotated[
    ReparseUploadSuccess | NotFoundError | ConflictError, strawberry.union("ReparseUploadPayload")
]
DeleteUploadPayload = Annotated[
    DeleteUploadSuccess | NotFoundError | UnavailableError, strawberry.union("DeleteUploadPayload")
]
SetSelfPayload = Annotated[
    SetSelfSuccess | NotFoundError | InvalidInputError, strawberry.union("SetSelfPayload")
]
UploadConnection = Connection[Upload]


@strawberry.type
class UploadQueries:
    @strawberry.field(description="Your uploads, newest first.")
    async def uploads(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> UploadConnection:
        user_id = info.context.user_id
        size = page_size(info, first)
        sessionmaker = info.context.resources.sessionmaker
        async with sessionmaker() as session:
            try:
                result = await upload_service.list_uploads(
                    session, user_id, first=size, after=after
                )
            except InvalidInput as error:
                raise query_error(error) from None

        async def total() -> int:
            async with sessionmaker() as session:
                return await upload_service.count_uploads(session, user_id)

        edges = [
            Edge(cursor=upload_service.encode_upload_cursor(row), node=Upload.from_row(row))
            for row in result.rows
        ]
        return UploadConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=result.has_next,
                has_previous_page=after is not None,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
            _count=total,
        )

    @strawberry.field(description="One of your uploads, or null.")
    async def upload(self, info: Info, id: strawberry.ID) -> Upload | None:
        user_id = info.context.user_id
        async with info.context.resources.sessionmaker() as session:
            row = await UploadRepository(session, user_id).get(id)
        return Upload.from_row(row) if row is not None else None

    @strawberry.field(description="Who speaks in an upload, most active first.")
    async def senders(self, info: Info, upload_id: strawberry.ID) -> list[Sender]:
        user_id = info.context.user_id
        async with info.context.resources.sessionmaker() as session:
            try:
                found = await upload_service.senders(session, user_id, upload_id)
            except ServiceError:
                return []
        return [
            Sender(name=s.name, message_count=s.message_count, is_self=s.is_self) for s in found
        ]


@strawberry.type
class UploadMutations:
    @strawberry.mutation(
        description="Upload a chat export (GraphQL multipart request); parsing starts at once."
    )
    async def upload_chat(
        self,
        info: Info,
        file: FileUpload,
        self_name: str | None = None,
        timezone: str | None = None,
    ) -> UploadChatPayload:
        user_id = info.context.user_id
        if not isinstance(file, UploadFile):
            error = InvalidInput("`file` must be a file part of a multipart request", field="file")
            return user_error(error)  # type: ignore[return-value]
        try:
            upload, job = await upload_service.create_upload(
                info.context.resources,
                user_id,
                filename=file.filename,
                content_type=file.content_type,
                chunks=upload_service.form_file_chunks(file),
                self_name=self_name,
                timezone=timezone,
            )
        except ServiceError as error:
            return user_error(error)  # type: ignore[return-value]
        except StorageError as error:
            return user_error(Unavailable(f"storage failed: {error}", field="file"))  # type: ignore[return-value]
        finally:
            await file.close()
        return UploadChatSuccess(upload=Upload.from_row(upload), job=Job.from_row(job))

    @strawberry.mutation(description="Parse an upload again (its messages are replaced).")
    async def reparse_upload(self, info: Info, id: strawberry.ID) -> ReparseUploadPayload:
        user_id = info.context.user_id
        try:
            upload, job = await upload_service.reparse(info.context.resources, user_id, id)
        except ServiceError as error:
            return user_error(error)  # type: ignore[return-value]
        return ReparseUploadSuccess(upload=Upload.from_row(upload), job=Job.from_row(job))

    @strawberry.mutation(description="Delete an upload with its messages, labels and file.")
    async def delete_upload(self, info: Info, id: strawberry.ID) -> DeleteUploadPayload:
        user_id = info.context.user_id
        try:
            await upload_service.delete_upload(info.context.resources, user_id, id)
        except ServiceError as error:
            return user_error(error)  # type: ignore[return-value]
        return DeleteUploadSuccess(id=id)

    @strawberry.mutation(description="Say which sender is you: their messages become isSelf.")
    async def set_self(self, info: Info, upload_id: strawberry.ID, sender: str) -> SetSelfPayload:
        user_id = info.context.user_id
        try:
            async with info.context.resources.sessionmaker() as session:
                upload = await upload_service.set_self(session, user_id, upload_id, sender)
        except ServiceError as error:
            return user_error(error)  # type: ignore[return-value]
        return SetSelfSuccess(upload=Upload.from_row(upload))
