"""create_app(): the Starlette application."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tortoise import connections
from tortoise.contrib.starlette import RegisterTortoise

from divide_support.api.http import graphql_endpoint
from divide_support.core.database import ConnectionParams, resolve_connection, tortoise_config

log = logging.getLogger(__name__)


async def healthz(request: Request) -> JSONResponse:
    """The process is alive (no dependencies checked)."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """The database answers; load balancers send traffic only then."""
    try:
        async with asyncio.timeout(2.0):
            await connections.get("default").execute_query("SELECT 1")
    except Exception:  # any failure means not ready; details only in the log
        log.warning("database not reachable", exc_info=True)
        return JSONResponse({"status": "unavailable", "database": "unreachable"},
                            status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"})


def create_app(connection: ConnectionParams | None = None, *, init_orm: bool = True) -> Starlette:
    """`init_orm=False` when the caller (tests, the CLI) has initialised Tortoise already."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if not init_orm:
            yield
            return
        params = connection or await resolve_connection()
        # RegisterTortoise (not a bare Tortoise.init) so every request sees the ORM context.
        async with RegisterTortoise(app, config=tortoise_config(params)):
            yield

    routes = [
        Route("/graphql", graphql_endpoint, methods=["GET", "POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
