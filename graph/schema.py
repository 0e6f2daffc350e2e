"""The schema, assembled from one module per domain. `strawberry export-schema
graph.schema:schema` writes schema.graphql; a test fails when the checked-in file differs."""

from __future__ import annotations

from collections.abc import Callable

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.tools import merge_types

from graph.accounts import AccountMutations, AccountQueries
from graph.chat import ChatQueries, ChatSubscriptions
from graph.datasets import DatasetMutations, DatasetQueries
from graph.execution import PlannedExecutionContext
from graph.health import HealthQueries
from graph.jobs import JobMutations, JobQueries, JobSubscriptions
from graph.labels import LabelMutations, LabelQueries
from graph.messages import MessageQueries
from graph.metrics import OperationMetrics
from graph.models import ModelMutations, ModelQueries
from graph.uploads import UploadMutations, UploadQueries
from server.settings import Settings

Query = merge_types(
    "Query",
    (
        HealthQueries,
        AccountQueries,
        UploadQueries,
        MessageQueries,
        LabelQueries,
        DatasetQueries,
        ModelQueries,
        ChatQueries,
        JobQueries,
    ),
)
Mutation = merge_types(
    "Mutation",
    (
        AccountMutations,
        UploadMutations,
        LabelMutations,
        DatasetMutations,
        ModelMutations,
        JobMutations,
    ),
)
Subscription = merge_types("Subscription", (JobSubscriptions, ChatSubscriptions))


def _unexpected(error: GraphQLError) -> bool:
    # Errors we raise on purpose carry a code; everything else is a bug whose text stays private.
    return not (error.extensions or {}).get("code")


def create_schema(settings: Settings) -> strawberry.Schema:
    # The limiters' validation rules are built once: rule classes made per request would never
    # hit the validation cache, and validating every request costs more than executing it.
    limits = [
        *QueryDepthLimiter(max_depth=settings.graphql_max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=settings.graphql_max_aliases).validation_rules,
    ]
    # Factories: each request gets fresh extension instances (the caches are shared anyway).
    extensions: list[Callable[[], SchemaExtension]] = [
        OperationMetrics,
        lambda: ParserCache(maxsize=512),
        lambda: AddValidationRules(limits),
        lambda: ValidationCache(maxsize=512),
        lambda: MaxTokensLimiter(max_token_count=settings.graphql_max_tokens),
    ]
    if not settings.graphql_introspection:
        extensions.append(DisableIntrospection)
    if settings.production:
        extensions.append(lambda: MaskErrors(should_mask_error=_unexpected))
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        execution_context_class=PlannedExecutionContext,
    )


schema = create_schema(Settings())
