from __future__ import annotations

from datetime import datetime

import strawberry

from divide_support.accounts import service as accounts
from divide_support.api.accounts.types import User
from divide_support.api.context import Info
from divide_support.api.errors import UserError, attempt
from divide_support.api.ids import decode_id
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
class LogoutPayload:
    revoked: bool = strawberry.field(
        description="True when the token was still valid and is now revoked.")
    errors: list[UserError]


@strawberry.input
class RevokeUserTokensInput:
    user_id: strawberry.ID


@strawberry.type
class RevokeUserTokensPayload:
    user: User | None = None
    revoked_count: int = 0
    errors: list[UserError]


@strawberry.input
class SetUserActiveInput:
    user_id: strawberry.ID
    active: bool


@strawberry.type
class UserPayload:
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
            info, lambda: accounts.login(email=input.email, password=input.password))
        if result is None:
            return LoginPayload(errors=errors)
        # The payload's user { municipality } is read as the user who just logged in (and
        # whatever else the document reads is audited as theirs).
        info.context.actor = await accounts.authenticate(result.token)
        info.context.token = result.token
        return LoginPayload(token=result.token, expires_at=info.context.local(result.expires_at),
                            user=User.from_model(result.user), errors=[])

    @strawberry.mutation(description="Revoke the token this request was made with.")
    async def logout(self, info: Info) -> LogoutPayload:
        actor = actor_of(info)
        token = info.context.token or ""
        revoked, errors = await attempt(info, lambda: accounts.logout(actor=actor, token=token))
        return LogoutPayload(revoked=bool(revoked), errors=errors)

    @strawberry.mutation(description="ADMIN: sign a user out everywhere (every token of theirs "
                         "stops working at once), e.g. after a lost phone.")
    async def revoke_user_tokens(self, info: Info, input: RevokeUserTokensInput
                                 ) -> RevokeUserTokensPayload:
        actor = actor_of(info)

        async def run():
            return await accounts.revoke_user_tokens(
                actor=actor, user_id=decode_id(input.user_id, "User", ["input", "userId"],
                                               "ユーザー"))

        result, errors = await attempt(info, run)
        if result is None:
            return RevokeUserTokensPayload(errors=errors)
        user, count = result
        return RevokeUserTokensPayload(user=User.from_model(user), revoked_count=count,
                                       errors=[])

    @strawberry.mutation(description="ADMIN: deactivate a login (signed out everywhere, the "
                         "password no longer works) or activate it again.")
    async def set_user_active(self, info: Info, input: SetUserActiveInput) -> UserPayload:
        actor = actor_of(info)

        async def run():
            return await accounts.set_user_active(
                actor=actor, user_id=decode_id(input.user_id, "User", ["input", "userId"],
                                               "ユーザー"), active=input.active)

        row, errors = await attempt(info, run)
        return UserPayload(user=User.from_model(row) if row else None, errors=errors)
