from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from divide_support.core.actor import Role


class Municipality(Model):
    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=6, unique=True, description="全国地方公共団体コード")
    name = fields.CharField(max_length=100)
    timezone = fields.CharField(max_length=64, default="Asia/Tokyo")
    phone = fields.CharField(max_length=32, null=True, description="Centre phone for residents")
    follow_up_days = fields.IntField(default=14)
    # SMS: nothing goes out in quiet hours (local wall-clock minutes after midnight;
    # 21:00-08:00 by default); one sender's pace, shared by all workers.
    sms_quiet_from_minute = fields.IntField(default=21 * 60)
    sms_quiet_until_minute = fields.IntField(default=8 * 60)
    sms_per_second = fields.FloatField(default=1.0)
    # Automated calls: only within this window (10:00-19:00 by default), never on Sundays,
    # national holidays or the year-end closure (unless calls_on_closed_days); a slower
    # pace of their own.
    call_from_minute = fields.IntField(default=10 * 60)
    call_until_minute = fields.IntField(default=19 * 60)
    calls_on_closed_days = fields.BooleanField(default=False)
    calls_per_minute = fields.FloatField(default=6.0)
    # Residents' rights: personal data of a resident with no activity for this many years is
    # erased by `divide-support purge`; erasing keeps the birth year only where allowed.
    retention_years = fields.IntField(default=3)
    erasure_keeps_birth_year = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "municipality"


class User(Model):
    id = fields.IntField(primary_key=True)
    municipality: fields.ForeignKeyRelation[Municipality] = fields.ForeignKeyField(
        "divide_support.Municipality", related_name="users", on_delete=fields.RESTRICT, db_index=True
    )
    email = fields.CharField(max_length=254, unique=True)
    display_name = fields.CharField(max_length=100)
    role = fields.CharEnumField(Role, max_length=16)
    password_hash = fields.CharField(max_length=255)
    supporter = fields.ForeignKeyField(
        "divide_support.Supporter", related_name="users", null=True, on_delete=fields.SET_NULL,
        db_index=True,
    )
    active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "app_user"


class AuthToken(Model):
    """Bearer tokens; only a SHA-256 of the token is stored."""

    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "divide_support.User", related_name="tokens", on_delete=fields.CASCADE, db_index=True
    )
    token_hash = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField(db_index=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "auth_token"


class LoginThrottle(Model):
    """Login attempts per account and per client address (accounts known or not, so a lock
    reveals nothing). Keys are hashes: the table names no e-mail address and no address."""

    key = fields.CharField(max_length=80, primary_key=True)
    # Attempts in the current window: counted before the password is checked, so
    # simultaneous guesses can never all be checked (an address's successes are given back).
    attempts = fields.IntField(default=0)
    window_started_at = fields.DatetimeField()
    locked_until = fields.DatetimeField(null=True)
    # Locks in a row: each one lasts twice as long as the one before (backoff).
    lockouts = fields.IntField(default=0)

    class Meta:
        table = "login_throttle"
