"""The OpenAI-compatible chat API, so that every existing client works against weft:
POST /v1/chat/completions (streamed as server-sent events, or one JSON answer) and GET
/v1/models (the caller's ready models). `model` is a model id, or the name of one of the
caller's ready models. Errors have OpenAI's shape: {"error": {message, type, param, code}}.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.auth import InvalidCredentials, Principal, authenticate, bearer
from server.db.models import Model
from server.db.repositories import ModelRepository
from server.resources import Resources
from server.rest.responses import JSON
from server.services import chat as chat_service
from server.services.errors import InvalidInput, NotFound, ServiceError

ERROR_TYPES = {
    "INVALID_INPUT": (400, "invalid_request_error"),
    "NOT_FOUND": (404, "invalid_request_error"),
    "CONFLICT": (409, "invalid_request_error"),
    "UNAUTHENTICATED": (401, "authentication_error"),
    "RATE_LIMITED": (429, "rate_limit_error"),
    "UNAVAILABLE": (503, "server_error"),
}


def openai_error(message: str, code: str, param: str | None = None) -> JSON:
    status, kind = ERROR_TYPES.get(code, (400, "invalid_request_error"))
    return JSON(
        {"error": {"message": message, "type": kind, "param": param, "code": code.lower()}},
        status_code=status,
    )


async def _principal(request: Request, resources: Resources) -> Principal:
    credential = bearer(request.headers.get("authorization"))
    if credential is None:
        raise InvalidCredentials("send your API key as 'Authorization: Bearer <key>'")
    return await authenticate(resources.settings, resources.sessionmaker, credential)


async def _model_id(resources: Resources, user_id: str, requested: object) -> str:
    if not isinstance(requested, str) or not requested:
        raise InvalidInput("`model` is required", field="model")
    async with resources.sessionmaker() as session:
        if await ModelRepository(session, user_id).get(requested) is not None:
            return requested
        by_name = await session.scalar(
            ModelRepository(session, user_id)
            .select()
            .where(Model.name == requested, Model.status == "ready")
            .order_by(Model.created_at.desc())
            .limit(1)
        )
    if by_name is None:
        raise NotFound(f"the model {requested!r} does not exist", field="model")
    return by_name.id


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise InvalidInput("`messages` is a list of {role, content}", field="messages")
    flat = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):  # content parts: keep the text ones
            texts = [part.get("text", "") for part in content if isinstance(part, dict)]
            if not all(isinstance(text, str) for text in texts):
                raise InvalidInput("a content part's text is a string", field="messages")
            content = "".join(texts)
        role = "system" if message.get("role") == "developer" else message.get("role")
        flat.append({"role": role, "content": content})
    return flat


async def chat_completions(request: Request) -> Response:
    resources: Resources = request.app.state.resources
    try:
        principal = await _principal(request, resources)
    except InvalidCredentials as error:
        return openai_error(str(error), "UNAUTHENTICATED")
    try:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            raise InvalidInput("the body is not JSON", field=None) from None
        if not isinstance(body, dict):
            raise InvalidInput("the body is a JSON object", field=None)
        model_id = await _model_id(resources, principal.user_id, body.get("model"))
        prepared = await chat_service.prepare(
            resources,
            principal.user_id,
            model_id,
            _messages(body),
            chat_service.params_from_json(body, max_tokens=None, temperature=1.0),
        )
    except ServiceError as error:
        return openai_error(error.message, error.code, error.field)
    completion_id = "chatcmpl-" + prepared["id"]
    created = int(time.time())
    model = str(body.get("model"))
    if body.get("stream"):
        options = body.get("stream_options") or {}
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        return EventSourceResponse(
            _stream(resources, prepared, completion_id, created, model, include_usage),
            ping=15,
        )
    text: list[str] = []
    final: dict[str, Any] = {}
    try:
        async for event in chat_service.stream(resources, prepared):
            if event.get("done"):
                final = event
            else:
                text.append(event["delta"])
    except ServiceError as error:
        return openai_error(error.message, error.code, error.field)
    if final.get("finish_reason") == "error":
        return openai_error(final.get("error") or "generation failed", "UNAVAILABLE")
    usage = final.get("usage") or {"prompt_tokens": 0, "completion_tokens": 0}
    return JSON(
        {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(text)},
                    "finish_reason": _reason(final.get("finish_reason")),
                    "logprobs": None,
                }
            ],
            "usage": {**usage, "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"]},
        }
    )


def _reason(reason: str | None) -> str:
    # OpenAI knows stop and length; a cancelled stream ended early, which clients read as stop.
    return "length" if reason == "length" else "stop"


async def _stream(
    resources: Resources,
    prepared: dict[str, Any],
    completion_id: str,
    created: int,
    model: str,
    include_usage: bool,
) -> AsyncIterator[dict[str, str]]:
    def chunk(delta: dict[str, Any], reason: str | None, **extra: Any) -> dict[str, str]:
        body = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": reason, "logprobs": None}],
            **extra,
        }
        return {"data": orjson.dumps(body).decode()}

    yield chunk({"role": "assistant", "content": ""}, None)
    try:
        async for event in chat_service.stream(resources, prepared):
            if not event.get("done"):
                yield chunk({"content": event["delta"]}, None)
                continue
            if event.get("finish_reason") == "error":
                error = {
                    "message": event.get("error") or "generation failed",
                    "type": "server_error",
                }
                yield {"data": orjson.dumps({"error": error}).decode()}
                break
            yield chunk({}, _reason(event.get("finish_reason")))
            if include_usage:
                usage = event.get("usage") or {"prompt_tokens": 0, "completion_tokens": 0}
                total = usage["prompt_tokens"] + usage["completion_tokens"]
                body = {
                    "id": completion_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [],
                    "usage": {**usage, "total_tokens": total},
                }
                yield {"data": orjson.dumps(body).decode()}
    except ServiceError as error:
        yield {
            "data": orjson.dumps(
                {"error": {"message": error.message, "type": "server_error"}}
            ).decode()
        }
    yield {"data": "[DONE]"}


async def list_models(request: Request) -> Response:
    resources: Resources = request.app.state.resources
    try:
        principal = await _principal(request, resources)
    except InvalidCredentials as error:
        return openai_error(str(error), "UNAUTHENTICATED")
    async with resources.sessionmaker() as session:
        statement = ModelRepository(session, principal.user_id).select()
        ready = statement.where(Model.status == "ready").order_by(Model.created_at.desc())
        rows = (await session.scalars(ready)).all()
    return JSON(
        {
            "object": "list",
            "data": [
                {
                    "id": row.id,
                    "object": "model",
                    "created": int(row.created_at.timestamp()),
                    "owned_by": "you",
                    "name": row.name,
                    "base_model": row.base_model,
                }
                for row in rows
            ],
        }
    )


routes = [
    Route("/chat/completions", chat_completions, methods=["POST"]),
    Route("/models", list_models, methods=["GET"]),
]
