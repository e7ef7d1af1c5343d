from __future__ import annotations

from datetime import datetime

import strawberry

from divide_support.accounts import service as accounts
from divide_support.api.accounts.types import User
from divide_support.api.context import Info
from divide_support.api.errors import UserError, attempt
from divide_support.api.loaders import UserLoader, loader
from divide_support.api.permissions import actor_of


@strawberry.input
class LoginInput:
    email: str
    password: str


@strawberry.type
class LoginPayload:
    token: str | None = None
    expires_at: datetime | None = None
    user: User | None = None
    errors: list[UserError]


@strawberry.type
class AccountsQuery:
    @strawberry.field
    async def me(self, info: Info) -> User | None:
        actor = actor_of(info)
        row = await loader(info.context, UserLoader).load(actor.user_id)
        return User.from_model(row) if row else None


@strawberry.type
class AccountsMutation:
    @strawberry.mutation
    async def login(self, info: Info, input: LoginInput) -> LoginPayload:
        result, errors = await attempt(
            info.context, lambda: accounts.login(email=input.email, password=input.password))
        if result is None:
            return LoginPayload(errors=errors)
        # The payload's user { municipality } is read as the user who just logged in.
        info.context.actor = await accounts.authenticate(result.token,
                                                         request_id=info.context.request_id)
        return LoginPayload(token=result.token, expires_at=info.context.local(result.expires_at),
                            user=User.from_model(result.user), errors=[])
