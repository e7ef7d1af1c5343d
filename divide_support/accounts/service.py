"""Municipalities, users, login and bearer tokens."""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from tortoise import connections
from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from divide_support.accounts.errors import AccountsCode
from divide_support.accounts.models import AuthToken, LoginThrottle, Municipality, User
from divide_support.audit import service as audit
from divide_support.core import requestctx, timeutil
from divide_support.core.actor import Actor, Role
from divide_support.core.errors import CoreCode, DomainError, NotFound
from divide_support.core.permissions import require_role
from divide_support.core.settings import get_settings
from divide_support.core.tenancy import get_scoped
from divide_support.core.text import clean_text
from divide_support.people.models import Supporter

_hasher = PasswordHasher()
# Verifying against a dummy hash for unknown e-mails keeps timing uniform.
_DUMMY_HASH = _hasher.hash("not-a-real-password")

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1000  # argon2 hashes anything, but nobody types more
# The staff console carries the same kind of bearer token in this HttpOnly cookie.
SESSION_COOKIE = "ds_session"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normalise_email(email: str) -> str:
    return email.strip().lower()


async def get_municipality_by_code(code: str) -> Municipality:
    municipality = await Municipality.get_or_none(code=code.strip())
    if municipality is None:
        raise DomainError(CoreCode.NOT_FOUND, f"自治体コード {code} は登録されていません。",
                          "municipality", message_en=f"Unknown municipality code {code}.")
    return municipality


async def create_user(
    *,
    email: str,
    role: Role,
    municipality_code: str | None = None,
    password: str,
    display_name: str | None = None,
    supporter_id: int | None = None,
    actor: Actor | None = None,
) -> User:
    """Create a login: in the municipality of `municipality_code` (the CLI, an operator on
    the server, with no `actor`), or in the ADMIN `actor`'s own (the API)."""
    if actor is not None:
        require_role(actor, Role.ADMIN)
        municipality = await Municipality.get(id=actor.municipality_id)
        if municipality_code is not None and municipality_code.strip() != municipality.code:
            raise NotFound("自治体", "municipality")
    elif municipality_code is not None:
        municipality = await get_municipality_by_code(municipality_code)
    else:
        raise DomainError(CoreCode.BAD_USER_INPUT, "自治体コードを指定してください。",
                          "municipality", message_en="A municipality is required.")
    email = normalise_email(clean_text(email, "email", "メールアドレス", 254, required=True) or "")
    if "@" not in email or email.startswith("@") or email.endswith("@"):
        raise DomainError(CoreCode.INVALID_EMAIL, "メールアドレスの形式が正しくありません。",
                          "email", message_en="The e-mail address is not valid.")
    name = clean_text(display_name, "display_name", "表示名", 100)
    _check_password(password)
    if role == Role.SUPPORTER and supporter_id is None:
        raise DomainError(AccountsCode.SUPPORTER_REQUIRED, "支援員のアカウントには、どの支援員かの指定が必要です。",
                          "supporter_id",
                          message_en="A SUPPORTER account needs a supporter (--supporter-id).")
    if supporter_id is not None:
        if role != Role.SUPPORTER:
            raise DomainError(CoreCode.BAD_USER_INPUT, "支援員の指定は、役割が支援員のアカウントにだけできます。",
                              "supporter_id",
                              message_en="Only SUPPORTER accounts link to a supporter.")
        supporter = await Supporter.get_or_none(id=supporter_id, municipality_id=municipality.id)
        if supporter is None:
            raise NotFound("支援員", "supporter_id")
    if await User.filter(email=email).exists():
        raise DomainError(AccountsCode.EMAIL_TAKEN, "このメールアドレスは既に使われています。",
                          "email", message_en="This e-mail address is already in use.")
    try:
        async with in_transaction():
            user = await User.create(
                email=email,
                role=role,
                municipality_id=municipality.id,
                password_hash=_hasher.hash(password),
                display_name=name or email.split("@")[0],
                supporter_id=supporter_id,
            )
            await audit.record(
                actor or Actor.system(municipality.id, municipality.timezone),
                "user.create", "User", [user.id], {"role": str(role)},
            )
    except IntegrityError as error:  # the same e-mail saved by a colleague a moment ago
        raise DomainError(AccountsCode.EMAIL_TAKEN, "このメールアドレスは既に使われています。",
                          "email",
                          message_en="This e-mail address is already in use.") from error
    return user


