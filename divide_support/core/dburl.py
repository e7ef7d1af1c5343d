"""DATABASE_URL and DATABASE_OWNER_URL: libpq connection URLs.

The driver (asyncpg) is handed the URL itself, so every parameter it knows applies: sslmode,
sslrootcert, sslcert, application_name, target_session_attrs, several hosts, and any other
`?name=value` goes to the server as a setting. This module only checks the URL's form before
anything connects (one Japanese sentence, never the password), and says whom and what it
names: the service role's default name is the user of DATABASE_URL.

It reads a URL the way asyncpg does (asyncpg/connect_utils.py), including the libpq
environment defaults (PGUSER, PGDATABASE, ...), so the names it gives are the ones the driver
will use.
"""

from __future__ import annotations

import getpass
import os
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

SCHEMES = ("postgresql", "postgres")
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
TARGET_SESSION_ATTRS = ("any", "primary", "standby", "prefer-standby", "read-write", "read-only")
EXAMPLE = "postgresql://ユーザー:パスワード@ホスト:5432/データベース名?sslmode=require"

_HOST_PORT = re.compile(r"(?P<host>\[[^\]]*\]|[^:]*)(?::(?P<port>[^:]*))?")


class DatabaseUrlError(ValueError):
    """The URL cannot be read; the message is Japanese and never quotes the password."""


@dataclass(frozen=True)
class DatabaseUrl:
    host: str  # as the driver reads it: a host name, several joined by ",", or a socket folder
    port: int
    user: str
    password: str | None = field(repr=False)
    database: str


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise DatabaseUrlError(f"ポート「{text}」は 1〜65535 の数字で書きます")
    return int(text)


def read_database_url(url: str) -> DatabaseUrl:
    """What `url` names, or DatabaseUrlError saying what is wrong with its form."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in SCHEMES or not url.strip().lower().startswith(
            tuple(f"{scheme}://" for scheme in SCHEMES)):
        raise DatabaseUrlError("postgresql:// で始まる URL にしてください")
    if parts.fragment:
        raise DatabaseUrlError("URL に # は使えません（パスワードの記号は %23 のように書きます）")
    auth, at, hostspec = parts.netloc.rpartition("@")
    if at and "@" in auth:
        raise DatabaseUrlError("ユーザー名かパスワードに @ があります。%40 と書いてください")
    query: dict[str, str] = {}
    if parts.query:
        try:
            query = {key: values[-1] for key, values in parse_qs(parts.query, strict_parsing=True).items()}
        except ValueError:
            raise DatabaseUrlError("? の後ろは 名前=値 を & でつないで書きます") from None
    sslmode = query.get("sslmode")
    if sslmode is not None and sslmode not in SSL_MODES:
        raise DatabaseUrlError(f"sslmode「{sslmode}」は使えません（{', '.join(SSL_MODES)} のどれか）")
    attrs = query.get("target_session_attrs")
    if attrs is not None and attrs not in TARGET_SESSION_ATTRS:
        raise DatabaseUrlError(f"target_session_attrs「{attrs}」は使えません"
                               f"（{', '.join(TARGET_SESSION_ATTRS)} のどれか）")

    hosts: list[str] = []
    ports: list[int] = []
    for spec in filter(None, hostspec.split(",")):
        match = _HOST_PORT.fullmatch(spec)
        if match is None:
            raise DatabaseUrlError(f"ホスト「{spec}」を読めません")
        hosts.append(unquote(match["host"]).strip("[]"))
        if match["port"] is not None:
            ports.append(_port(match["port"]))
    if not hosts and query.get("host"):
        hosts = query["host"].split(",")
    if "port" in query:
        query_ports = [_port(p) for p in query["port"].split(",")]
        ports = ports or query_ports

    user_part, _, password_part = auth.partition(":")
    user = unquote(user_part) or query.get("user") or os.environ.get("PGUSER") or getpass.getuser()
    password = unquote(password_part) if password_part else query.get("password")
    database = (unquote(parts.path[1:]) if parts.path not in ("", "/") else None) \
        or query.get("dbname") or query.get("database") or os.environ.get("PGDATABASE") or user
    return DatabaseUrl(
        host=",".join(hosts) or os.environ.get("PGHOST") or "localhost",
        port=ports[0] if ports else int(os.environ.get("PGPORT") or 5432),
        user=user,
        password=password,
        database=database,
    )
