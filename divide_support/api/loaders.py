"""Per-request DataLoader registry: every relation is fetched in one query per batch.

Loaders are scoped to the caller's municipality, so a foreign key can never pull
another municipality's row into a response.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, ClassVar

from strawberry.dataloader import DataLoader
from tortoise.models import Model

from divide_support.accounts.models import Municipality, User
from divide_support.api.context import Context
from divide_support.followups.models import FollowUp
from divide_support.messaging.models import Message
from divide_support.people.models import Resident, Supporter
from divide_support.scheduling.models import (
    Assignment,
    Course,
    Registration,
    Session,
    Venue,
    Visit,
)
from divide_support.scheduling.staffing import SessionStaffing, staffing_for


class _Loader(DataLoader):
    def __init__(self, context: Context) -> None:
        self.context = context
        super().__init__(load_fn=self._load)

    @property
    def municipality_id(self) -> int:
        assert self.context.actor is not None
        return self.context.actor.municipality_id

    async def _load(self, keys: Sequence[Any]) -> list[Any]:
        raise NotImplementedError


class ByIdLoader(_Loader):
    model: ClassVar[type[Model]]
    tenant_field: ClassVar[str] = "municipality_id"

    async def _load(self, keys: Sequence[int]) -> list[Any]:
        rows = await self.model.filter(id__in=list(keys), **{self.tenant_field:
                                                                  self.municipality_id})
        by_id = {row.id: row for row in rows}
        return [by_id.get(key) for key in keys]


class ManyByLoader(_Loader):
    """All rows whose `key_field` is among the keys, grouped, in `order` order."""

    model: ClassVar[type[Model]]
    key_field: ClassVar[str]
    order: ClassVar[tuple[str, ...]] = ("id",)

    async def _load(self, keys: Sequence[int]) -> list[list[Any]]:
        rows = await self.model.filter(
            **{f"{self.key_field}__in": list(keys), "municipality_id": self.municipality_id}
        ).order_by(*self.order)
        grouped: dict[int, list[Any]] = defaultdict(list)
        for row in rows:
            grouped[getattr(row, self.key_field)].append(row)
        return [grouped.get(key, []) for key in keys]


class MunicipalityLoader(ByIdLoader):
    model = Municipality
    tenant_field = "id"


class UserLoader(ByIdLoader):
    model = User


class VenueLoader(ByIdLoader):
    model = Venue


class CourseLoader(ByIdLoader):
    model = Course


class SessionLoader(ByIdLoader):
    model = Session


class SupporterLoader(ByIdLoader):
    model = Supporter


class ResidentLoader(ByIdLoader):
    model = Resident


class RegistrationLoader(ByIdLoader):
    model = Registration


class VisitLoader(ByIdLoader):
    model = Visit


class FollowUpLoader(ByIdLoader):
    model = FollowUp


class MessageLoader(ByIdLoader):
    model = Message


class AssignmentLoader(ByIdLoader):
    model = Assignment


class AssignmentsBySessionLoader(ManyByLoader):
    model = Assignment
    key_field = "session_id"
    order = ("role", "id")


class AssignmentsBySupporterLoader(ManyByLoader):
    model = Assignment
    key_field = "supporter_id"


class RegistrationsBySessionLoader(ManyByLoader):
    model = Registration
    key_field = "session_id"
    order = ("created_at", "id")


class MessagesByResidentLoader(ManyByLoader):
    model = Message
    key_field = "resident_id"
    order = ("-send_after", "-id")


class RegistrationsByResidentLoader(ManyByLoader):
    model = Registration
    key_field = "resident_id"
    order = ("-created_at", "-id")


class VisitsBySessionLoader(ManyByLoader):
    model = Visit
    key_field = "session_id"
    order = ("created_at", "id")


class FollowUpsByResidentLoader(ManyByLoader):
    model = FollowUp
    key_field = "resident_id"
    order = ("due_on", "id")


class StaffingLoader(_Loader):
    async def _load(self, keys: Sequence[int]) -> list[SessionStaffing | None]:
        rows = await staffing_for(self.municipality_id, list(keys))
        return [rows.get(key) for key in keys]


def loader(context: Context, cls: type[_Loader]) -> Any:
    """The request's single instance of a loader class."""
    instance = context.loaders.get(cls)
    if instance is None:
        instance = context.loaders[cls] = cls(context)
    return instance
