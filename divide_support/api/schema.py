"""The GraphQL schema: one Query and one Mutation composed from the areas."""

from __future__ import annotations

import strawberry
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaxTokensLimiter,
    ParserCache,
    ValidationCache,
)
from strawberry.extensions.max_aliases import create_validator as alias_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule
from strawberry.schema.config import StrawberryConfig

from divide_support.api.accounts.schema import AccountsMutation, AccountsQuery
from divide_support.api.audit.schema import AuditQuery
from divide_support.api.compiled import CompilingExecutionContext
from divide_support.api.followups.schema import FollowUpsMutation, FollowUpsQuery
from divide_support.api.input_guard import StringLiteralRule
from divide_support.api.messaging.schema import MessagingMutation, MessagingQuery
from divide_support.api.metrics import OperationMetrics
from divide_support.api.node_query import NodeQuery
from divide_support.api.people.schema import PeopleMutation, PeopleQuery
from divide_support.api.privacy.schema import PrivacyMutation, PrivacyQuery
from divide_support.api.reports.schema import ReportsMutation, ReportsQuery
from divide_support.api.scalars import SCALAR_MAP
from divide_support.api.scheduling.schema import SchedulingMutation, SchedulingQuery
from divide_support.core.settings import get_settings


@strawberry.type
class Query(NodeQuery, AccountsQuery, SchedulingQuery, PeopleQuery, FollowUpsQuery, MessagingQuery,
            ReportsQuery, AuditQuery, PrivacyQuery):
    pass


@strawberry.type
class Mutation(AccountsMutation, SchedulingMutation, PeopleMutation, FollowUpsMutation,
               MessagingMutation, ReportsMutation, PrivacyMutation):
    pass


class Schema(strawberry.Schema):
    def process_errors(self, errors, execution_context=None) -> None:
        # The HTTP endpoint logs unexpected errors with the request id; expected ones
        # (UNAUTHENTICATED, FORBIDDEN, validation) are not worth a traceback in the log.
        return None


def build_schema(*, introspection: bool = True, compiled: bool = True) -> strawberry.Schema:
    """`introspection=False`: `__schema` and `__type` are validation errors (`__typename`
    still works). `compiled=False`: graphql-core completes every field itself (api/compiled.py;
    the tests compare the two)."""
    settings = get_settings()
    # The limit rules are classes built once, here. Strawberry's QueryDepthLimiter and
    # MaxAliasesLimiter build new rule classes on every construction, and the validation
    # cache is keyed by the rule classes: per-request construction would never hit it.
    rules = [
        depth_rule(settings.graphql_max_depth, None),
        alias_rule(settings.graphql_max_aliases),
        StringLiteralRule,
    ]
    if not introspection:
        rules.append(NoSchemaIntrospectionCustomRule)
    return Schema(
        query=Query,
        mutation=Mutation,
        config=StrawberryConfig(auto_camel_case=True, scalar_map=SCALAR_MAP),
        execution_context_class=CompilingExecutionContext if compiled else None,
        extensions=[
            OperationMetrics,
            lambda: ParserCache(maxsize=256),
            lambda: MaxTokensLimiter(max_token_count=settings.graphql_max_tokens),
            lambda: AddValidationRules(rules),
            lambda: ValidationCache(maxsize=256),
        ],
    )


schema = build_schema()
# A schema instance of its own rather than a rule chosen per request: the shared validation
# cache is keyed by (schema, document, rules), so neither can answer for the other.
schema_without_introspection = build_schema(introspection=False)
_uncompiled: dict[bool, strawberry.Schema] = {}


def schema_for_request() -> strawberry.Schema:
    """The schema requests run on: without introspection unless the settings allow it
    (GRAPHQL_INTROSPECTION; by default only in the embedded mode), compiled unless
    GRAPHQL_COMPILED=false."""
    settings = get_settings()
    introspection = settings.introspection_enabled
    if not settings.graphql_compiled:
        if introspection not in _uncompiled:
            _uncompiled[introspection] = build_schema(introspection=introspection,
                                                      compiled=False)
        return _uncompiled[introspection]
    return schema if introspection else schema_without_introspection


def export_sdl() -> str:
    return schema.as_str() + "\n"
