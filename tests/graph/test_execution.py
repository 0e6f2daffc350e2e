"""The planned execution path gives exactly what graphql-core's normal path gives."""

from __future__ import annotations

from typing import Any

import pytest
import strawberry

from graph.context import Context
from graph.execution import PlannedExecutionContext
from graph.schema import Mutation, Query, Subscription
from server.auth import Principal
from server.resources import Resources
from tests.support.exports import memotrace_txt
from tests.support.live import Client
from tests.support.uploads import upload_and_parse, wait_for_job

PLAIN = strawberry.Schema(query=Query, mutation=Mutation, subscription=Subscription)
PLANNED = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    execution_context_class=PlannedExecutionContext,
)

QUERIES = [
    """query($u: ID!) { messages(uploadId: $u, first: 30) {
         totalCount pageInfo { hasNextPage endCursor startCursor hasPreviousPage }
         edges { cursor node { id seq key sender senderId timestamp text kind isSelf raw
                               labels { key value source score rule effective } } } } }""",
    """query($u: ID!) { messages(uploadId: $u, first: 5) {
         edges { node { __typename a: id b: text ...M } } } }
       fragment M on Message { sender kind }""",
    """query($u: ID!, $yes: Boolean!) { messages(uploadId: $u, first: 5) {
         edges { node { id text @include(if: $yes) sender @skip(if: $yes) } } } }""",
    """{ uploads(first: 10) { edges { node { id filename size status error format timezone
                                           selfName messageCount createdAt parsedAt
                                           job { id kind status progress detail } } } } }""",
    "{ jobs(first: 10) { id kind status progress message error detail createdAt finishedAt } }",
    "{ me { id email name createdAt } }",
    "{ health { ok backends { name ok backend error } } }",
]


async def run(schema: strawberry.Schema, query: str, context: Context, **variables: Any) -> Any:
    result = await schema.execute(query, variable_values=variables, context_value=context)
    return result.data, [error.formatted for error in result.errors or []]


@pytest.mark.parametrize("query", QUERIES)
async def test_planned_equals_plain(query: str, user: Client, resources: Resources) -> None:
    upload_id = await upload_and_parse(user, memotrace_txt(40))
    started = await user.query(
        """mutation($u: ID!) {
             labelMessages(uploadId: $u) { ... on LabelMessagesSuccess { job { id } } }
           }""",
        {"u": upload_id},
    )
    await wait_for_job(user, started["labelMessages"]["job"]["id"])
    assert user.user_id
    context = Context(request=None, response=None, resources=resources)  # type: ignore[arg-type]
    context.principal = Principal(user.user_id)
    variables = {"u": upload_id, "yes": True}
    plain = await run(PLAIN, query, context, **variables)
    context._loaders = None
    planned = await run(PLANNED, query, context, **variables)
    assert planned == plain
    assert plain[0] is not None
    assert not plain[1]
