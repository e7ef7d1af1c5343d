"""One settings object, read from the environment (see README "Configuration")."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("divide-support", appauthor=False))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL (postgres://user:pass@host:5432/db). Unset: embedded PostgreSQL.",
    )
    database_owner_url: str | None = Field(
        default=None,
        description="URL of the role owning the tables, used by `migrate` only. Unset: DATABASE_URL.",
    )
    database_service_role: str | None = Field(
        default=None,
        description="Role `migrate` grants the service's privileges to. Unset: DATABASE_URL's user.",
    )
    divide_support_data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Where the embedded PostgreSQL keeps its data.",
    )
    public_base_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Public URL of the service, used in links and webhook signatures.",
    )
    log_level: str = Field(default="INFO")

    db_pool_min: int = Field(default=1, ge=1)
    db_pool_max: int = Field(default=10, ge=1)
    db_acquire_timeout_seconds: float = Field(default=10.0, gt=0)
    db_statement_timeout_seconds: float = Field(default=30.0, gt=0)

    token_ttl_hours: int = Field(default=12, ge=1)
    login_max_failures: int = Field(default=5, ge=1)
    login_lockout_minutes: int = Field(default=15, ge=1)

    max_request_bytes: int = Field(default=1_000_000, ge=1024)
    graphql_max_depth: int = Field(default=10, ge=2)
    graphql_max_aliases: int = Field(default=30, ge=1)
    graphql_max_tokens: int = Field(default=2000, ge=100)

    sms_backend: Literal["console", "twilio"] = Field(default="console")
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_from: str | None = None
    twilio_messaging_service_sid: str | None = None
    twilio_api_base: str | None = None
    sms_batch_size: int = Field(default=20, ge=1, le=500)
    sms_poll_seconds: float = Field(default=2.0, gt=0)
    sms_lease_seconds: float = Field(default=120.0, ge=1)
    sms_send_timeout_seconds: float = Field(default=15.0, gt=0)
    sms_max_retries: int = Field(default=6, ge=0)
    sms_unknown_grace_seconds: float = Field(default=120.0, ge=0)

    @property
    def data_dir(self) -> Path:
        return self.divide_support_data_dir

    @property
    def embedded(self) -> bool:
        return not self.database_url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
