"""One logger setup for every command.

Logs travel further than the database (terminals, log shippers, support tickets), so they
say which request or message a line is about and never whom: every line carries the id of
the HTTP request it was written in (`request=<id>`, the id of audit rows and of `INTERNAL`
errors) or of the SMS it is about (`message=<id>`); the access log shows paths without
query values and with capability tokens shortened; tracebacks show the exception's type
and frames but not its message, which for database errors quotes the values.

LOG_FORMAT picks how a record is written, text (one line, tracebacks below it) or json (one
JSON object per line, for log shippers); both go through the same filters and the same
traceback formatting, so what either may show is decided once, here.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import traceback
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import datetime
from types import TracebackType

from divide_support.core import requestctx
from divide_support.core.settings import get_settings

FORMAT = "%(asctime)s %(levelname)s %(name)s [%(context)s]: %(message)s"

# --- which request or message a line is about -----------------------------------------------

_scope: ContextVar[tuple[tuple[str, int | str], ...]] = ContextVar(
    "divide_support_log_scope", default=())


@contextlib.contextmanager
def log_scope(**ids: int | str) -> Iterator[None]:
    """Lines written inside carry these ids, e.g. `with log_scope(message=42):` (the worker,
    outside any HTTP request). Ids only: never a name, number or body."""
    token = _scope.set((*_scope.get(), *ids.items()))
    try:
        yield
    finally:
        _scope.reset(token)


def current_ids() -> dict[str, int | str]:
    """What the current line is about: the HTTP request, else the log scope's ids."""
    info = requestctx.current()
    if info is not None:
        return {"request": info.request_id}
    return dict(_scope.get())


def _context_label(ids: dict[str, int | str]) -> str:
    return " ".join(f"{key}={value}" for key, value in ids.items()) or "-"


def current_context() -> str:
    return _context_label(current_ids())


