"""The Strawberry ASGI view: builds the context, authenticates HTTP and WebSocket callers,
and encodes responses with orjson (faster, and no \\u-escaping of Chinese text)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.types.unset import UnsetType

from graph.context import Context
from server.auth import InvalidCredentials, authenticate, bearer
from server.resources import Resources


class GraphQLView(GraphQL[Context, None]):
    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        resources: Resources = request.app.state.resources
        context = Context(request=request, response=response, resources=resources)
        await _authenticate(context, request.headers.get("authorization"))
        return context

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        params = context.connection_params or {}
        header = params.get("Authorization") or params.get("authorization")
        if header is None and isinstance(params.get("token"), str):
            header = f"Bearer {params['token']}"
        if header is not None:
            context.principal = None
            context.auth_error = None
            await _authenticate(context, str(header))
        if context.principal is None:
            message = (
                context.auth_error or "send {'Authorization': 'Bearer <token>'} in connection_init"
            )
            raise ConnectionRejectionError({"message": message, "code": "UNAUTHENTICATED"})
        return None

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data, default=_default)


async def _authenticate(context: Context, header: str | None) -> None:
    resources = context.resources
    try:
        credential = bearer(header)
        if credential is not None:
            context.principal = await authenticate(
                resources.settings, resources.sessionmaker, credential
            )
    except InvalidCredentials as error:
        context.auth_error = str(error)


def _default(value: Any) -> Any:
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")
