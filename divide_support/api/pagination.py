"""Relay connections with totalCount; page size capped at 100."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import strawberry
from tortoise.expressions import RawSQL

from divide_support.api.errors import bad_input

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100

T = TypeVar("T")
Node = TypeVar("Node")


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[Node]):
    cursor: str
    node: Node


@strawberry.type
class Connection(Generic[Node]):
    edges: list[Edge[Node]]
    page_info: PageInfo
    total_count: int


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _offset(after: str | None) -> int:
    if after is None:
        return 0
    try:
        kind, _, value = base64.urlsafe_b64decode(after.encode()).decode().partition(":")
        offset = int(value)
    except Exception as exc:  # a malformed cursor is the client's mistake
        raise bad_input("カーソルが正しくありません。 (invalid cursor)") from exc
    if kind != "offset" or offset < 0:
        raise bad_input("カーソルが正しくありません。 (invalid cursor)")
    return offset + 1


def page_window(first: int | None, after: str | None) -> tuple[int, int]:
    if first is not None and first < 0:
        raise bad_input("first は0以上にしてください。 (first must not be negative)")
    limit = min(DEFAULT_PAGE_SIZE if first is None else first, MAX_PAGE_SIZE)
    return _offset(after), limit


def build_connection(
    items: Sequence[Any], offset: int, total: int, convert: Callable[[Any], T]
) -> Connection[T]:
    edges = [Edge(cursor=_cursor(offset + i), node=convert(item)) for i, item in enumerate(items)]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=offset + len(items) < total,
            has_previous_page=offset > 0,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
        total_count=total,
    )


_TOTAL = "page_total_"


async def paginate_query(query: Any, first: int | None, after: str | None,
                         convert: Callable[[Any], T]) -> Connection[T]:
    """One SQL statement: the page, each row with the total beside it (COUNT(*) OVER ()). Only
    an empty page (first: 0, or past the end) costs a second one, the count."""
    offset, limit = page_window(first, after)
    items = list(await query.annotate(**{_TOTAL: RawSQL("COUNT(*) OVER ()")})
                 .offset(offset).limit(limit)) if limit else []
    total = getattr(items[0], _TOTAL) if items else await query.count()
    return build_connection(items, offset, total, convert)


def paginate_list(items: Sequence[Any], first: int | None, after: str | None,
                  convert: Callable[[Any], T]) -> Connection[T]:
    """For small, already loaded lists (a session's registrations, via a DataLoader)."""
    offset, limit = page_window(first, after)
    return build_connection(items[offset: offset + limit], offset, len(items), convert)