def generate_password() -> str:
    """A password to read out or hand over once: 16 letters and digits without the ones that
    are easily confused (0/O, 1/l/I), in groups of four for reading."""
    alphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    raw = "".join(secrets.choice(alphabet) for _ in range(16))
    return "-".join(raw[i:i + 4] for i in range(0, 16, 4))


def users_query(actor: Actor, *, active: bool | None = None):
    """ADMIN: the logins of their own municipality, by role then e-mail."""
    require_role(actor, Role.ADMIN)
    query = User.filter(municipality_id=actor.municipality_id)
    if active is not None:
        query = query.filter(active=active)
    return query.order_by("role", "email", "id")


@dataclass(frozen=True)
class LoginResult:
    token: str
    expires_at: datetime
    user: User


def _login_locked() -> DomainError:
    return DomainError(
        AccountsCode.TOO_MANY_ATTEMPTS,
        "ログインの失敗が続いたため、しばらくログインできません。時間をおいてお試しください。",
        "email",
        message_en="Too many failed logins. Please try again later.",
    )


def _invalid_credentials() -> DomainError:
    # The same words whether the e-mail exists or not: the answer reveals no account.
    return DomainError(
        AccountsCode.INVALID_CREDENTIALS,
        "メールアドレスまたはパスワードが正しくありません。",
        "password",
        message_en="Wrong e-mail address or password.",
    )


@dataclass(frozen=True)
class _Attempt:
    key: str
    number: int  # this attempt's number in the window, counting the ones in flight
    locked: bool
    limit: int
    doubling: bool = True  # each lock of this counter twice as long as the one before


def _digest(value: str, length: int = 64) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:length]


def _throttle_key(kind: str, value: str) -> str:
    return f"{kind}:{_digest(value)}"


def _account_key_prefix(email: str) -> str:
    return f"account:{_digest(email, 32)}:"


def _account_key(email: str, network: str) -> str:
    """The account-from-one-address counter: the e-mail's hash first, so an ADMIN's unlock
    finds every address's counter of one e-mail (the table still names neither)."""
    return _account_key_prefix(email) + _digest(network, 32)


# One statement per key, so simultaneous attempts get distinct numbers: the attempt is
# counted before its password is checked, and those beyond the limit are never checked.
# A lock in force changes nothing; a window that is over starts again.
_TAKE_ATTEMPT_SQL = """
INSERT INTO login_throttle (key, attempts, window_started_at, lockouts)
VALUES ($1, 1, $2::timestamptz, 0)
ON CONFLICT (key) DO UPDATE SET
    attempts = CASE WHEN login_throttle.locked_until > $2::timestamptz THEN login_throttle.attempts
                    WHEN login_throttle.window_started_at <= $3::timestamptz THEN 1
                    ELSE login_throttle.attempts + 1 END,
    window_started_at = CASE WHEN login_throttle.locked_until > $2::timestamptz
                                  THEN login_throttle.window_started_at
                             WHEN login_throttle.window_started_at <= $3::timestamptz THEN $2::timestamptz
                             ELSE login_throttle.window_started_at END
RETURNING attempts, locked_until > $2::timestamptz AS locked
"""

