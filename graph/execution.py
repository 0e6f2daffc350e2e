"""A faster execution path for plain objects: one plan per (type, selection), one loop per object.

graphql-core completes every field of every object through its general machinery (a
ResolveInfo, a resolver call, an awaitable check, `complete_value`): about 3.5 µs per field,
which dominates a 100-message page. Most objects we return are plain Strawberry instances whose
selected fields are attributes (no resolver, no arguments) holding leaves or further plain
objects. For those, this execution context builds the result dict directly from a plan cached
per request for each (type, field group): attribute name, response key, the leaf type's
`serialize`, or a nested plan.

Anything else takes graphql-core's normal path: a field with a resolver or arguments, an
abstract type, a type with an `is_type_of` check, a field with Strawberry extensions or
permissions, and every error case (a null in a non-null field, a serializer that raises) —
for those, the object is completed again the normal way, so errors and their paths are exactly
what graphql-core reports. Schema extensions that hook `resolve` would not see planned fields;
weft has none. tests/graph/test_execution.py compares both paths.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import (
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    is_leaf_type,
)
from graphql.execution.collect_fields import FieldDetailsList
from graphql.pyutils import Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter

BACKREF = GraphQLCoreConverter.DEFINITION_BACKREF

# A compiled field: (response key, attribute name, kind, non-null, serialize or sub-plan).
Plan = list[tuple[str, str, int, bool, Any]]
LEAF, OBJECT, LEAF_LIST, OBJECT_LIST, TYPENAME = range(5)


class Fallback(Exception):
    """The value needs graphql-core's normal path (an error to report, a shape we skip)."""


class PlannedExecutionContext(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plans: dict[tuple[int, int], Plan | None] = {}

    def complete_object_value(
        self,
        return_type: GraphQLObjectType,
        field_details_list: FieldDetailsList,
        info: GraphQLResolveInfo[Any],
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        plan = self._plan(return_type, field_details_list)
        if plan is not None:
            try:
                return _build(plan, result)
            except Fallback:
                pass
        return super().complete_object_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def _plan(self, parent: GraphQLObjectType, group: FieldDetailsList) -> Plan | None:
        key = (id(parent), id(group))
        if key not in self._plans:
            self._plans[key] = None  # guards against recursion through cyclic types
            self._plans[key] = self._compile(parent, group)
        return self._plans[key]

    def _compile(self, parent: GraphQLObjectType, group: FieldDetailsList) -> Plan | None:
        if parent.is_type_of is not None:
            return None
        collected = self.collect_subfields(parent, group)
        if collected.new_defer_usages or collected.forbidden_directive_instances:
            return None
        grouped = collected.grouped_field_set
        plan: Plan = []
        for response_key, details in grouped.items():
            node = details[0].node
            name = node.name.value
            if name == "__typename":
                plan.append((response_key, "", TYPENAME, True, parent.name))
                continue
            field = parent.fields.get(name)
            if field is None or node.arguments or field.args:
                return None
            definition = (field.extensions or {}).get(BACKREF)
            if (
                definition is None
                or getattr(definition, "base_resolver", None) is not None
                or getattr(definition, "extensions", None)
                or getattr(definition, "permission_classes", None)
            ):
                return None
            compiled = self._field(field.type, details)
            if compiled is None:
                return None
            kind, non_null, target = compiled
            plan.append((response_key, definition.python_name, kind, non_null, target))
        return plan

    def _field(
        self, type_: GraphQLOutputType, details: FieldDetailsList
    ) -> tuple[int, bool, Any] | None:
        non_null = isinstance(type_, GraphQLNonNull)
        inner = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
        if is_leaf_type(inner):
            return LEAF, non_null, _serializer(inner)
        if isinstance(inner, GraphQLObjectType):
            sub = self._plan(inner, details)
            return (OBJECT, non_null, sub) if sub is not None else None
        if isinstance(inner, GraphQLList):
            item = inner.of_type
            item_non_null = isinstance(item, GraphQLNonNull)
            item = item.of_type if isinstance(item, GraphQLNonNull) else item
            if not item_non_null:
                return None
            if is_leaf_type(item):
                return LEAF_LIST, non_null, _serializer(item)
            if isinstance(item, GraphQLObjectType):
                sub = self._plan(item, details)
                return (OBJECT_LIST, non_null, sub) if sub is not None else None
        return None


def _serializer(type_: GraphQLLeafType) -> Callable[[Any], Any]:
    return type_.serialize


def _leaf(serialize: Callable[[Any], Any], value: Any) -> Any:
    try:
        result = serialize(value)
    except Exception:
        raise Fallback from None
    if result is None:
        raise Fallback
    return result


def _build(plan: Plan, source: Any) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for response_key, attribute, kind, non_null, target in plan:
        if kind == TYPENAME:
            data[response_key] = target
            continue
        value = getattr(source, attribute)
        if value is None:
            if non_null:
                raise Fallback
            data[response_key] = None
        elif kind == LEAF:
            data[response_key] = _leaf(target, value)
        elif kind == OBJECT:
            data[response_key] = _build(target, value)
        elif kind == LEAF_LIST:
            data[response_key] = [_leaf(target, item) for item in value]
        else:
            data[response_key] = [_build(target, item) for item in value]
    return data
