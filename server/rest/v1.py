"""The seed document's REST routes, as thin adapters over the same services as GraphQL:
same bearer auth, same limits, same error codes (as JSON with a matching HTTP status)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

import orjson
from sse_starlette import EventSourceResponse
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.auth import InvalidCredentials, Principal, authenticate, bearer
from server.db.models import Upload
from server.db.repositories import UploadRepository
from server.resources import Resources
from server.rest.responses import JSON
from server.services import chat as chat_service
from server.services import messages as message_service
from server.services import models as model_service
from server.services import uploads as upload_service
from server.services.errors import (
    InvalidInput,
    NotFound,
    ServiceError,
    Unauthenticated,
    Unavailable,
)
from server.services.messages import LabelCondition, MessageFilter
from server.storage import StorageError

STATUS = {
    "NOT_FOUND": 404,
    "INVALID_INPUT": 422,
    "CONFLICT": 409,
    "TOO_LARGE": 413,
    "UNAUTHENTICATED": 401,
    "RATE_LIMITED": 429,
    "UNAVAILABLE": 503,
}

Handler = Callable[[Request, Resources, Principal], Awaitable[Response]]


def error_response(error: ServiceError) -> JSON:
    body: dict[str, Any] = {"code": error.code, "message": error.message, "field": error.field}
    headers = {}
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(int(retry_after) + 1)
    if error.code == "UNAUTHENTICATED":
        headers["WWW-Authenticate"] = "Bearer"
    return JSON({"error": body}, status_code=STATUS.get(error.code, 400), headers=headers)


def authenticated(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        resources: Resources = request.app.state.resources
        try:
            credential = bearer(request.headers.get("authorization"))
            if credential is None:
                raise InvalidCredentials(
                    "authentication required: send 'Authorization: Bearer <token>'"
                )
            principal = await authenticate(resources.settings, resources.sessionmaker, credential)
        except InvalidCredentials as error:
            return error_response(Unauthenticated(str(error)))
        try:
            return await handler(request, resources, principal)
        except ServiceError as error:
            return error_response(error)

    return endpoint


def upload_json(upload: Upload) -> dict[str, Any]:
    return {
        "id": upload.id,
        "filename": upload.filename,
        "size": upload.size,
        "sha256": upload.sha256,
        "status": upload.status,
        "error": upload.error,
        "format": upload.format,
        "timezone": upload.timezone,
        "self_name": upload.self_name,
        "message_count": upload.message_count,
        "created_at": upload.created_at.isoformat(),
        "parsed_at": upload.parsed_at.isoformat() if upload.parsed_at else None,
    }


@authenticated
async def create_upload(request: Request, resources: Resources, principal: Principal) -> Response:
    async with request.form(max_files=1, max_fields=10) as form:
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise InvalidInput("send the export as the multipart form field `file`", field="file")
        self_name = form.get("self_name")
        timezone = form.get("timezone")
        try:
            upload, job = await upload_service.create_upload(
                resources,
                principal.user_id,
                filename=file.filename,
                content_type=file.content_type,
                chunks=upload_service.form_file_chunks(file),
                self_name=self_name if isinstance(self_name, str) and self_name else None,
                timezone=timezone if isinstance(timezone, str) and timezone else None,
            )
        except StorageError as error:
            raise Unavailable(f"storage failed: {error}", field="file") from error
    return JSON({"upload": upload_json(upload), "job_id": job.id}, status_code=201)


@authenticated
async def upload_status(request: Request, resources: Resources, principal: Principal) -> Response:
    async with resources.sessionmaker() as session:
        upload = await UploadRepository(session, principal.user_id).get(
            request.path_params["upload_id"]
        )
    if upload is None:
        raise NotFound("no such upload", field="upload_id")
    return JSON(upload_json(upload))


def _int(value: str | None, field: str, default: int) -> int:
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise InvalidInput(f"`{field}` must be an integer", field=field) from None


def _time(value: str | None, field: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"`{field}` must be an ISO 8601 time", field=field) from None
    return message_service.check_time(parsed, field)


@authenticated
async def list_messages(request: Request, resources: Resources, principal: Principal) -> Response:
    query = request.query_params
    upload_id = query.get("upload_id")
    if not upload_id:
        raise InvalidInput("`upload_id` is required", field="upload_id")
    first = _int(query.get("first") or query.get("limit"), "first", 100)
    maximum = resources.settings.max_page_size
    if not 1 <= first <= maximum:
        raise InvalidInput(f"`first` must be between 1 and {maximum}", field="first")
    labels = []
    for spec in query.getlist("label"):
        key, sep, value = spec.partition("=")
        negate = key.endswith("!")
        if not sep or not key.rstrip("!") or not value:
            raise InvalidInput("`label` must look like key=value or key!=value", field="label")
        labels.append(LabelCondition(key.rstrip("!"), value, negate))
    where = MessageFilter(
        sender=query.get("sender"),
        kind=query.get("kind"),
        since=_time(query.get("since"), "since"),
        until=_time(query.get("until"), "until"),
        search=query.get("search") or None,
        labels=tuple(labels),
    )
    async with resources.sessionmaker() as session:
        if await UploadRepository(session, principal.user_id).get(upload_id) is None:
            raise NotFound("no such upload", field="upload_id")
        result = await message_service.page(
            session, principal.user_id, upload_id, where, first=first, after=query.get("after")
        )
        total = await message_service.count(session, principal.user_id, upload_id, where)
    items = [
        {
            "id": row["id"],
            "seq": row["seq"],
            "sender": row["sender"],
            "timestamp": message_service.local_time(row).isoformat(),
            "text": row["text"],
            "kind": row["kind"],
            "is_self": row["is_self"],
            "raw": row["raw"],
        }
        for row in result.rows
    ]
    next_cursor = message_service.encode_cursor(result.rows[-1]["seq"]) if result.has_next else None
    return JSON(
        {"items": items, "total": total, "next_cursor": next_cursor, "has_next": result.has_next}
    )


TRAIN_FIELDS = (
    "method",
    "lora_r",
    "lora_alpha",
    "lora_dropout",
    "target_modules",
    "epochs",
    "max_steps",
    "learning_rate",
    "lr_scheduler",
    "warmup_ratio",
    "batch_size",
    "gradient_accumulation",
    "max_seq_length",
    "seed",
    "eval_every_steps",
    "logging_steps",
    "gradient_checkpointing",
)


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise InvalidInput("send a JSON object", field="body") from None
    if not isinstance(body, dict):
        raise InvalidInput("send a JSON object", field="body")
    return body


@authenticated
async def start_training(request: Request, resources: Resources, principal: Principal) -> Response:
    """The same input as GraphQL's trainModel, as JSON with snake_case names."""
    body = await _json_object(request)
    unknown = sorted(set(body) - {"name", "dataset_id", "base_model", *TRAIN_FIELDS})
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]!r}", field=unknown[0])
    for field in ("name", "dataset_id", "base_model"):
        if not isinstance(body.get(field), str):
            raise InvalidInput(f"`{field}` is required", field=field)
    if isinstance(body.get("method"), str):
        body["method"] = body["method"].lower()
    model, job = await model_service.start_training(
        resources,
        principal.user_id,
        name=body["name"],
        dataset_id=body["dataset_id"],
        base_model=body["base_model"],
        options={field: body.get(field) for field in TRAIN_FIELDS},
    )
    return JSON({"model_id": model.id, "job_id": job.id, "status": model.status}, status_code=202)