# Backoff: each lock lasts twice as long as the one before, up to a day; a day without a
# lock forgets the earlier ones. The next window starts when the lock ends. A lock already in
# force is left alone (two refused attempts at once lock once).
_LOCK_SQL = """
UPDATE login_throttle AS t
SET lockouts = c.lockouts, locked_until = c.until, window_started_at = c.until, attempts = 0
FROM (
    SELECT key, CASE WHEN recent THEN lockouts + 1 ELSE 1 END AS lockouts,
           $2::timestamptz + least(interval '1 day', make_interval(mins => $3::int)
                      * power(2, CASE WHEN recent AND $4::bool THEN least(lockouts, 10) ELSE 0 END)) AS until
    FROM (SELECT key, lockouts,
                 locked_until IS NOT NULL AND locked_until > $2::timestamptz - interval '1 day' AS recent
          FROM login_throttle WHERE key = $1) AS previous
) AS c
WHERE t.key = c.key AND (t.locked_until IS NULL OR t.locked_until <= $2::timestamptz)
"""


async def _take_attempt(key: str, limit: int, *, doubling: bool = True) -> _Attempt:
    settings = get_settings()
    now = timeutil.now()
    window_start = now - timedelta(minutes=settings.login_lockout_minutes)
    [row] = await connections.get("default").execute_query_dict(
        _TAKE_ATTEMPT_SQL, [key, now, window_start])
    return _Attempt(key=key, number=int(row["attempts"]), locked=bool(row["locked"]), limit=limit,
                    doubling=doubling)


async def _lock(attempt: _Attempt) -> None:
    await connections.get("default").execute_query(
        _LOCK_SQL, [attempt.key, timeutil.now(), get_settings().login_lockout_minutes,
                    attempt.doubling])


async def _give_back(attempt: _Attempt) -> None:
    """A client address's successful login is not held against it (only failures count)."""
    await connections.get("default").execute_query(
        "UPDATE login_throttle SET attempts = greatest(attempts - 1, 0) WHERE key = $1",
        [attempt.key])


async def _audit_login_refused(user: User | None, email: str, reason: str) -> None:
    if user is not None:
        await audit.record_anonymous(user.municipality_id, "auth.login_failed", "User",
                                     [user.id], {"email": email, "reason": reason})
    else:
        await audit.record_anonymous(None, "auth.login_failed", None, [],
                                     {"emailHash": audit.email_fingerprint(email),
                                      "reason": reason})


def _password_matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# One account from anywhere: a higher limit than from one address (below), and no doubling, so
# attackers spread over many addresses cannot keep its owner out for long.
ACCOUNT_WIDE_FACTOR = 4


