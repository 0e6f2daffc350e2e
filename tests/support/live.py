"""The app served by a real uvicorn on loopback, and GraphQL clients over HTTP and WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import uvicorn
import websockets
from starlette.applications import Starlette

from server.resources import Resources
from tests.support.services import free_port


class LiveServer:
    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            ws="websockets-sansio",
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self.task: asyncio.Task[None] | None = None

    @property
    def resources(self) -> Resources:
        resources: Resources = self.app.state.resources
        return resources

    async def start(self) -> None:
        self.task = asyncio.create_task(self.server.serve())
        for _ in range(600):
            if self.server.started:
                return
            if self.task.done():
                self.task.result()
                raise RuntimeError("uvicorn stopped during start-up")
            await asyncio.sleep(0.05)
        raise RuntimeError("uvicorn did not start")

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await self.task


class GraphQLError(AssertionError):
    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(json.dumps(errors, ensure_ascii=False))
        self.errors = errors


class Client:
    """A user of the API: an HTTP client with an optional bearer token."""

    def __init__(
        self, server: LiveServer, http: httpx.AsyncClient, token: str | None = None
    ) -> None:
        self.server = server
        self.http = http
        self.token = token
        self.user_id: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def post(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=self.headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def query(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run an operation and return its data; any top-level error fails the test."""
        body = await self.post(query, variables)
        if body.get("errors"):
            raise GraphQLError(body["errors"])
        data: dict[str, Any] = body["data"]
        return data

    async def register(self, name: str = "测试用户") -> Client:
        email = f"{uuid.uuid4().hex[:12]}@example.com"
        data = await self.query(
            """mutation($email: String!, $name: String!) {
                 register(email: $email, password: "correct horse battery", name: $name) {
                   __typename ... on AuthSuccess { token user { id } }
                   ... on UserError { message code }
                 }
               }""",
            {"email": email, "name": name},
        )
        result = data["register"]
        assert result["__typename"] == "AuthSuccess", result
        user = Client(self.server, self.http, result["token"])
        user.user_id = result["user"]["id"]
        user.email = email  # type: ignore[attr-defined]
        return user

    @contextlib.asynccontextmanager
    async def subscribe(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None
    ) -> AsyncIterator[Subscription]:
        url = self.server.url.replace("http", "ws", 1) + "/graphql"
        async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as socket:  # type: ignore[list-item]
            payload = {"Authorization": f"Bearer {token or self.token}"}
            await socket.send(json.dumps({"type": "connection_init", "payload": payload}))
            ack = json.loads(await asyncio.wait_for(socket.recv(), 10))
            assert ack["type"] == "connection_ack", ack
            await socket.send(
                json.dumps(
                    {
                        "id": "1",
                        "type": "subscribe",
                        "payload": {"query": query, "variables": variables or {}},
                    }
                )
            )
            yield Subscription(socket)


class Subscription:
    def __init__(self, socket: Any) -> None:
        self.socket = socket

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        """Each `next` payload's data; ends at `complete`; an `error` message raises."""
        while True:
            message = json.loads(await asyncio.wait_for(self.socket.recv(), 60))
            if message["type"] == "next":
                if message["payload"].get("errors"):
                    raise GraphQLError(message["payload"]["errors"])
                yield message["payload"]["data"]
            elif message["type"] == "error":
                raise GraphQLError(message["payload"])
            elif message["type"] == "complete":
                return
            elif message["type"] == "ping":
                await self.socket.send(json.dumps({"type": "pong"}))
