"""The GraphQL schema: one Query and one Mutation composed from the areas."""

from __future__ import annotations

from pathlib import Path

import strawberry
from strawberry.extensions import (
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig

from divide_support.api.accounts.schema import AccountsMutation, AccountsQuery
from divide_support.api.audit.schema import AuditQuery
from divide_support.api.followups.schema import FollowUpsMutation, FollowUpsQuery
from divide_support.api.node_query import NodeQuery
from divide_support.api.people.schema import PeopleMutation, PeopleQuery
from divide_support.api.scheduling.schema import SchedulingMutation, SchedulingQuery
from divide_support.core.settings import get_settings


@strawberry.type
class Query(NodeQuery, AccountsQuery, SchedulingQuery, PeopleQuery, FollowUpsQuery, AuditQuery):
    pass


@strawberry.type
class Mutation(AccountsMutation, SchedulingMutation, PeopleMutation, FollowUpsMutation):
    pass


def build_schema() -> strawberry.Schema:
    settings = get_settings()
    # Extension instances are built once here, so their validation rules are the same
    # objects on every request and the validation cache keeps working.
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        config=StrawberryConfig(auto_camel_case=True),
        extensions=[
            ParserCache(maxsize=256),
            QueryDepthLimiter(max_depth=settings.graphql_max_depth),
            MaxAliasesLimiter(max_alias_count=settings.graphql_max_aliases),
            MaxTokensLimiter(max_token_count=settings.graphql_max_tokens),
            ValidationCache(maxsize=256),
        ],
    )


schema = build_schema()

SDL_PATH = Path(__file__).resolve().parents[2] / "graphql" / "schema.graphql"


def export_sdl() -> str:
    return schema.as_str() + "\n"
