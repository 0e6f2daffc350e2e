"""Chat with a tuned model: the `chat` subscription, token by token, and `inferenceStatus`."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from enum import Enum
from typing import Any, cast

import strawberry
from graphql import GraphQLError
from strawberry.scalars import JSON

from graph.context import Info
from server.services import chat as chat_service
from server.services.errors import ServiceError


@strawberry.enum
class Role(Enum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"


@strawberry.enum
class FinishReason(Enum):
    STOP = "stop"
    LENGTH = "length"
    CANCELLED = "cancelled"
    ERROR = "error"


@strawberry.input
class ChatMessageInput:
    role: Role
    content: str


@strawberry.input
class ChatInput:
    model_id: strawberry.ID
    messages: list[ChatMessageInput]
    max_tokens: int | None = 512
    temperature: float = 0.7
    top_p: float = 1.0
    stop: list[str] = strawberry.field(default_factory=list)
    seed: int | None = None


@strawberry.type
class Usage:
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


@strawberry.type(description="A piece of the reply; the last one has done, finishReason, usage.")
class ChatChunk:
    delta: str
    done: bool
    finish_reason: FinishReason | None
    usage: Usage | None
    error: str | None

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> ChatChunk:
        usage = event.get("usage")
        reason = event.get("finish_reason")
        return cls(
            delta=event.get("delta", ""),
            done=bool(event.get("done")),
            finish_reason=FinishReason(reason) if reason else None,
            usage=Usage(
                prompt_tokens=usage["prompt_tokens"],
                completion_tokens=usage["completion_tokens"],
                total_tokens=usage["prompt_tokens"] + usage["completion_tokens"],
            )
            if usage
            else None,
            error=event.get("error"),
        )


@strawberry.type
class InferenceStatus:
    online: bool = strawberry.field(description="Whether a worker reported in the last 30 s.")
    waiting: int
    detail: JSON | None = strawberry.field(
        description="Whether the worker is busy, how many bases and adapters it holds, and "
        "which of your models are loaded (your_models)."
    )


@strawberry.type
class ChatQueries:
    @strawberry.field(description="The inference worker: online, queue length, loaded models.")
    async def inference_status(self, info: Info) -> InferenceStatus:
        status, waiting = await chat_service.inference_status(
            info.context.resources, info.context.user_id
        )
        return InferenceStatus(
            online=status is not None, waiting=waiting, detail=cast(JSON, status)
        )


@strawberry.type
class ChatSubscriptions:
    @strawberry.subscription(
        description="Chat with one of your ready models; the reply streams token by token and "
        "the subscription completes after the final chunk. Unsubscribing stops generation."
    )
    async def chat(self, info: Info, input: ChatInput) -> AsyncGenerator[ChatChunk, None]:
        user_id = info.context.user_id
        resources = info.context.resources
        params = chat_service.ChatParams(
            max_tokens=input.max_tokens,
            temperature=input.temperature,
            top_p=input.top_p,
            stop=tuple(input.stop),
            seed=input.seed,
        )
        messages = [{"role": m.role.value, "content": m.content} for m in input.messages]
        try:
            request = await chat_service.prepare(
                resources, user_id, input.model_id, messages, params
            )
            async for event in chat_service.stream(resources, request):
                yield ChatChunk.from_event(event)
        except ServiceError as error:
            raise GraphQLError(
                error.message, extensions={"code": error.code, "field": error.field}
            ) from None
