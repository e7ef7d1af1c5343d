"""create_app(): the Starlette application."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from tortoise import connections
from tortoise.contrib.starlette import RegisterTortoise

from divide_support.calendar.http import (
    assignment_ics,
    municipality_ics,
    registration_ics,
    supporter_ics,
    venue_ics,
)
from divide_support.core.database import ConnectionParams, resolve_connection, tortoise_config
from divide_support.core.db_backend import RequestConnectionMiddleware
from divide_support.core.metrics import MetricsMiddleware, metrics_endpoint
from divide_support.core.requestctx import RequestContextMiddleware
from divide_support.core.settings import get_settings
from divide_support.messaging.dispatcher import outbox_metrics
from divide_support.messaging.webhooks import (
    twilio_call_status,
    twilio_gather,
    twilio_inbound,
    twilio_status,
    twilio_voice,
)
from divide_support.paper.http import schedule_pdf, slip_pdf
from divide_support.reports.http import activity_csv, participation_csv, participation_svg
from divide_support.web.assets import static_files
from divide_support.web.graphiql import graphql_or_graphiql
from divide_support.web.pages import not_found
from divide_support.web.routes import console_routes
from divide_support.web.security import security_middleware

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


@contextlib.asynccontextmanager
async def _in_process_worker(enabled: bool) -> AsyncIterator[None]:
    """Embedded mode runs the worker (SMS, housekeeping) inside `serve` (production runs `worker`)."""
    if not enabled:
        yield
        return
    from divide_support import worker
    from divide_support.core.settings import get_settings
    from divide_support.messaging.backends import backend_from_settings
    from divide_support.messaging.dispatcher import Dispatcher

    backend = backend_from_settings(get_settings())
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(Dispatcher(backend), stop))
    try:
        yield
    finally:
        stop.set()
        await task
        await backend.close()


def _settle_garbage_collector() -> None:
    """For a serving process, once it has started: what start-up built (modules, the schema,
    the ORM's models) lives as long as the process, so gc.freeze() keeps it out of every
    collection; a larger first generation collects requests' short-lived objects less often.
    Together they save about a thirtieth of the day view's CPU (docs/performance.md)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_FIRST_GENERATION, *gc.get_threshold()[1:])


GC_FIRST_GENERATION = 5000  # CPython's default is 700


def create_app(connection: ConnectionParams | None = None, *, init_orm: bool = True,
               run_worker: bool = False) -> Starlette:
    """`init_orm=False` when the caller (tests, the CLI) has initialised Tortoise already;
    `run_worker=True` runs the SMS dispatcher in the same process."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if not init_orm:
            async with _in_process_worker(run_worker):
                yield
            return
        params = connection or await resolve_connection()
        # RegisterTortoise (not a bare Tortoise.init) so every request sees the ORM context.
        async with RegisterTortoise(app, config=tortoise_config(params)), \
                _in_process_worker(run_worker):
            _settle_garbage_collector()
            yield

    routes = [
        Route("/graphql", graphql_or_graphiql, methods=["GET", "POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint(outbox_metrics), methods=["GET"]),
        Route("/calendar/registrations/{token}.ics", registration_ics, methods=["GET"]),
        Route("/calendar/assignments/{token}.ics", assignment_ics, methods=["GET"]),
        Route("/calendar/supporters/{token}.ics", supporter_ics, methods=["GET"]),
        Route("/calendar/venues/{venue_id}.ics", venue_ics, methods=["GET"]),
        Route("/calendar/municipality.ics", municipality_ics, methods=["GET"]),
        Route("/reports/participation.csv", participation_csv, methods=["GET"]),
        Route("/reports/participation.svg", participation_svg, methods=["GET"]),
        Route("/reports/activity.csv", activity_csv, methods=["GET"]),
        Route("/paper/schedule.pdf", schedule_pdf, methods=["GET"]),
        Route("/paper/slip.pdf", slip_pdf, methods=["GET"]),
        Route("/webhooks/twilio/status", twilio_status, methods=["POST"]),
        Route("/webhooks/twilio/inbound", twilio_inbound, methods=["POST"]),
        Route("/webhooks/twilio/voice", twilio_voice, methods=["POST"]),
        Route("/webhooks/twilio/voice/gather", twilio_gather, methods=["POST"]),
        Route("/webhooks/twilio/call-status", twilio_call_status, methods=["POST"]),
        Mount("/static", app=static_files(), name="static"),
        # The staff console: / and its pages (its paths never collide with the API's above).
        *console_routes(),
    ]
    return Starlette(routes=routes, lifespan=lifespan,
                     exception_handlers={404: not_found},
                     middleware=[Middleware(MetricsMiddleware, routes=routes),
                                 Middleware(RequestContextMiddleware),
                                 *security_middleware(get_settings()),
                                 Middleware(RequestConnectionMiddleware)])
