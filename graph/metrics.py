"""Counts and times every GraphQL operation by name, type and outcome (Prometheus)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

from strawberry.extensions import SchemaExtension

from server.observability import GRAPHQL_OPERATIONS, GRAPHQL_SECONDS

# Operation names come from clients: only so many distinct ones become label values, so that
# a client sending random names cannot grow the metrics without bound.
MAX_NAMES = 200
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_named: set[str] = set()


def metric_name(name: str | None) -> str:
    """The operation's name as a label value: "anonymous", the name, or "other"."""
    if name is None:
        return "anonymous"
    if name in _named:
        return name
    if len(_named) < MAX_NAMES and _NAME.fullmatch(name):
        _named.add(name)
        return name
    return "other"


class OperationMetrics(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        context = self.execution_context
        name = metric_name(context.operation_name)
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
