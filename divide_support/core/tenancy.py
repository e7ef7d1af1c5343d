"""Every row belongs to a municipality: fetch only within the caller's."""

from __future__ import annotations

from typing import TypeVar

from tortoise.models import Model

from divide_support.core.actor import Actor
from divide_support.core.errors import NotFound

M = TypeVar("M", bound=Model)


async def get_scoped(
    model: type[M],
    object_id: int | None,
    actor: Actor,
    *,
    what: str,
    field: str | None = None,
    for_update: bool = False,
) -> M:
    """The object if it exists in the actor's municipality, else NOT_FOUND (never FORBIDDEN,
    so foreign IDs reveal nothing)."""
    if object_id is None:
        raise NotFound(what, field)
    query = model.filter(id=object_id, municipality_id=actor.municipality_id)
    if for_update:
        query = query.select_for_update()
    obj = await query.first()
    if obj is None:
        raise NotFound(what, field)
    return obj
