from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import strawberry

from divide_support.accounts import models
from divide_support.api.context import Info
from divide_support.api.enums import Role, as_member
from divide_support.api.loaders import MunicipalityLoader, SupporterLoader, loader
from divide_support.api.node import Node
from divide_support.core.ids import to_global_id

if TYPE_CHECKING:
    from divide_support.api.people.types import Supporter


@strawberry.type
class Municipality(Node):
    id: strawberry.ID
    code: str
    name: str
    timezone: str

    @classmethod
    def from_model(cls, m: models.Municipality) -> Municipality:
        return cls(id=strawberry.ID(to_global_id("Municipality", m.id)), code=m.code,
                   name=m.name, timezone=m.timezone)


@strawberry.type
class User(Node):
    id: strawberry.ID
    email: str
    display_name: str
    role: Role
    active: bool = strawberry.field(description="False once an ADMIN deactivated the login.")
    _municipality_id: strawberry.Private[int]
    _supporter_id: strawberry.Private[int | None]

    @classmethod
    def from_model(cls, m: models.User) -> User:
        return cls(id=strawberry.ID(to_global_id("User", m.id)), email=m.email,
                   display_name=m.display_name, role=as_member(Role, m.role), active=m.active,
                   _municipality_id=m.municipality_id, _supporter_id=m.supporter_id)

    @strawberry.field
    async def municipality(self, info: Info) -> Municipality | None:
        row = await loader(info.context, MunicipalityLoader).load(self._municipality_id)
        return Municipality.from_model(row) if row else None

    @strawberry.field
    async def supporter(
        self, info: Info
    ) -> Annotated[Supporter, strawberry.lazy("divide_support.api.people.types")] | None:
        from divide_support.api.people.types import Supporter

        if self._supporter_id is None:
            return None
        row = await loader(info.context, SupporterLoader).load(self._supporter_id)
        return Supporter.from_model(row) if row else None
