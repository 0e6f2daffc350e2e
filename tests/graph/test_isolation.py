"""Tenant isolation: every query, mutation, subscription and route, called by user B with user
A's ids, finds nothing and changes nothing. A new operation without a row here fails the test."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import openai
import pytest

from graph.schema import schema
from tests.support.exports import memotrace_txt
from tests.support.live import Client, GraphQLError
from tests.support.uploads import upload_and_parse, wait_for_job

# Operations with no ids of another user to point at.
NO_IDS = {
    "health",
    "me",
    "labelRules",
    "inferenceStatus",
    "register",
    "login",
    "createApiToken",
    "uploadChat",
}


@dataclass
class Owned:
    """What user A owns."""

    upload: str
    message: str
    job: str
    api_token: str
    classifier: str
    dataset: str
    model: str


async def own_everything(a: Client) -> Owned:
    upload = await upload_and_parse(a, memotrace_txt(12))
    page = await a.query(
        "query($u: ID!) { messages(uploadId: $u, first: 1) { edges { node { id } } } }",
        {"u": upload},
    )
    labeled = await a.query(
        """mutation($u: ID!) {
             labelMessages(uploadId: $u) { ... on LabelMessagesSuccess { job { id } } }
           }""",
        {"u": upload},
    )
    job = labeled["labelMessages"]["job"]["id"]
    await wait_for_job(a, job)
    token = await a.query(
        'mutation { createApiToken(name: "a") { ... on CreateApiTokenSuccess { token { id } } } }'
    )
    classifier = await a.query(
        """mutation { trainLabeler(name: "a", encoder: "hashing") {
             ... on TrainLabelerSuccess { classifier { id } job { id } } } }"""
    )
    await wait_for_job(a, classifier["trainLabeler"]["job"]["id"])
    dataset = await a.query(
        """mutation($u: ID!) { createDataset(input: {name: "a", uploadIds: [$u], persona: ["我"]}) {
             ... on CreateDatasetSuccess { dataset { id } job { id } } } }""",
        {"u": upload},
    )
    await wait_for_job(a, dataset["createDataset"]["job"]["id"])
    model = await a.query(
        """mutation($d: ID!) {
           trainModel(input: {name: "a", datasetId: $d, baseModel: "/nonexistent"}) {
             ... on TrainModelSuccess { model { id } job { id } } } }""",
        {"d": dataset["createDataset"]["dataset"]["id"]},
    )
    await wait_for_job(a, model["trainModel"]["job"]["id"])
    return Owned(
        upload=upload,
        message=page["messages"]["edges"][0]["node"]["id"],
        job=job,
        api_token=token["createApiToken"]["token"]["id"],
        classifier=classifier["trainLabeler"]["classifier"]["id"],
        dataset=dataset["createDataset"]["dataset"]["id"],
        model=model["trainModel"]["model"]["id"],
    )


Check = Callable[[Client, Owned], Awaitable[None]]


def query_is(
    document: str, expected: Any, variables: Callable[[Owned], dict[str, Any]] | None = None
) -> Check:
    async def check(b: Client, a: Owned) -> None:
        data = await b.query(document, variables(a) if variables else {})
        assert next(iter(data.values())) == expected, (document, data)

    return check


def lists_none_of_mine(document: str, path: Callable[[dict[str, Any]], list[str]]) -> Check:
    async def check(b: Client, a: Owned) -> None:
        ids = set(path(await b.query(document)))
        assert not ids & set(vars(a).values()), (document, ids)

    return check


def refused(document: str, variables: Callable[[Owned], dict[str, Any]]) -> Check:
    async def check(b: Client, a: Owned) -> None:
        data = await b.query(document, variables(a))
        payload = next(iter(data.values()))
        assert payload["__typename"] == "NotFoundError", (document, payload)

    return check


def subscription_refused(document: str, variables: Callable[[Owned], dict[str, Any]]) -> Check:
    async def check(b: Client, a: Owned) -> None:
        async with b.subscribe(document, variables(a)) as stream:
            with pytest.raises(GraphQLError, match="no such"):
                await anext(aiter(stream))

    return check


GRAPHQL: dict[str, Check] = {
    "apiTokens": lists_none_of_mine(
        "{ apiTokens { id } }", lambda d: [t["id"] for t in d["apiTokens"]]
    ),
    "uploads": lists_none_of_mine(
        "{ uploads(first: 100) { edges { node { id } } } }",
        lambda d: [e["node"]["id"] for e in d["uploads"]["edges"]],
    ),
    "upload": query_is(
        "query($id: ID!) { upload(id: $id) { id } }", None, lambda a: {"id": a.upload}
    ),
    "senders": query_is(
        "query($id: ID!) { senders(uploadId: $id) { name } }", [], lambda a: {"id": a.upload}
    ),
    "messages": query_is(
        "query($id: ID!) { messages(uploadId: $id) { totalCount } }",
        {"totalCount": 0},
        lambda a: {"id": a.upload},
    ),
    "message": query_is(
        "query($id: ID!) { message(id: $id) { id } }", None, lambda a: {"id": a.message}
    ),
    "labelStats": query_is(
        "query($id: ID!) { labelStats(uploadId: $id) { totalMessages } }",
        None,
        lambda a: {"id": a.upload},
    ),
    "classifiers": lists_none_of_mine(
        "{ classifiers { id } }", lambda d: [c["id"] for c in d["classifiers"]]
    ),
    "datasets": lists_none_of_mine(
        "{ datasets { id } }", lambda d: [x["id"] for x in d["datasets"]]
    ),
    "dataset": query_is(
        "query($id: ID!) { dataset(id: $id) { id } }", None, lambda a: {"id": a.dataset}
    ),
    "datasetPreview": query_is(
        "query($id: ID!) { datasetPreview(id: $id) { split } }", [], lambda a: {"id": a.dataset}
    ),
    "models": lists_none_of_mine("{ models { id } }", lambda d: [m["id"] for m in d["models"]]),
    "model": query_is("query($id: ID!) { model(id: $id) { id } }", None, lambda a: {"id": a.model}),
    "job": query_is("query($id: ID!) { job(id: $id) { id } }", None, lambda a: {"id": a.job}),
    "jobs": lists_none_of_mine(
        "{ jobs(first: 500) { id } }", lambda d: [j["id"] for j in d["jobs"]]
    ),
    "revokeApiToken": refused(
        "mutation($id: ID!) { revokeApiToken(id: $id) { __typename } }",
        lambda a: {"id": a.api_token},
    ),
    "reparseUpload": refused(
        "mutation($id: ID!) { reparseUpload(id: $id) { __typename } }", lambda a: {"id": a.upload}
    ),
    "deleteUpload": refused(
        "mutation($id: ID!) { deleteUpload(id: $id) { __typename } }", lambda a: {"id": a.upload}
    ),
    "setSelf": refused(
        'mutation($id: ID!) { setSelf(uploadId: $id, sender: "我") { __typename } }',
        lambda a: {"id": a.upload},
    ),
    "setLabel": refused(
        'mutation($id: ID!) { setLabel(messageId: $id, key: "topic", value: "x") { __typename } }',
        lambda a: {"id": a.message},
    ),
    "setLabels": refused(
        """mutation($id: ID!) {
             setLabels(labels: [{messageId: $id, key: "topic", value: "x"}]) { __typename } }""",
        lambda a: {"id": a.message},
    ),
    "removeLabel": refused(
        'mutation($id: ID!) { removeLabel(messageId: $id, key: "topic") { __typename } }',
        lambda a: {"id": a.message},
    ),
    "labelMessages": refused(
        "mutation($id: ID!) { labelMessages(uploadId: $id) { __typename } }",
        lambda a: {"id": a.upload},
    ),
    "trainLabeler": refused(
        'mutation($id: ID!) { trainLabeler(name: "b", uploadIds: [$id]) { __typename } }',
        lambda a: {"id": a.upload},
    ),
    "createDataset": refused(
        'mutation($id: ID!) { createDataset(input: {name: "b", uploadIds: [$id]}) { __typename } }',
        lambda a: {"id": a.upload},
    ),
    "deleteDataset": refused(
        "mutation($id: ID!) { deleteDataset(id: $id) { __typename } }", lambda a: {"id": a.dataset}
    ),
    "trainModel": refused(
        """mutation($id: ID!) {
             trainModel(input: {name: "b", datasetId: $id, baseModel: "x"}) { __typename } }""",
        lambda a: {"id": a.dataset},
    ),
    "exportModel": refused(
        "mutation($id: ID!) { exportModel(id: $id, merged: true) { __typename } }",
        lambda a: {"id": a.model},
    ),
    "deleteModel": refused(
        "mutation($id: ID!) { deleteModel(id: $id) { __typename } }", lambda a: {"id": a.model}
    ),
    "cancelJob": refused(
        "mutation($id: ID!) { cancelJob(id: $id) { __typename } }", lambda a: {"id": a.job}
    ),
    "jobProgress": subscription_refused(
        "subscription($id: ID!) { jobProgress(jobId: $id) { id } }", lambda a: {"id": a.job}
    ),
    "chat": subscription_refused(
        """subscription($id: ID!) {
             chat(input: {modelId: $id, messages: [{role: USER, content: "hi"}]}) { delta } }""",
        lambda a: {"id": a.model},
    ),
}


def test_every_operation_is_covered() -> None:
    names = {
        schema.config.name_converter.from_field(field)
        for root in (schema.query, schema.mutation, schema.subscription)
        for field in root.__strawberry_definition__.fields  # type: ignore[union-attr]
    }
    assert names - NO_IDS == set(GRAPHQL), sorted((names - NO_IDS) ^ set(GRAPHQL))


async def test_user_b_finds_nothing_of_user_a(user: Client, other_user: Client) -> None:
    owned = await own_everything(user)
    for name, check in GRAPHQL.items():
        try:
            await check(other_user, owned)
        except Exception as error:
            raise AssertionError(f"{name}: {error}") from error
    # A's things are all still there.
    still = await user.query(
        """query($u: ID!, $d: ID!, $m: ID!, $j: ID!) {
             upload(id: $u) { id } dataset(id: $d) { id } model(id: $m) { id } job(id: $j) { id }
           }""",
        {"u": owned.upload, "d": owned.dataset, "m": owned.model, "j": owned.job},
    )
    assert all(value is not None for value in still.values())

    headers = other_user.headers
    http = other_user.http
    assert (
        await http.get(f"/api/v1/uploads/{owned.upload}/status", headers=headers)
    ).status_code == 404
    assert (
        await http.get("/api/v1/messages", params={"upload_id": owned.upload}, headers=headers)
    ).status_code == 404
    chat = {"model_id": owned.model, "messages": [{"role": "user", "content": "hi"}]}
    assert (await http.post("/api/v1/model/chat", json=chat, headers=headers)).status_code == 404
    train = {"name": "b", "dataset_id": owned.dataset, "base_model": "x"}
    assert (await http.post("/api/v1/train/start", json=train, headers=headers)).status_code == 404
    client = openai.AsyncOpenAI(
        base_url=other_user.server.url + "/v1", api_key=str(other_user.token)
    )
    with pytest.raises(openai.NotFoundError):
        await client.chat.completions.create(
            model=owned.model, messages=[{"role": "user", "content": "hi"}]
        )
    assert owned.model not in {m.id for m in (await client.models.list()).data}
    await client.close()
