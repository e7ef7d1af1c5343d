from __future__ import annotations

from datetime import datetime

import strawberry

from divide_support.accounts import service as accounts
from divide_support.api.accounts.types import User
from divide_support.api.context import Info
from divide_support.api.enums import Role
from divide_support.api.errors import UserError, attempt, mutate, query_error
from divide_support.api.loaders import UserLoader, loader
from divide_support.api.pagination import Connection, paginate_query
from divide_support.api.permissions import actor_of
from divide_support.core.errors import DomainError
from divide_support.core.ids import decode_id, decode_optional


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


@strawberry.input
class CreateUserInput:
    email: str
    role: Role
    display_name: str | None = None
    password: str | None = strawberry.field(
        default=None, description="The first password (10 characters or more); without it one "
        "is generated and returned once in generatedPassword.")
    supporter_id: strawberry.ID | None = strawberry.field(
        default=None, description="Which supporter a SUPPORTER login is (required for them).")


@strawberry.type
class PasswordPayload:
    user: User | None = None
    generated_password: str | None = strawberry.field(
        default=None, description="The generated password, shown this once only (it is "
        "stored as a hash): hand it over, the user changes it with changePassword.")
    errors: list[UserError]


@strawberry.input
class ResetPasswordInput:
    user_id: strawberry.ID
    password: str | None = strawberry.field(
        default=None, description="The new password; without it one is generated.")


@strawberry.input
class ChangePasswordInput:
    current_password: str
    new_password: str


@strawberry.input
class UnlockLoginInput:
    email: str


@strawberry.type
class UnlockLoginPayload:
    user: User | None = None
    locked_count: int = strawberry.field(
        default=0, description="How many locks were in force (0: the e-mail was not locked).")
    errors: list[UserError]


@strawberry.type
class AccountsQuery:
    @strawberry.field
    async def me(self, info: Info) -> User | None:
        actor = actor_of(info)
        row = await loader(info.context, UserLoader).load(actor.user_id)
        return User.from_model(row) if row else None

    @strawberry.field(description="ADMIN: the logins of their municipality, by role and e-mail.")
    async def users(self, info: Info, active: bool | None = None, first: int | None = None,
                    after: str | None = None) -> Connection[User]:
        actor = actor_of(info)
        try:
            query = accounts.users_query(actor, active=active)
        except DomainError as error:
            raise query_error(error) from error
        return await paginate_query(query, first, after, User.from_model)


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
                actor=actor, user_id=decode_id(input.user_id, "User", "user_id",
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
                actor=actor, user_id=decode_id(input.user_id, "User", "user_id",
                                               "ユーザー"), active=input.active)

        return await mutate(info, UserPayload, run, user=User.from_model)

    @strawberry.mutation(description="ADMIN: a login for someone of their municipality. A "
                         "SUPPORTER login names its supporter. Without a password one is "
                         "generated and returned once.")
    async def create_user(self, info: Info, input: CreateUserInput) -> PasswordPayload:
        actor = actor_of(info)
        generated: list[str] = []

        async def run():
            supporter_id = decode_optional(input.supporter_id, "Supporter",
                                           "supporter_id", "支援員")
            password = input.password
            if password is None:
                password = accounts.generate_password()
                generated.append(password)
            return await accounts.create_user(
                actor=actor, email=input.email, role=input.role,
                display_name=input.display_name, password=password, supporter_id=supporter_id)

        row, errors = await attempt(info, run)
        return PasswordPayload(user=User.from_model(row) if row else None,
                               generated_password=generated[0] if row and generated else None,
                               errors=errors)

    @strawberry.mutation(description="ADMIN: a new password for a user of their municipality "
                         "(generated and returned once when none is given); every token of "
                         "theirs is revoked.")
    async def reset_password(self, info: Info, input: ResetPasswordInput) -> PasswordPayload:
        actor = actor_of(info)

        async def run():
            return await accounts.reset_password(
                actor=actor, user_id=decode_id(input.user_id, "User", "user_id",
                                               "ユーザー"), password=input.password)

        result, errors = await attempt(info, run)
        if result is None:
            return PasswordPayload(errors=errors)
        user, generated = result
        return PasswordPayload(user=User.from_model(user), generated_password=generated,
                               errors=[])

    @strawberry.mutation(description="Change one's own password, given the current one. Other "
                         "sessions are signed out; this one stays.")
    async def change_password(self, info: Info, input: ChangePasswordInput) -> UserPayload:
        actor = actor_of(info)
        token = info.context.token or ""
        return await mutate(info, UserPayload, lambda: accounts.change_password(
            actor=actor, current_password=input.current_password,
            new_password=input.new_password, token=token), user=User.from_model)

    @strawberry.mutation(description="ADMIN: let a user of their municipality locked out after "
                         "failed logins try again now (the e-mail's login counters are "
                         "cleared).")
    async def unlock_login(self, info: Info, input: UnlockLoginInput) -> UnlockLoginPayload:
        actor = actor_of(info)
        result, errors = await attempt(info, lambda: accounts.unlock_login(actor=actor,
                                                                           email=input.email))
        if result is None:
            return UnlockLoginPayload(errors=errors)
        user, locked = result
        return UnlockLoginPayload(user=User.from_model(user), locked_count=locked, errors=[])
