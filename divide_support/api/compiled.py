"""Compiled completion of plain object subtrees: graphql-jit's idea, inside graphql-core.

graphql-core completes every field of every object through the same generic machinery
(execute_field, a GraphQLResolveInfo, strawberry's resolver wrapper, complete_value), a few
microseconds per field; the 100-row day view has about 2,700 fields. Most of them need none
of it: an attribute of a plain object, or a synchronous resolver without arguments.

`CompilingExecutionContext.complete_object_value` asks, for the object type and the field
nodes being completed, for a plan made once per (type, selection) and cached across requests:
for each response key, how to get the value (the attribute, or the strawberry resolver called
directly with the same `self` and `info` strawberry would pass) and how to complete it (the
scalar's own serialize, a nested plan, a list of either). A subtree is compiled only when
every field in it is plain: no arguments, no async resolver, no field extension or
permission class, no directive, no abstract type. Anything else is completed by graphql-core
as before, and its plain children are compiled in turn.

The resolvers are the same functions, so no permission or masking rule exists twice: a
resolver that refuses (raises), returns an awaitable (a DataLoader) or null where the schema
says non-null makes the compiled attempt give up, and graphql-core completes the same object
from the start, with its errors, paths and null propagation. The resolvers a plan calls are
synchronous and have no effect but noting personal-data reads in the request's context,
which is a set, so running them twice changes nothing. Root fields and every resolver with
arguments always run once, through graphql-core.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from enum import Enum
from keyword import iskeyword
from threading import Lock
from typing import Any

from graphql import (
    GraphQLField,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLSchema,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
    is_object_type,
)
from graphql.execution.collect_fields import FieldDetails, collect_subfields
from graphql.language import FieldNode, InlineFragmentNode, SelectionSetNode
from graphql.pyutils import Path, Undefined
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.field import StrawberryField
from strawberry.types.info import Info

DEFINITION_BACKREF = "strawberry-definition"


class GiveUp(Exception):
    """The compiled attempt cannot complete this object; graphql-core will."""


class _NotCompilable(Exception):
    pass


class ObjectPlan:
    """A compiled object subtree: `complete(source, infos, pending)` returns its answer."""

    __slots__ = ("complete", "dead", "info_fields")

    def __init__(self, complete: Callable[..., dict[str, Any]],
                 info_fields: list[tuple[GraphQLObjectType, str, GraphQLField, list[FieldNode],
                                         StrawberryField]]) -> None:
        self.complete = complete
        self.info_fields = info_fields  # what each infos[i] is built from, per request
        self.dead = False  # set once it met an awaitable: DataLoader territory, do not retry


class PlanCache:
    """Plans by (schema, object type, field nodes). The nodes come from the parser cache's
    documents, so the same operation finds the same plan; bounded, least recently used out."""

    def __init__(self, maxsize: int = 2048) -> None:
        self.maxsize = maxsize
        # (plan or None, the field nodes): holding the nodes keeps their ids from being reused
        self._plans: OrderedDict[tuple[int, ...], tuple[ObjectPlan | None, Any]] = OrderedDict()
        self._lock = Lock()
        self.hits = 0
        self.gave_up = 0

    def get(self, key: tuple[int, ...]) -> ObjectPlan | bool | None:
        with self._lock:
            entry = self._plans.get(key)
            if entry is None:
                return False
            self._plans.move_to_end(key)
            return entry[0]

    def put(self, key: tuple[int, ...], plan: ObjectPlan | None, nodes: Any) -> None:
        with self._lock:
            self._plans[key] = (plan, nodes)
            while len(self._plans) > self.maxsize:
                self._plans.popitem(last=False)


plans = PlanCache()


def _has_directives(selection_set: SelectionSetNode | None, fragments: dict[str, Any]) -> bool:
    """Directives (@skip, @include, @defer) make a selection depend on the request."""
    if selection_set is None:
        return False
    for selection in selection_set.selections:
        if selection.directives:
            return True
        if isinstance(selection, FieldNode | InlineFragmentNode):
            if _has_directives(selection.selection_set, fragments):
                return True
        else:  # FragmentSpreadNode
            details = fragments.get(selection.name.value)
            definition = getattr(details, "definition", details)
            if definition is None or definition.directives or _has_directives(
                    definition.selection_set, fragments):
                return True
    return False


def _coercer(coerce: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def coerced(value: Any) -> Any:
        result = coerce(value)
        if result is None or result is Undefined:
            raise GiveUp
        return result
    return coerced


def _awaitable(value: Any) -> bool:
    return value.__class__ not in _PLAIN and hasattr(value, "__await__")


_PLAIN = frozenset({str, int, bool, float, list, dict, tuple, type(None)})
# graphql-core's coercion, where the value is already what it would return
_SAME_WHEN = {"String": "v.__class__ is str", "ID": "v.__class__ is str",
              "Boolean": "v.__class__ is bool",
              "Int": "v.__class__ is int and -2147483648 <= v <= 2147483647"}


class Compiler:
    """Writes one Python function per object of a selection: graphql-jit's way, so that
    completing a field is an attribute read or a call, not a trip through the executor."""

    def __init__(self, schema: GraphQLSchema, fragments: dict[str, Any],
                 variable_values: Any, operation: Any) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variable_values = variable_values
        self.operation = operation
        self.namespace: dict[str, Any] = {"GiveUp": GiveUp, "_awaitable": _awaitable,
                                          "_PLAIN": _PLAIN, "Undefined": Undefined}
        self.functions: list[str] = []
        self.info_fields: list[tuple[Any, ...]] = []
        self._names = 0

    def _name(self, prefix: str, value: Any = None) -> str:
        self._names += 1
        name = f"{prefix}{self._names}"
        if value is not None:
            self.namespace[name] = value
        return name

    def compile(self, object_type: GraphQLObjectType, field_nodes: list[FieldNode]
                ) -> ObjectPlan:
        entry = self._object(object_type, field_nodes)
        source = "\n\n".join(self.functions)
        exec(compile(source, f"<compiled {object_type.name}>", "exec"), self.namespace)
        return ObjectPlan(self.namespace[entry], self.info_fields)

    def _object(self, object_type: GraphQLObjectType, field_nodes: list[FieldNode]) -> str:
        details = [FieldDetails(node, None) for node in field_nodes]
        grouped, new_defer_usages, forbidden = collect_subfields(
            self.schema, self.fragments, self.variable_values, self.operation,
            object_type, details)
        if new_defer_usages or forbidden:
            raise _NotCompilable
        name = self._name(f"complete_{object_type.name}_")
        lines = [f"def {name}(source, infos, pending):", "    answer = {}"]
        for key, sub_details in grouped.items():
            if any(d.defer_usage is not None or d.fragment_variable_values is not None
                   for d in sub_details):
                raise _NotCompilable
            nodes = [d.node for d in sub_details]
            field_name = nodes[0].name.value
            if field_name == "__typename":
                lines.append(f"    answer[{key!r}] = {object_type.name!r}")
                continue
            lines += ["    " + line for line in self._field(object_type, key, field_name, nodes)]
        lines.append("    return answer")
        self.functions.append("\n".join(lines))
        return name

    def _field(self, object_type: GraphQLObjectType, key: str, field_name: str,
               nodes: list[FieldNode]) -> list[str]:
        field_def = object_type.fields.get(field_name)
        if field_def is None or field_def.args or field_name.startswith("__"):
            raise _NotCompilable
        field = (field_def.extensions or {}).get(DEFINITION_BACKREF)
        if not isinstance(field, StrawberryField) or field.extensions:
            raise _NotCompilable  # permission classes and field extensions: graphql-core's path
        resolver = field.base_resolver
        if resolver is None:
            name = field.python_name
            lines = [f"v = source.{name}" if name.isidentifier() and not iskeyword(name)
                     else f"v = getattr(source, {name!r})"]
        else:
            if resolver.is_async or field.arguments:
                raise _NotCompilable
            func = self._name("resolve_", resolver.wrapped_func)
            args = ["source"] if resolver.self_parameter is not None else []
            for parameter in (resolver.parent_parameter, resolver.root_parameter):
                if parameter is not None:
                    args.append(f"{parameter.name}=source")
            if resolver.info_parameter is not None:
                self.info_fields.append((object_type, key, field_def, nodes, field))
                args.append(f"{resolver.info_parameter.name}=infos[{len(self.info_fields) - 1}]")
            # _awaitable(v), written out: it runs once per resolved field
            lines = [f"v = {func}({', '.join(args)})",
                     "if v.__class__ not in _PLAIN and hasattr(v, '__await__'):",
                     "    pending.append(v)", "    raise GiveUp"]
        return lines + self._complete(field_def.type, nodes, f"answer[{key!r}]")

    def _complete(self, return_type: GraphQLOutputType, nodes: list[FieldNode], target: str
                  ) -> list[str]:
        """Statements that complete `v` into `target` (complete_value's rules)."""
        if is_non_null_type(return_type):
            return ["if v is None:", "    raise GiveUp",
                    *self._complete_present(return_type.of_type, nodes, target)]
        return ["if v is None:", f"    {target} = None", "else:",
                *["    " + line for line in self._complete_present(return_type, nodes, target)]]

    def _complete_present(self, return_type: GraphQLOutputType, nodes: list[FieldNode],
                          target: str) -> list[str]:
        if is_list_type(return_type):
            item = self._name("item_")
            body = self._complete(return_type.of_type, nodes, "out")
            self.functions.append("\n".join(
                [f"def {item}(v, infos, pending):", *["    " + line for line in body],
                 "    return out"]))
            return ["if v.__class__ in (str, bytes) or not hasattr(v, '__iter__') "
                    "or _awaitable(v):", "    raise GiveUp",
                    f"{target} = [{item}(x, infos, pending) for x in v]"]
        if is_leaf_type(return_type):
            coerce = self._name("coerce_", _coercer(return_type.coerce_output_value))
            same = _SAME_WHEN.get(return_type.name)
            wrapped = getattr(return_type, "wrapped_cls", None)  # a strawberry enum
            if same is None and isinstance(wrapped, type) and issubclass(wrapped, Enum):
                # its coerce_output_value, looked up once: the first name with the value
                names: dict[Any, str] = {}
                for member in wrapped:
                    names[member] = next(name for name, value in return_type.values.items()
                                         if value.value == member.value)
                cls, table = self._name("enum_", wrapped), self._name("names_", names)
                return [f"{target} = {table}[v] if v.__class__ is {cls} else {coerce}(v)"]
            if same is None:  # the scalar's coercion (DateTime's isoformat) called directly
                function = self._name("serialize_", return_type.coerce_output_value)
                return [f"{target} = {function}(v)",
                        f"if {target} is None or {target} is Undefined:", "    raise GiveUp"]
            return [f"{target} = v if {same} else {coerce}(v)"]
        if is_object_type(return_type):
            lines = []
            if return_type.is_type_of is not None:
                check = self._name("is_type_of_", return_type.is_type_of)
                definition = (return_type.extensions or {}).get(DEFINITION_BACKREF)
                origin = getattr(definition, "origin", None)
                if isinstance(origin, type):  # an instance of the type itself passes at once
                    cls = self._name("type_", origin)
                    lines += [f"if v.__class__ is not {cls} and not {check}(v, None):",
                              "    raise GiveUp"]
                else:
                    lines += [f"if not {check}(v, None):", "    raise GiveUp"]
            inner = self._object(return_type, nodes)
            return [*lines, f"{target} = {inner}(v, infos, pending)"]
        raise _NotCompilable  # interfaces and unions: graphql-core resolves the runtime type


class CompilingExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's executor with plain object subtrees completed by a cached plan."""

    def complete_object_value(self, return_type: GraphQLObjectType, field_details_list: Any,
                              info: GraphQLResolveInfo, path: Path, result: Any,
                              position_context: Any) -> Any:
        plan = self._plan_for(return_type, field_details_list)
        if plan is not None and not plan.dead:
            pending: list[Any] = []
            try:
                if return_type.is_type_of is not None and not return_type.is_type_of(
                        result, info):
                    raise GiveUp
                infos = [self._info(*field, path) for field in plan.info_fields]
                answer = plan.complete(result, infos, pending)
            except Exception:  # GiveUp, or a resolver refused: graphql-core does it properly
                for awaitable in pending:
                    plan.dead = True  # its resolvers load: they belong to DataLoaders
                    close = getattr(awaitable, "close", None)
                    if close is not None:
                        close()
                plans.gave_up += 1
            else:
                plans.hits += 1
                return answer
        return super().complete_object_value(return_type, field_details_list, info, path,
                                             result, position_context)

    def _plan_for(self, return_type: GraphQLObjectType, field_details_list: Any
                  ) -> ObjectPlan | None:
        if self.middleware_manager is not None and getattr(
                self.middleware_manager, "middlewares", None):
            return None  # a resolve() middleware must see every field
        nodes = [d.node for d in field_details_list]
        key = (id(self.schema), id(return_type), *map(id, nodes))
        cached = plans.get(key)
        if cached is not False:
            return cached  # type: ignore[return-value]
        plan: ObjectPlan | None = None
        if not any(d.defer_usage is not None or d.fragment_variable_values is not None
                   for d in field_details_list) and not any(
                _has_directives(n.selection_set, self.fragments) for n in nodes):
            try:
                plan = Compiler(self.schema, self.fragments, self.variable_values,
                                self.operation).compile(return_type, nodes)
            except _NotCompilable:
                plan = None
        plans.put(key, plan, nodes)
        return plan

    def _info(self, parent_type: GraphQLObjectType, key: str, field_def: GraphQLField,
              nodes: list[FieldNode], field: StrawberryField, path: Path) -> Info:
        # One Info per field of the plan and request, where strawberry builds one per value;
        # its path is the object's (it names a place for errors, and errors leave this path).
        raw = self.build_resolve_info(field_def, nodes, parent_type,
                                      path.add_key(key, parent_type.name))
        return Info(_raw_info=raw, _field=field)


__all__ = ["CompilingExecutionContext", "plans"]
