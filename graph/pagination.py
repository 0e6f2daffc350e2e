"""Cursor connections (first/after, edges, pageInfo, totalCount) with opaque cursors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import strawberry
from graphql import GraphQLError

from graph.context import Info

Node = TypeVar("Node")


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[Node]):
    cursor: str
    node: Node


@strawberry.type
class Connection(Generic[Node]):
    edges: list[Edge[Node]]
    page_info: PageInfo
    _count: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="How many items match, across all pages.")
    async def total_count(self, info: Info) -> int:
        return await self._count()


def page_size(info: Info, first: int | None, default: int = 50) -> int:
    """`first`, checked against the configured maximum page size."""
    maximum = info.context.resources.settings.max_page_size
    size = default if first is None else first
    if not 1 <= size <= maximum:
        raise GraphQLError(
            f"`first` must be between 1 and {maximum}", extensions={"code": "INVALID_INPUT"}
        )
    return size
