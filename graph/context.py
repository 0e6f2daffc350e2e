"""The per-request context every resolver gets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import strawberry
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from server.auth import Principal
from server.resources import Resources

if TYPE_CHECKING:
    from graph.loaders import Loaders


@dataclass
class Context:
    request: Request | WebSocket
    response: Response | WebSocket | None
    resources: Resources
    principal: Principal | None = None
    auth_error: str | None = None
    connection_params: dict[str, Any] | None = None
    _loaders: Loaders | None = field(default=None, repr=False)

    @property
    def user_id(self) -> str:
        """The caller's id; resolvers that need a caller fail here with UNAUTHENTICATED."""
        if self.principal is None:
            raise GraphQLError(
                self.auth_error or "authentication required: send 'Authorization: Bearer <token>'",
                extensions={"code": "UNAUTHENTICATED"},
            )
        return self.principal.user_id

    @property
    def loaders(self) -> Loaders:
        if self._loaders is None:
            from graph.loaders import Loaders

            self._loaders = Loaders(self.resources.sessionmaker, self.user_id)
        return self._loaders


Info = strawberry.Info[Context, None]
