"""Request ids, structured logs and Prometheus metrics."""

from __future__ import annotations

import json
import logging

from graph.metrics import MAX_NAMES, metric_name
from server.observability import JsonFormatter, job_id, request_id
from tests.support.exports import memotrace_txt
from tests.support.live import Client
from tests.support.uploads import upload_and_parse


async def test_request_ids_travel_and_come_back(user: Client) -> None:
    response = await user.http.post(
        "/graphql",
        json={"query": "query Who { me { id } }"},
        headers={**user.headers, "X-Request-ID": "trace-123"},
    )
    assert response.headers["x-request-id"] == "trace-123"
    fresh = await user.http.get("/healthz")
    assert len(fresh.headers["x-request-id"]) == 32


async def test_metrics_count_requests_operations_and_jobs(user: Client) -> None:
    await upload_and_parse(user, memotrace_txt(5))
    await user.query("query PageOfUploads { uploads(first: 5) { totalCount } }")
    text = (await user.http.get("/metrics")).text
    assert 'weft_http_requests_total{method="POST",route="/graphql",status="200"}' in text
    assert (
        'weft_graphql_operations_total{operation="PageOfUploads",status="ok",type="query"}' in text
    )
    assert "weft_graphql_operation_seconds_bucket" in text
    assert 'weft_queue_depth{queue="parse"}' in text
    if user.server.resources.settings.uses_redis:
        return  # jobs ran in the arq workers: their metrics live in those processes
    assert 'weft_jobs_total{kind="parse_upload",status="succeeded"}' in text
    assert 'weft_job_seconds_count{kind="parse_upload"}' in text


def test_json_log_lines_carry_request_and_job_ids() -> None:
    record = logging.LogRecord("weft.test", logging.INFO, __file__, 1, "parsed %d", (3,), None)
    first, second = request_id.set("req-1"), job_id.set("job-9")
    try:
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id.reset(first)
        job_id.reset(second)
    assert line["message"] == "parsed 3"
    assert line["request_id"] == "req-1"
    assert line["job_id"] == "job-9"
    assert line["level"] == "info"


def test_client_chosen_operation_names_are_bounded() -> None:
    assert metric_name(None) == "anonymous"
    assert metric_name("x" * 65) == "other"
    assert metric_name("名字") == "other"
    names = {metric_name(f"Op{n}") for n in range(MAX_NAMES * 2)}
    assert "other" in names
    assert len(names) <= MAX_NAMES + 1
    assert metric_name("Op0") == "Op0"  # a name already counted keeps its label
