"""Query costs and schema switches: no N+1 on a message page, introspection and masking."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from graphql import GraphQLError as CoreGraphQLError
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from graph.context import Context
from graph.schema import create_schema
from server.auth import Principal
from server.resources import Resources
from server.settings import Settings
from tests.support.exports import memotrace_txt
from tests.support.live import Client
from tests.support.uploads import upload_and_parse, wait_for_job

PAGE = """query($u: ID!) {
  messages(uploadId: $u, first: 100) {
    totalCount
    edges { node { id text sender labels { key value source } } }
  }
}"""


@contextmanager
def counted(engine: AsyncEngine) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def test_a_100_message_page_with_labels_is_a_few_statements(
    user: Client, resources: Resources
) -> None:
    upload_id = await upload_and_parse(user, memotrace_txt(150))
    started = await user.query(
        """mutation($u: ID!) {
             labelMessages(uploadId: $u) { ... on LabelMessagesSuccess { job { id } } }
           }""",
        {"u": upload_id},
    )
    await wait_for_job(user, started["labelMessages"]["job"]["id"])
    with counted(resources.engine) as statements:
        data = await user.query(PAGE, {"u": upload_id})
    edges = data["messages"]["edges"]
    assert len(edges) == 100
    assert sum(len(edge["node"]["labels"]) for edge in edges) > 50
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    # The page, the total, and one batched query for all the labels.
    assert len(selects) == 3, selects


async def test_introspection_can_be_switched_off() -> None:
    closed = create_schema(Settings(graphql_introspection=False))
    result = await closed.execute("{ __schema { types { name } } }")
    assert result.errors
    assert "introspection" in result.errors[0].message.lower()
    opened = create_schema(Settings())
    assert not (await opened.execute("{ __schema { types { name } } }")).errors


async def test_unexpected_errors_are_masked_in_production(resources: Resources) -> None:
    schema = create_schema(Settings(environment="production", jwt_secret="x" * 40))
    context = Context(request=None, response=None, resources=resources)  # type: ignore[arg-type]
    context.principal = Principal("0" * 32)
    # A missing account raises an error we mean (with a code): it is shown.
    shown = await schema.execute("{ me { id } }", context_value=context)
    assert shown.errors
    assert shown.errors[0].message == "the account no longer exists"
    # An unexpected failure (here: a broken context) is masked.
    broken = Context(request=None, response=None, resources=None)  # type: ignore[arg-type]
    broken.principal = Principal("0" * 32)
    masked = await schema.execute("{ me { id } }", context_value=broken)
    assert masked.errors
    assert masked.errors[0].message == "Unexpected error."
    assert isinstance(masked.errors[0], CoreGraphQLError)
