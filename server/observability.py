"""Logs and metrics.

Logs: one line per record, JSON when WEFT_LOG_JSON is on, carrying the request id (from the
X-Request-ID header, or a new one) and the job id of the work in hand. Metrics: Prometheus
counters and histograms for HTTP requests, GraphQL operations, jobs and generated tokens, and
the queue depth read at scrape time. Every process exposes its own: the API at /metrics, and
workers on WEFT_METRICS_PORT.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
job_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("job_id", default=None)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
JOB_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600)

HTTP_REQUESTS = Counter(
    "weft_http_requests_total", "HTTP requests by route and status", ["method", "route", "status"]
)
HTTP_SECONDS = Histogram(
    "weft_http_request_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
GRAPHQL_OPERATIONS = Counter(
    "weft_graphql_operations_total",
    "GraphQL operations by name, type and outcome",
    ["operation", "type", "status"],
)
GRAPHQL_SECONDS = Histogram(
    "weft_graphql_operation_seconds",
    "GraphQL operation latency",
    ["operation", "type"],
    buckets=LATENCY_BUCKETS,
)
JOBS = Counter("weft_jobs_total", "Jobs run, by kind and final status", ["kind", "status"])
JOB_SECONDS = Histogram("weft_job_seconds", "Job durations", ["kind"], buckets=JOB_BUCKETS)
QUEUE_DEPTH = Gauge("weft_queue_depth", "Jobs waiting per queue", ["queue"])
CHAT_WAITING = Gauge("weft_chat_requests_waiting", "Chat requests waiting for the worker")
TOKENS = Counter("weft_tokens_generated_total", "Completion tokens streamed to clients")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if (rid := request_id.get()) is not None:
            entry["request_id"] = rid
        if (jid := job_id.get()) is not None:
            entry["job_id"] = jid
        for key in ("method", "path", "status", "duration_ms", "client"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["error"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return orjson.dumps(entry, default=str).decode()


class ContextFormatter(logging.Formatter):
    """Plain text, with the request or job id in front when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        ids = [f"req={rid}" for rid in [request_id.get()] if rid] + [
            f"job={jid}" for jid in [job_id.get()] if jid
        ]
        return f"[{' '.join(ids)}] {text}" if ids else text


def configure_logging(level: str, *, json: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if json else ContextFormatter("%(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("alembic", "aiobotocore", "botocore", "httpx", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


access_log = logging.getLogger("weft.access")


class RequestContext:
    """Gives every HTTP request an id (X-Request-ID in, and back out), times it, counts it by
    route, and writes one access-log line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            token = request_id.set(_incoming_id(scope))
            try:
                await self.app(scope, receive, send)
            finally:
                request_id.reset(token)
            return
        rid = _incoming_id(scope)
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = _route(scope)
            method = scope["method"]
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_SECONDS.labels(method, route).observe(elapsed)
            client = scope.get("client")
            access_log.info(
                "%s %s %s %.1f ms",
                method,
                scope["path"],
                status,
                elapsed * 1000,
                extra={
                    "method": method,
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                    "client": client[0] if client else None,
                },
            )
            request_id.reset(token)


def _incoming_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate = str(value.decode("latin-1"))[:64]
            if candidate.isprintable() and candidate:
                return candidate
    return uuid.uuid4().hex


def _route(scope: Scope) -> str:
    """The route's template (/api/v1/uploads/{upload_id}/status), not the raw path, so that
    ids never become label values."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return str(scope.get("root_path", "")) + path
    return "unmatched"


def metrics_endpoint(
    collect: Callable[[], Awaitable[None]],
) -> Callable[[Request], Awaitable[Response]]:
    async def metrics(request: Request) -> Response:
        await collect()
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return metrics
