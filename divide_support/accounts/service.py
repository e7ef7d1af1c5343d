"""Municipalities, users, login and bearer tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from tortoise import connections
from tortoise.transactions import in_transaction

from divide_support.accounts.models import AuthToken, LoginThrottle, Municipality, User
from divide_support.audit import service as audit
from divide_support.core import timeutil
from divide_support.core.actor import Actor, Role
from divide_support.core.errors import DomainError, NotFound
from divide_support.core.permissions import require_role
from divide_support.core.settings import get_settings
from divide_support.people.models import Supporter

_hasher = PasswordHasher()
# Verifying against a dummy hash for unknown e-mails keeps timing uniform.
_DUMMY_HASH = _hasher.hash("not-a-real-password")

MIN_PASSWORD_LENGTH = 10


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normalise_email(email: str) -> str:
    return email.strip().lower()


async def get_municipality_by_code(code: str) -> Municipality:
    municipality = await Municipality.get_or_none(code=code.strip())
    if municipality is None:
        raise DomainError("NOT_FOUND", f"自治体コード {code} は登録されていません。",
                          ["municipality"], message_en=f"Unknown municipality code {code}.")
    return municipality


async def create_user(
    *,
    email: str,
    role: Role,
    municipality_code: str,
    password: str,
    display_name: str | None = None,
    supporter_id: int | None = None,
    actor: Actor | None = None,
) -> User:
    """Create a login. `actor` is None only for the CLI (an operator on the server)."""
    municipality = await get_municipality_by_code(municipality_code)
    if actor is not None:
        require_role(actor, Role.ADMIN)
        if actor.municipality_id != municipality.id:
            raise NotFound("自治体", ["municipality"])
    email = normalise_email(email)
    if "@" not in email or len(email) > 254:
        raise DomainError("INVALID_EMAIL", "メールアドレスの形式が正しくありません。", ["email"],
                          message_en="The e-mail address is not valid.")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise DomainError(
            "WEAK_PASSWORD",
            f"パスワードは{MIN_PASSWORD_LENGTH}文字以上にしてください。",
            ["password"],
            message_en=f"Passwords need at least {MIN_PASSWORD_LENGTH} characters.",
        )
    if role == Role.SUPPORTER and supporter_id is None:
        raise DomainError("SUPPORTER_REQUIRED", "支援員のアカウントには支援員IDが必要です。",
                          ["supporterId"], message_en="A SUPPORTER account needs --supporter-id.")
    if supporter_id is not None:
        if role != Role.SUPPORTER:
            raise DomainError("BAD_USER_INPUT", "支援員IDは SUPPORTER のアカウントにだけ指定できます。",
                              ["supporterId"],
                              message_en="Only SUPPORTER accounts link to a supporter.")
        supporter = await Supporter.get_or_none(id=supporter_id, municipality_id=municipality.id)
        if supporter is None:
            raise NotFound("支援員", ["supporterId"])
    if await User.filter(email=email).exists():
        raise DomainError("EMAIL_TAKEN", "このメールアドレスは既に使われています。", ["email"],
                          message_en="This e-mail address is already in use.")
    async with in_transaction():
        user = await User.create(
            email=email,
            role=role,
            municipality_id=municipality.id,
            password_hash=_hasher.hash(password),
            display_name=display_name or email.split("@")[0],
            supporter_id=supporter_id,
        )
        await audit.record(
            actor or Actor.system(municipality.id, municipality.timezone),
            "user.create", "User", [user.id], {"role": str(role)},
        )
    return user


@dataclass(frozen=True)
class LoginResult:
    token: str
    expires_at: datetime
    user: User


def _login_locked() -> DomainError:
    return DomainError(
        "TOO_MANY_ATTEMPTS",
        "ログインの失敗が続いたため、しばらくログインできません。時間をおいてお試しください。",
        ["input", "email"],
        message_en="Too many failed logins. Please try again later.",
    )


async def _register_failure(email: str) -> None:
    """Count a failure atomically (concurrent guesses all count) and lock at the limit."""
    settings = get_settings()
    now = timeutil.now()
    window_start = now - timedelta(minutes=settings.login_lockout_minutes)
    conn = connections.get("default")
    # One statement, so concurrent guesses all count and the lock is set atomically.
    await conn.execute_query_dict(
        """
        INSERT INTO login_throttle (email, failures, first_failure_at, locked_until)
        VALUES ($1, 1, $2, CASE WHEN $4 <= 1 THEN $5::timestamptz END)
        ON CONFLICT (email) DO UPDATE SET
            failures = CASE WHEN login_throttle.first_failure_at IS NULL
                             OR login_throttle.first_failure_at < $3
                            THEN 1 ELSE login_throttle.failures + 1 END,
            first_failure_at = CASE WHEN login_throttle.first_failure_at IS NULL
                                     OR login_throttle.first_failure_at < $3
                                    THEN $2 ELSE login_throttle.first_failure_at END,
            locked_until = CASE WHEN login_throttle.first_failure_at >= $3
                                 AND login_throttle.failures + 1 >= $4
                                THEN $5::timestamptz ELSE login_throttle.locked_until END
        RETURNING failures
        """,
        [email, now, window_start, settings.login_max_failures,
         now + timedelta(minutes=settings.login_lockout_minutes)],
    )


async def login(*, email: str, password: str) -> LoginResult:
    """Check the password (argon2) and issue a bearer token; only its hash is stored."""
    settings = get_settings()
    email = normalise_email(email)
    throttle = await LoginThrottle.get_or_none(email=email)
    if throttle and throttle.locked_until and throttle.locked_until > timeutil.now():
        raise _login_locked()
    user = await User.get_or_none(email=email, active=True)
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
        ok = user is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        ok = False
    if not ok or user is None:
        await _register_failure(email)
        raise DomainError(
            "INVALID_CREDENTIALS",
            "メールアドレスまたはパスワードが正しくありません。",
            ["input", "password"],
            message_en="Wrong e-mail address or password.",
        )
    token = secrets.token_urlsafe(32)
    expires_at = timeutil.now() + timedelta(hours=settings.token_ttl_hours)
    async with in_transaction():
        await LoginThrottle.filter(email=email).delete()
        await AuthToken.create(user_id=user.id, token_hash=hash_token(token), expires_at=expires_at)
        if _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = _hasher.hash(password)
            await user.save(update_fields=["password_hash"])
    return LoginResult(token=token, expires_at=expires_at, user=user)


async def authenticate_header(authorization: str | None, *, request_id: str | None = None
                              ) -> Actor | None:
    """The actor behind an `Authorization: Bearer <token>` header, or None."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return await authenticate(token.strip(), request_id=request_id)


async def authenticate(token: str, *, request_id: str | None = None) -> Actor | None:
    """The actor behind a bearer token, or None when unknown, expired or revoked."""
    if not token:
        return None
    row = (
        await AuthToken.filter(
            token_hash=hash_token(token),
            revoked_at__isnull=True,
            expires_at__gt=timeutil.now(),
            user__active=True,
        )
        .select_related("user", "user__municipality")
        .first()
    )
    if row is None:
        return None
    user = row.user
    kwargs = {"request_id": request_id} if request_id else {}
    return Actor(
        municipality_id=user.municipality_id,
        role=Role(user.role),
        user_id=user.id,
        email=user.email,
        supporter_id=user.supporter_id,
        timezone=user.municipality.timezone,
        **kwargs,
    )


async def revoke_token(token: str) -> None:
    await AuthToken.filter(token_hash=hash_token(token)).update(revoked_at=timeutil.now())


async def get_user(user_id: int, actor: Actor) -> User:
    user = await User.get_or_none(id=user_id, municipality_id=actor.municipality_id)
    if user is None:
        raise NotFound("ユーザー")
    return user


async def purge_expired_tokens() -> int:
    return await AuthToken.filter(expires_at__lt=timeutil.now()).delete()