@authenticated
async def model_chat(request: Request, resources: Resources, principal: Principal) -> Response:
    """{model_id, messages, stream, max_tokens, temperature, top_p, stop, seed}: server-sent
    events of {delta, done, finish_reason, usage, error} when stream is true, else one answer."""
    body = await _json_object(request)
    model_id = body.get("model_id")
    if not isinstance(model_id, str):
        raise InvalidInput("`model_id` is required", field="model_id")
    messages = body.get("messages")
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise InvalidInput("`messages` is a list of {role, content}", field="messages")
    params = chat_service.params_from_json(body, max_tokens=512, temperature=0.7)
    prepared = await chat_service.prepare(resources, principal.user_id, model_id, messages, params)
    if body.get("stream"):

        async def events() -> AsyncIterator[dict[str, str]]:
            try:
                async for event in chat_service.stream(resources, prepared):
                    yield {"event": "chunk", "data": orjson.dumps(event).decode()}
            except ServiceError as error:
                failure = {"code": error.code, "message": error.message}
                yield {"event": "error", "data": orjson.dumps(failure).decode()}

        return EventSourceResponse(events(), ping=15)
    text: list[str] = []
    final: dict[str, Any] = {}
    async for event in chat_service.stream(resources, prepared):
        if event.get("done"):
            final = event
        else:
            text.append(event["delta"])
    return JSON(
        {
            "reply": "".join(text),
            "finish_reason": final.get("finish_reason"),
            "usage": final.get("usage"),
            "error": final.get("error"),
        },
        status_code=503 if final.get("finish_reason") == "error" else 200,
    )


routes = [
    Route("/model/chat", model_chat, methods=["POST"]),
    Route("/train/start", start_training, methods=["POST"]),
    Route("/uploads", create_upload, methods=["POST"]),
    Route("/uploads/{upload_id}/status", upload_status, methods=["GET"]),
    Route("/messages", list_messages, methods=["GET"]),
]