class ContextFilter(logging.Filter):
    """Puts the current request id (or log scope) on every record: `ids` (a dict) and
    `context` (as the text format shows it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.ids = current_ids()
        record.context = _context_label(record.ids)
        return True


# --- the access log --------------------------------------------------------------------------

# The capability links: whoever has the token reads the seat or the duties without a login.
_TOKEN_PATH = re.compile(r"(/calendar/(?:registrations|assignments|supporters)/)(.*)", re.DOTALL)
# Anything else that looks like a token (a future route, a mistyped prefix).
_LONG_HEX = re.compile(r"[0-9A-Fa-f]{16,}")
_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,39}")
SHOWN = 4  # characters of a token left in the log: enough to tell links apart, not to use one


def _shorten(token: str) -> str:
    return token[:SHOWN] + "…"


def mask_target(target: str) -> str:
    """A request target as the access log may show it: query parameter names without their
    values (a search by name or phone travels in GET query strings) and capability tokens
    shortened, e.g. `/calendar/registrations/3f2a….ics`, `/graphql?query=…&variables=…`."""
    path, has_query, query = target.partition("?")
    token_path = _TOKEN_PATH.match(path)
    if token_path:
        rest = token_path[2]
        suffix = ".ics" if rest.endswith(".ics") else ""
        path = token_path[1] + _shorten(rest.removesuffix(".ics")) + suffix
    else:
        path = _LONG_HEX.sub(lambda match: _shorten(match[0]), path)
    if not has_query:
        return path
    names = [part.partition("=")[0] for part in query.split("&") if part]
    # A name that is not an identifier may itself be the data (`?09012345678`).
    return path + "?" + "&".join(
        f"{name}=…" if _PARAM_NAME.fullmatch(name) else "…" for name in names)


class AccessLogFilter(logging.Filter):
    """Masks the request target in uvicorn's access lines
    (`'%s - "%s %s HTTP/%s" %d'`: client, method, target, version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (args[0], args[1], mask_target(args[2]), *args[3:])
        else:  # another uvicorn's shape: mask every path in the finished line
            message = record.getMessage()
            record.msg = re.sub(r"/\S*", lambda match: mask_target(match[0]), message)
            record.args = ()
        return True


# --- tracebacks ------------------------------------------------------------------------------

_CAUSE = "The above exception was the direct cause of the following exception:"
_CONTEXT = "During handling of the above exception, another exception occurred:"
# Database errors name where they happened; these attributes are schema, never values.
_SAFE_ATTRIBUTES = ("sqlstate", "schema_name", "table_name", "column_name", "constraint_name")


def _frames(tb: TracebackType | None) -> list[str]:
    lines: list[str] = []
    last, repeated = None, 0
    for frame, lineno in traceback.walk_tb(tb):
        where = (frame.f_code.co_filename, lineno, frame.f_code.co_name)
        if where == last:
            repeated += 1
            continue
        if repeated:
            lines.append(f"  [previous line repeated {repeated} more times]")
        last, repeated = where, 0
        lines.append(f'  File "{where[0]}", line {where[1]}, in {where[2]}')
    if repeated:
        lines.append(f"  [previous line repeated {repeated} more times]")
    return lines


def exception_type(error: BaseException) -> str:
    kind = type(error)
    return kind.__qualname__ if kind.__module__ == "builtins" else (
        f"{kind.__module__}.{kind.__qualname__}")


def _summary(error: BaseException) -> str:
    name = exception_type(error)
    details = [f"{attribute}={value}" for attribute in _SAFE_ATTRIBUTES
               if isinstance(value := getattr(error, attribute, None), str) and value]
    return " ".join([name, *details, "(message not logged)"])


def describe_exception(error: BaseException, seen: set[int] | None = None) -> list[str]:
    """The traceback of `error` and of its causes, without any exception's message."""
    seen = set() if seen is None else seen
    seen.add(id(error))
    lines: list[str] = []
    cause, context = error.__cause__, error.__context__
    if cause is not None and id(cause) not in seen:
        lines += [*describe_exception(cause, seen), "", _CAUSE, ""]
    elif context is not None and not error.__suppress_context__ and id(context) not in seen:
        lines += [*describe_exception(context, seen), "", _CONTEXT, ""]
    lines.append("Traceback (most recent call last):")
    lines += _frames(error.__traceback__)
    lines.append(_summary(error))
    if isinstance(error, BaseExceptionGroup):
        for number, member in enumerate(error.exceptions, 1):
            lines.append(f"  +-- {number}:")
            lines += ["  |   " + line for line in describe_exception(member, seen)]
    return lines


class SafeFormatter(logging.Formatter):
    """Formats exceptions as type and stack frames (file, line, function) only: messages of
    database and validation errors quote the values that caused them (`Key (email)=(…)
    already exists`, SQL with parameters). The record keeps its exc_info for in-process
    handlers; only the text written out is cut."""

    def formatException(self, ei: tuple) -> str:  # type: ignore[override]
        error = ei[1]
        if error is None:
            return ""
        return "\n".join(describe_exception(error))

    def format(self, record: logging.LogRecord) -> str:
        # Not logging.Formatter.format: it reuses record.exc_text, which another handler's
        # formatter may have filled with the full message.
        record.message = record.getMessage()
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        if not hasattr(record, "context"):
            record.context = current_context()
        text = self.formatMessage(record)
        if record.exc_info and record.exc_info[1] is not None:
            text = f"{text}\n{self.formatException(record.exc_info)}"
        if record.stack_info:
            text = f"{text}\n{self.formatStack(record.stack_info)}"
        return text


class JsonFormatter(SafeFormatter):
    """One JSON object per line: `time` (ISO 8601 with offset), `level`, `logger`, `message`,
    the ids of `ContextFilter` as `request_id` / `message_id`, and for an exception
    `exception_type` and `exception` (the same type-and-frames text as the text format,
    without any exception's message). The message is the record's own, after the filters
    (the access log's targets are masked before any formatter sees them)."""

    def format(self, record: logging.LogRecord) -> str:
        ids = getattr(record, "ids", None)
        if ids is None:
            ids = current_ids()
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created).astimezone().isoformat(
                timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in ids.items():
            entry[f"{key}_id"] = value if isinstance(value, int | str) else str(value)
        if record.exc_info and record.exc_info[1] is not None:
            entry["exception_type"] = exception_type(record.exc_info[1])
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging() -> None:
    settings = get_settings()
    level = settings.log_level.upper()
    handler = logging.StreamHandler()
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else SafeFormatter(FORMAT))
    logging.basicConfig(level=getattr(logging, level, logging.INFO), handlers=[handler],
                        force=True)
    # Python's warnings through the same handler, so nothing on stderr bypasses the format.
    logging.captureWarnings(True)
    # On the logger, not the handler: it holds whichever handlers a server config adds.
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, AccessLogFilter) for f in access.filters):
        access.addFilter(AccessLogFilter())
    # pgserver and Tortoise are chatty at INFO (Tortoise logs SQL with its parameters at
    # DEBUG); their warnings still show. The twilio client logs every request at INFO,
    # residents' numbers included: never below WARNING.
    for noisy in ("pgserver", "tortoise", "asyncio", "twilio", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
