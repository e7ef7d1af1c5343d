"""GraphQL operations for /metrics: name, type, outcome and time of each one, whichever
transport ran it (the HTTP endpoint, or the staff console in-process)."""

from __future__ import annotations

import time
from collections.abc import Iterator

from strawberry.extensions import SchemaExtension

from divide_support.core.metrics import observe_graphql_operation


class OperationMetrics(SchemaExtension):
    """Records one operation once it is answered. A document that does not parse, or names
    an operation it does not hold, has no type (`unknown`); its name, if any, is still bounded
    by core/metrics.py."""

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        raised = False
        try:
            yield
        except BaseException:  # e.g. a mutation over GET: answered by the endpoint, not ok
            raised = True
            raise
        finally:
            context = self.execution_context
            try:
                operation_type = context.operation_type.value
            except RuntimeError:  # no document, or no operation of that name in it
                operation_type = "unknown"
            result = context.result
            ok = not raised and not context.pre_execution_errors and not (
                result is not None and result.errors)
            observe_graphql_operation(
                context.operation_name, operation_type, ok=ok,
                signed_in=getattr(context.context, "actor", None) is not None,
                seconds=time.perf_counter() - started)
