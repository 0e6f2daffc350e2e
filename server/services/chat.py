"""Chat: validate a request, queue it for the inference worker, stream back its chunks.

Every interface (the GraphQL subscription, SSE, the OpenAI-compatible routes) goes through
`stream`. It subscribes to the request's channel before queueing the request, so no chunk is
missed; when the caller stops reading early (a client went away), the worker is told to cancel.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from server.chat import ChatUnavailable
from server.db.repositories import ModelRepository
from server.db.types import new_id
from server.events import chat_channel
from server.observability import TOKENS
from server.resources import Resources
from server.services.errors import InvalidInput, Unavailable
from server.services.models import ready_model

ROLES = ("system", "user", "assistant")
MAX_MESSAGES = 200
MAX_CHARS = 200_000
MAX_STOP = 8


@dataclass(frozen=True, slots=True)
class ChatParams:
    max_tokens: int | None = 512
    temperature: float = 0.7
    top_p: float = 1.0
    stop: Sequence[str] = field(default=())
    seed: int | None = None


def check_messages(messages: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    if not 1 <= len(messages) <= MAX_MESSAGES:
        raise InvalidInput(f"send 1 to {MAX_MESSAGES} messages", field="messages")
    checked = []
    total = 0
    for message in messages:
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise InvalidInput(f"a message role is one of {', '.join(ROLES)}", field="messages")
        if not isinstance(content, str):
            raise InvalidInput("a message content is text", field="messages")
        total += len(content)
        checked.append({"role": str(role), "content": content})
    if total > MAX_CHARS:
        raise InvalidInput(
            f"the conversation is longer than {MAX_CHARS} characters", field="messages"
        )
    return checked


def params_from_json(
    body: Mapping[str, Any], *, max_tokens: int | None, temperature: float
) -> ChatParams:
    """ChatParams from a JSON request body (the REST and OpenAI routes), with its types checked;
    `max_tokens` and `temperature` are the route's defaults."""

    def number(name: str, default: float) -> float:
        value = body.get(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInput(f"`{name}` must be a number", field=name)
        try:
            return float(value)
        except OverflowError:
            raise InvalidInput(f"`{name}` is out of range", field=name) from None

    def integer(name: str, value: object) -> int | None:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise InvalidInput(f"`{name}` must be an integer", field=name)
        return value

    stop = body.get("stop") or ()
    if isinstance(stop, str):
        stop = (stop,)
    if not isinstance(stop, list | tuple):
        raise InvalidInput("`stop` is a string or a list of strings", field="stop")
    tokens = body.get("max_completion_tokens", body.get("max_tokens", max_tokens))
    return ChatParams(
        max_tokens=integer("max_tokens", tokens),
        temperature=number("temperature", temperature),
        top_p=number("top_p", 1.0),
        stop=tuple(stop),
        seed=integer("seed", body.get("seed")),
    )


def check_params(params: ChatParams) -> dict[str, Any]:
    if params.max_tokens is not None and not 1 <= params.max_tokens <= 32768:
        raise InvalidInput("maxTokens must be from 1 to 32768", field="maxTokens")
    if not 0 <= params.temperature <= 5:
        raise InvalidInput("temperature must be from 0 to 5", field="temperature")
    if not 0 < params.top_p <= 1:
        raise InvalidInput("topP must be above 0 and at most 1", field="topP")
    stop = list(params.stop)
    if len(stop) > MAX_STOP or not all(isinstance(s, str) and 0 < len(s) <= 100 for s in stop):
        raise InvalidInput(f"up to {MAX_STOP} stop sequences of 1 to 100 characters", field="stop")
    if params.seed is not None and not 0 <= params.seed < 2**63:
        raise InvalidInput("seed must be from 0 to 2**63 - 1", field="seed")
    return {
        "max_tokens": params.max_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "stop": stop,
        "seed": params.seed,
    }


async def prepare(
    resources: Resources,
    user_id: str,
    model_id: str,
    messages: Sequence[dict[str, Any]],
    params: ChatParams,
) -> dict[str, Any]:
    """The queued request for the caller's ready model (errors are raised before streaming)."""
    checked = check_messages(messages)
    checked_params = check_params(params)
    async with resources.sessionmaker() as session:
        model = await ready_model(session, user_id, model_id)
    return {
        "id": new_id(),
        "user_id": user_id,
        "model_id": model.id,
        "model_name": model.name,
        "base_model": model.base_model,
        "method": model.method,
        "artifact_key": model.object_key,
        "messages": checked,
        "params": checked_params,
        "deadline": time.time() + resources.settings.inference_timeout_seconds,
    }


async def inference_status(resources: Resources, user_id: str) -> tuple[dict[str, Any] | None, int]:
    """The worker's report as one user may see it (None when it is offline), and the queue.

    What is resident is counted, and only the caller's own models are named: the raw report
    holds cache paths and ids of every user's models.
    """
    status = await resources.chat.status()
    waiting = await resources.chat.waiting()
    if not isinstance(status, dict):
        return None, waiting
    loaded = status.get("loaded")
    loaded = loaded if isinstance(loaded, dict) else {}
    bases = [b for b in loaded.get("bases") or () if isinstance(b, dict)]
    adapters = [a for b in bases for a in b.get("adapters") or () if isinstance(a, dict)]
    # A full fine-tune is resident as a base in its cache folder, named by the model's id.
    held = {str(a.get("id")) for a in adapters} | {PurePath(str(b.get("path"))).name for b in bases}
    async with resources.sessionmaker() as session:
        yours = sorted(await ModelRepository(session, user_id).get_many(sorted(held)))
    return {
        "busy": bool(status.get("busy")),
        "served": status.get("served"),
        "reported_at": status.get("reported_at"),
        "device": loaded.get("device"),
        "max_bases": loaded.get("max_bases"),
        "max_adapters": loaded.get("max_adapters"),
        "bases": len(bases),
        "adapters": len(adapters),
        "your_models": yours,
    }, waiting


async def stream(resources: Resources, request: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    """The request's chunks: {delta, done} pieces, then one with finish_reason, usage, error."""
    request_id = request["id"]
    timeout = resources.settings.inference_timeout_seconds
    finished = False
    async with resources.events.subscribe(chat_channel(request_id)) as events:
        try:
            await resources.chat.submit(request)
        except ChatUnavailable as error:
            raise Unavailable(str(error), field="modelId") from None
        try:
            while True:
                event = await events.next(timeout=timeout)
                if event is None:
                    yield {
                        "delta": "",
                        "done": True,
                        "finish_reason": "error",
                        "usage": {"prompt_tokens": 0, "completion_tokens": 0},
                        "error": f"no answer from the inference worker within {timeout:g} s",
                    }
                    return
                finished = bool(event.get("done"))
                if finished and event.get("usage"):
                    TOKENS.inc(int(event["usage"].get("completion_tokens", 0)))
                yield event
                if finished:
                    return
        finally:
            if not finished:
                # The caller went away or timed out: free the worker.
                await asyncio.shield(resources.chat.cancel(request_id))
