"""One settings object, read from the environment (see README "Configuration")."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

import platformdirs
from pydantic import Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from divide_support.core.dburl import EXAMPLE as DATABASE_URL_EXAMPLE
from divide_support.core.dburl import DatabaseUrlError, read_database_url


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("divide-support", appauthor=False))


# A DNS name or IPv4 address, or an IPv6 literal (which urlsplit returns without brackets).
_HOST = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*|[0-9a-f.]*:[0-9a-f:.]*")


def _origin(text: str) -> str:
    """`https://host[:port]` as browsers send it in Origin (lower case, no path), or an error
    in Japanese: CORS compares origins as strings, so a stray `/` would silently allow nobody."""
    problem = PydanticCustomError(
        "cors_origin",
        "「{origin}」はオリジンとして正しくありません。https://console.example.jp のように"
        "スキーム（http か https）・ホスト名・必要ならポートだけを書き、パスや末尾の / は"
        "付けません（* は使えません）。複数はカンマで区切ります。",
        {"origin": text},
    )
    try:
        parts = urlsplit(text)
        port = parts.port
        # Browsers send an internationalised host name in its ASCII (punycode) form.
        host = (parts.hostname or "").encode("idna").decode("ascii").lower()
    except (ValueError, UnicodeError):
        raise problem from None
    scheme = parts.scheme.lower()
    if (scheme not in ("http", "https") or not _HOST.fullmatch(host) or port == 0 or parts.path
            or parts.query or parts.fragment or "@" in parts.netloc or text.endswith(("?", "#"))):
        raise problem
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    if port == {"http": 80, "https": 443}[scheme]:
        port = None  # browsers leave the default port out of Origin
    return f"{scheme}://{host}" + (f":{port}" if port is not None else "")


LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class Settings(BaseSettings):
    # An empty variable (`GRAPHIQL=` in an env file) counts as unset.
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False,
                                      env_ignore_empty=True)

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
    # Proxies whose X-Forwarded-For is believed: the client address in the audit trail and
    # the login throttle comes from it. Behind a load balancer on another host, list it.
    forwarded_allow_ips: str = Field(default="127.0.0.1")
    public_base_url: str | None = Field(
        default=None,
        description="Public URL of the service, used in links and webhook signatures. Unset: "
                    "where `serve` listens (core/publicurl.py).",
    )
    log_level: LogLevel = Field(default="INFO")
    log_format: Literal["text", "json"] = Field(default="text")
    # Bearer token a scraper sends for /metrics (unset: only from this machine in the embedded
    # mode, not at all with DATABASE_URL).
    metrics_token: str | None = Field(default=None, min_length=16)

    db_pool_min: int = Field(default=1, ge=1)
    db_pool_max: int = Field(default=10, ge=1)
    db_acquire_timeout_seconds: float = Field(default=10.0, gt=0)
    db_statement_timeout_seconds: float = Field(default=30.0, gt=0)

    token_ttl_hours: int = Field(default=12, ge=1)
    login_max_failures: int = Field(default=5, ge=1)
    login_lockout_minutes: int = Field(default=15, ge=1)
    # Many staff share one office address (a city hall behind one proxy), so the address limit
    # is higher than the account's: it stops password spraying across many e-mails.
    login_max_failures_per_address: int = Field(default=50, ge=1)

    max_request_bytes: int = Field(default=1_000_000, ge=1024)
    graphql_max_depth: int = Field(default=10, ge=2)
    graphql_max_aliases: int = Field(default=30, ge=1)
    graphql_max_tokens: int = Field(default=2000, ge=100)

    sms_backend: Literal["console", "twilio"] = Field(default="console")
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_from: str | None = None
    # The number automated calls come from (a voice-capable Twilio number; an alphanumeric
    # SMS sender cannot call). Unset: TWILIO_FROM.
    twilio_voice_from: str | None = None
    twilio_messaging_service_sid: str | None = None
    twilio_api_base: str | None = None
    sms_batch_size: int = Field(default=20, ge=1, le=500)
    sms_poll_seconds: float = Field(default=2.0, gt=0)
    sms_lease_seconds: float = Field(default=120.0, ge=1)
    sms_send_timeout_seconds: float = Field(default=15.0, gt=0)
    sms_max_retries: int = Field(default=6, ge=0)
    sms_unknown_grace_seconds: float = Field(default=120.0, ge=0)

    # Browser-facing HTTP (divide_support/web/). An unset switch follows the mode: on in the
    # embedded (developer) mode, off with DATABASE_URL.
    graphql_introspection: bool | None = None
    # Plain object subtrees of a query completed by compiled code (api/compiled.py); false:
    # graphql-core completes every field itself (same answers, slower; an escape hatch).
    graphql_compiled: bool = True
    graphiql: bool | None = None
    # NoDecode: a comma-separated list, not JSON.
    cors_allowed_origins: Annotated[tuple[str, ...], NoDecode] = ()

    @field_validator("database_url", "database_owner_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if not value:
            return None  # an empty variable counts as unset
        try:
            read_database_url(value)
        except DatabaseUrlError as error:
            raise PydanticCustomError(
                "database_url", "{problem}。例: {example}",
                {"problem": str(error), "example": DATABASE_URL_EXAMPLE}) from None
        return value.strip()

    @field_validator("public_base_url")
    @classmethod
    def _public_base_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        try:
            parts = urlsplit(value.strip())
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname \
                or parts.query or parts.fragment or "@" in parts.netloc:
            raise PydanticCustomError(
                "public_base_url",
                "https://support.example.jp のように、スキーム（http か https）とホスト名（必要なら"
                "ポートとパス）だけを書きます")
        return value.strip().rstrip("/")

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().upper() in get_args(LogLevel):
            return value.strip().upper()
        return value

    @field_validator("cors_allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list | tuple):
            return tuple(dict.fromkeys(_origin(str(part)) for part in value))
        return value

    @property
    def data_dir(self) -> Path:
        return self.divide_support_data_dir

    @property
    def embedded(self) -> bool:
        return not self.database_url

    @property
    def introspection_enabled(self) -> bool:
        return self.embedded if self.graphql_introspection is None else self.graphql_introspection

    @property
    def graphiql_enabled(self) -> bool:
        return self.embedded if self.graphiql is None else self.graphiql


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def _japanese(problem: dict[str, Any]) -> str:
    """pydantic's English reason for one refused environment variable, in Japanese. The value
    is quoted only where it is a mode name (a literal or a boolean), never a URL or a secret."""
    kind, ctx = problem["type"], problem.get("ctx") or {}
    given = problem.get("input")
    if kind == "literal_error":
        expected = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
        return f"「{given}」は使えません。次のどれかにしてください: {expected}"
    if kind in ("bool_parsing", "bool_type"):
        return f"「{given}」は使えません。true か false にしてください"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "整数で書いてください"
    if kind in ("float_parsing", "float_type"):
        return "数で書いてください"
    bounds = {"greater_than_equal": ("ge", "以上"), "greater_than": ("gt", "より大きく"),
              "less_than_equal": ("le", "以下"), "less_than": ("lt", "未満")}
    if kind in bounds:
        key, word = bounds[kind]
        return f"{ctx.get(key)} {word}にしてください"
    if kind == "string_too_short":
        return f"{ctx.get('min_length')}文字以上にしてください"
    if kind == "string_too_long":
        return f"{ctx.get('max_length')}文字以内にしてください"
    return problem["msg"]  # our own validators' messages are Japanese already


def settings_problems(error: ValidationError) -> list[str]:
    """One Japanese line per environment variable that `Settings()` refused."""
    lines = []
    for problem in error.errors():
        name = "_".join(str(part) for part in problem["loc"] if not isinstance(part, int)).upper()
        lines.append(f"エラー: 環境変数 {name} の値が正しくありません（{_japanese(problem)}）")
    return lines
