"""The staff console's routes, mounted at / beside /graphql (see divide_support.app)."""

from __future__ import annotations

from starlette.routing import BaseRoute

from divide_support.web.views import auth, followups, home, messages, people, planning, sessions


def console_routes() -> list[BaseRoute]:
    return [*auth.ROUTES, *home.ROUTES, *sessions.ROUTES, *people.ROUTES, *followups.ROUTES,
            *messages.ROUTES, *planning.ROUTES]
