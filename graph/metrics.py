"""Counts and times every GraphQL operation by name, type and outcome (Prometheus)."""

from __future__ import annotations

import time
from collections.abc import Iterator

from strawberry.extensions import SchemaExtension

from server.observability import GRAPHQL_OPERATIONS, GRAPHQL_SECONDS


class OperationMetrics(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        context = self.execution_context
        name = context.operation_name or "anonymous"
        try:
            kind = context.operation_type.value
        except Exception:  # an unparsable document has no operation type
            kind = "invalid"
        result = context.result
        failed = bool(context.pre_execution_errors) or bool(
            result is not None and getattr(result, "errors", None)
        )
        GRAPHQL_OPERATIONS.labels(name, kind, "error" if failed else "ok").inc()
        GRAPHQL_SECONDS.labels(name, kind).observe(time.perf_counter() - started)
