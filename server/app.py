"""The Starlette application: /graphql (queries, mutations, subscriptions, GraphiQL), /healthz,
the REST routes of /api/v1, and signed file downloads for the local object folder."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

from graph.schema import create_schema
from graph.view import GraphQLView
from server.limits import BodyLimit
from server.observability import CHAT_WAITING, QUEUE_DEPTH, RequestContext, metrics_endpoint
from server.queue import InProcessQueue
from server.resources import Resources
from server.rest import files, openai, v1
from server.rest.responses import JSON
from server.services.jobs import resume_unfinished
from server.settings import Settings
from tasks.inference import InferenceWorker
from tasks.registry import JOBS
from tasks.scratch import sweep_scratch

log = logging.getLogger(__name__)


async def healthz(request: Request) -> Response:
    resources: Resources = request.app.state.resources
    checks = await resources.health()
    ok = all(check["ok"] for check in checks.values())
    return JSON({"ok": ok, **checks}, status_code=200 if ok else 503)


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    view = GraphQLView(create_schema(settings), multipart_uploads_enabled=True)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        resources = await Resources.open(settings, JOBS)
        app.state.resources = resources
        stop = asyncio.Event()
        inference: asyncio.Task[None] | None = None
        if isinstance(resources.queue, InProcessQueue):
            # Embedded: this process is the worker, and cleans up after a killed one.
            await asyncio.to_thread(sweep_scratch, settings.cache_dir)
            resumed = await resume_unfinished(resources)
            if resumed:
                log.info("resumed %d unfinished jobs", resumed)
            # Embedded: the inference worker runs inside this process.
            inference = asyncio.create_task(InferenceWorker(resources, resources.chat).run(stop))
        try:
            yield
        finally:
            stop.set()
            if inference is not None:
                await inference
            await resources.close()

    routes: list[BaseRoute] = [
        Route("/healthz", healthz),
        Route("/graphql", view, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", view),
        Route("/files/{key:path}", files.download),
        Mount("/api/v1", routes=v1.routes),
        Mount("/v1", routes=openai.routes),
    ]

    async def collect() -> None:
        resources: Resources = app.state.resources
        for queue, depth in (await resources.queue.depths()).items():
            QUEUE_DEPTH.labels(queue).set(depth)
        CHAT_WAITING.set(await resources.chat.waiting())

    routes.append(Route("/metrics", metrics_endpoint(collect)))
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[
            Middleware(RequestContext),
            Middleware(BodyLimit, upload_limit=lambda: settings.max_upload_bytes),
        ],
    )
    app.state.settings = settings
    return app
