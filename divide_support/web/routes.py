"""The staff console's routes, mounted at / beside /graphql (see divide_support.app)."""

from __future__ import annotations

from starlette.routing import BaseRoute

from divide_support.web.views import (
    account,
    admin,
    auth,
    duties,
    followups,
    home,
    messages,
    people,
    planning,
    sessions,
    supporters,
    venues,
)


def console_routes() -> list[BaseRoute]:
    return [*auth.ROUTES, *home.ROUTES, *sessions.ROUTES, *people.ROUTES, *followups.ROUTES,
            *messages.ROUTES, *planning.ROUTES, *supporters.ROUTES, *venues.ROUTES,
            *duties.ROUTES, *admin.ROUTES, *account.ROUTES]