def client_network(address: str) -> str:
    """What the address throttle counts: an IPv4 address, or the /64 an IPv6 address is in
    (one subscriber gets a whole /64, so counting single IPv6 addresses counts nothing)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


async def login(*, email: str, password: str) -> LoginResult:
    """Check the password (argon2) and issue a bearer token; only its hash is stored.

    Throttled atomically: every attempt takes a number before its password is checked, so of
    any number of simultaneous guesses only those within the limits are checked at all.
    Three counters: the client's address (password spraying over many e-mails; a blocked
    address touches no account's counter, so it cannot lock anyone out), the account from
    that address (LOGIN_MAX_FAILURES, each lock twice as long), and the account from anywhere
    (four times as many, fixed locks). Every outcome is audited.
    """
    settings = get_settings()
    email = normalise_email(clean_text(email, "email", "メールアドレス", 254) or "")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise _invalid_credentials()
    request = requestctx.current()
    network = client_network(request.client_address) if request and request.client_address \
        else ""
    user = await User.get_or_none(email=email, active=True)
    attempts: list[_Attempt] = []
    if network:
        address = await _take_attempt(_throttle_key("address", network),
                                      settings.login_max_failures_per_address)
        if address.locked or address.number > address.limit:
            await _refuse_locked([address], user, email)
        attempts.append(address)
    attempts.append(await _take_attempt(_account_key(email, network),
                                        settings.login_max_failures))
    attempts.append(await _take_attempt(_throttle_key("account-wide", email),
                                        settings.login_max_failures * ACCOUNT_WIDE_FACTOR,
                                        doubling=False))
    if any(a.locked or a.number > a.limit for a in attempts):
        await _refuse_locked(attempts, user, email)
    # argon2 is deliberately slow: off the event loop, so other requests keep being served.
    ok = await asyncio.to_thread(_password_matches,
                                 user.password_hash if user else _DUMMY_HASH, password)
    if not ok or user is None:
        for attempt in attempts:
            if attempt.number >= attempt.limit:
                await _lock(attempt)
        await _audit_login_refused(user, email, "INVALID_CREDENTIALS")
        raise _invalid_credentials()
    token = secrets.token_urlsafe(32)
    expires_at = timeutil.now() + timedelta(hours=settings.token_ttl_hours)
    async with in_transaction():
        for attempt in attempts:
            if attempt.key.startswith("address:"):
                await _give_back(attempt)  # an address is held to its failures only
            else:  # the account's owner proved themself: its counts and backoff start again
                await LoginThrottle.filter(key=attempt.key).delete()
        await AuthToken.create(user_id=user.id, token_hash=hash_token(token), expires_at=expires_at)
        if _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = _hasher.hash(password)
            await user.save(update_fields=["password_hash"])
        municipality = await Municipality.get(id=user.municipality_id)
        await audit.record(_actor_for(user, municipality.timezone), "auth.login", "User",
                           [user.id])
    return LoginResult(token=token, expires_at=expires_at, user=user)


async def _refuse_locked(attempts: list[_Attempt], user: User | None, email: str) -> NoReturn:
    for attempt in attempts:
        if not attempt.locked and attempt.number > attempt.limit:
            await _lock(attempt)
    await _audit_login_refused(user, email, "TOO_MANY_ATTEMPTS")
    raise _login_locked()


def _actor_for(user: Any, timezone: str) -> Actor:
    """The actor of a user: a model, or a row with the columns of app_user."""
    def get(name: str) -> Any:
        return getattr(user, name) if isinstance(user, User) else user[name]
    return Actor(municipality_id=get("municipality_id"), role=Role(get("role")),
                 user_id=get("id"), email=get("email"), supporter_id=get("supporter_id"),
                 timezone=timezone)


async def authenticate_header(authorization: str | None) -> Actor | None:
    """The actor behind an `Authorization: Bearer <token>` header, or None."""
    return await authenticate(bearer_token(authorization))


async def authenticate_request(authorization: str | None, cookies: Mapping[str, str]
                               ) -> Actor | None:
    """The actor of a file download (a report's CSV or chart): the bearer token of an API
    client, else the staff console's session cookie (its signed-in browser). Only for reads:
    changes come through GraphQL, where the console's forms carry CSRF tokens."""
    token = bearer_token(authorization) or cookies.get(SESSION_COOKIE, "")
    return await authenticate(token)


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header, or ""."""
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


async def authenticate(token: str) -> Actor | None:
    """The actor behind a bearer token, or None when unknown, expired or revoked."""
    if not token or len(token) > 200:
        return None
    # Every request starts here, so one plain statement rather than ORM models (issue 12).
    _, rows = await connections.get("default").execute_query(
        _AUTHENTICATE_SQL, [hash_token(token), timeutil.now()])
    if not rows:
        return None
    return _actor_for(rows[0], rows[0]["timezone"])


# A token works while it is unrevoked, unexpired and its user active.
_AUTHENTICATE_SQL = """
SELECT u.id, u.municipality_id, u.role, u.email, u.supporter_id, m.timezone
  FROM auth_token t
  JOIN app_user u ON u.id = t.user_id
  JOIN municipality m ON m.id = u.municipality_id
 WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND t.expires_at > $2 AND u.active
 LIMIT 1"""


async def logout(*, actor: Actor, token: str) -> bool:
    """Revoke the token this request was made with; True when it was still valid."""
    async with in_transaction():
        revoked = await AuthToken.filter(token_hash=hash_token(token), user_id=actor.user_id,
                                         revoked_at__isnull=True).update(revoked_at=timeutil.now())
        await audit.record(actor, "auth.logout", "User", [actor.user_id] if actor.user_id else [])
    return bool(revoked)


async def revoke_user_tokens(*, actor: Actor, user_id: int) -> tuple[User, int]:
    """ADMIN: sign a user out everywhere (a lost phone, a volunteer who left). Returns the
    user and how many live tokens were revoked."""
    require_role(actor, Role.ADMIN)
    async with in_transaction():
        user = await get_scoped(User, user_id, actor, what="ユーザー", field="user_id")
        count = await AuthToken.filter(user_id=user.id, revoked_at__isnull=True,
                                       expires_at__gt=timeutil.now()).update(
            revoked_at=timeutil.now())
        await audit.record(actor, "user.revoke_tokens", "User", [user.id], {"revoked": count})
    return user, count


async def set_user_active(*, actor: Actor, user_id: int, active: bool) -> User:
    """ADMIN: a volunteer who left, a contract that ended. Deactivating signs them out
    everywhere at once (their tokens stop working) and their password no longer logs in."""
    require_role(actor, Role.ADMIN)
    async with in_transaction():
        user = await get_scoped(User, user_id, actor, what="ユーザー", field="user_id",
                                for_update=True)
        if user.id == actor.user_id and not active:
            raise DomainError(AccountsCode.CANNOT_DEACTIVATE_SELF, "自分のアカウントは無効にできません。",
                              "user_id",
                              message_en="You cannot deactivate your own account.")
        user.active = active
        await user.save(update_fields=["active"])
        revoked = 0
        if not active:
            revoked = await AuthToken.filter(user_id=user.id, revoked_at__isnull=True).update(
                revoked_at=timeutil.now())
        await audit.record(actor, "user.activate" if active else "user.deactivate", "User",
                           [user.id], {"revoked": revoked})
    return user


def _check_password(password: str, field: str = "password") -> None:
    where = field
    if len(password) < MIN_PASSWORD_LENGTH:
        raise DomainError(
            AccountsCode.WEAK_PASSWORD,
            f"パスワードは{MIN_PASSWORD_LENGTH}文字以上にしてください。",
            where,
            message_en=f"Passwords need at least {MIN_PASSWORD_LENGTH} characters.",
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise DomainError(CoreCode.BAD_USER_INPUT,
                          f"パスワードは{MAX_PASSWORD_LENGTH}文字以内にしてください。", where,
                          message_en=f"Passwords have at most {MAX_PASSWORD_LENGTH} characters.")


async def _replace_password(user: User, password: str, *, keep_token: str = "") -> int:
    """The one way a password changes: hashed, and every token of the user revoked (but
    `keep_token`, the request's own), so whoever knew the old one is signed out. Returns how
    many tokens were revoked. The caller holds the user's row lock and writes the audit row."""
    user.password_hash = _hasher.hash(password)
    await user.save(update_fields=["password_hash"])
    tokens = AuthToken.filter(user_id=user.id, revoked_at__isnull=True)
    if keep_token:
        tokens = tokens.exclude(token_hash=hash_token(keep_token))
    return await tokens.update(revoked_at=timeutil.now())


async def set_password(*, email: str, password: str) -> User:
    """The CLI (an operator on the server): a new password for a login; every token of the
    user is revoked, so whoever knew the old one is signed out."""
    _check_password(password)
    async with in_transaction():
        user = await User.filter(email=normalise_email(email)).select_for_update().first()
        if user is None:
            raise NotFound("ユーザー", "email")
        await _replace_password(user, password)
        municipality = await Municipality.get(id=user.municipality_id)
        await audit.record(Actor.system(municipality.id, municipality.timezone),
                           "user.set_password", "User", [user.id])
    return user


async def reset_password(*, actor: Actor, user_id: int, password: str | None = None
                         ) -> tuple[User, str | None]:
    """ADMIN: a new password for a user of their municipality who forgot theirs (typed by the
    admin, or generated when `password` is None: then returned, to be shown once). Every
    token of the user is revoked. Returns the user and the generated password, if any."""
    require_role(actor, Role.ADMIN)
    generated = generate_password() if password is None else None
    new_password = generated or password or ""
    _check_password(new_password, "password")
    async with in_transaction():
        user = await get_scoped(User, user_id, actor, what="ユーザー", field="user_id",
                                for_update=True)
        revoked = await _replace_password(user, new_password)
        await audit.record(actor, "user.reset_password", "User", [user.id],
                           {"revoked": revoked, "generated": generated is not None})
    return user, generated


async def change_password(*, actor: Actor, current_password: str, new_password: str,
                          token: str = "") -> User:
    """A user's own new password, given the current one. Their other sessions are signed
    out; the one this is done from (`token`) stays signed in."""
    if actor.user_id is None:
        raise DomainError(CoreCode.FORBIDDEN, "この操作にはログインが必要です。", None,
                          message_en="Only a signed-in user can change their password.")
    _check_password(new_password, "new_password")
    if new_password == current_password:
        raise DomainError(AccountsCode.SAME_PASSWORD, "新しいパスワードは今のパスワードと違うものにしてください。",
                          "new_password",
                          message_en="The new password must differ from the current one.")
    async with in_transaction():
        user = await User.filter(id=actor.user_id, active=True).select_for_update().first()
        if user is None:
            raise NotFound("ユーザー", None)
        ok = await asyncio.to_thread(_password_matches, user.password_hash,
                                     current_password[:MAX_PASSWORD_LENGTH + 1])
        if not ok:
            raise DomainError(AccountsCode.INVALID_CREDENTIALS, "今のパスワードが正しくありません。",
                              "current_password",
                              message_en="The current password is wrong.")
        revoked = await _replace_password(user, new_password, keep_token=token)
        await audit.record(actor, "user.change_password", "User", [user.id],
                           {"revoked": revoked})
    return user


async def unlock_login(*, actor: Actor, email: str) -> tuple[User, int]:
    """ADMIN: let a user of their municipality who is locked out after failed logins try
    again now: the e-mail's counters (from every address, and account-wide) and their backoff
    are cleared. An address blocked for spraying many e-mails stays blocked. Returns the user
    and how many locks were in force."""
    require_role(actor, Role.ADMIN)
    address = normalise_email(clean_text(email, "email", "メールアドレス", 254, required=True) or "")
    async with in_transaction():
        user = await User.get_or_none(email=address, municipality_id=actor.municipality_id)
        if user is None:
            raise NotFound("ユーザー", "email")
        keys = Q(key=_throttle_key("account-wide", address)) | Q(
            key__startswith=_account_key_prefix(address))
        locked = await LoginThrottle.filter(keys, locked_until__gt=timeutil.now()).count()
        await LoginThrottle.filter(keys).delete()
        await audit.record(actor, "user.unlock_login", "User", [user.id], {"locked": locked})
    return user, locked


async def purge_expired_tokens() -> int:
    """Tokens that expired or were revoked a day ago are of no use to anyone."""
    cutoff = timeutil.now() - timedelta(days=1)
    expired = await AuthToken.filter(expires_at__lt=cutoff).delete()
    revoked = await AuthToken.filter(revoked_at__lt=cutoff).delete()
    return expired + revoked


async def purge_stale_throttles() -> int:
    """Counters whose window and lock are long over."""
    cutoff = timeutil.now() - timedelta(days=2)
    return await LoginThrottle.filter(window_started_at__lt=cutoff).filter(
        Q(locked_until__isnull=True) | Q(locked_until__lt=cutoff)).delete()
