"""GraphiQL on GET /graphql for browsers: our own page, every asset from this server.

Off unless GRAPHIQL turns it on (by default on only in the embedded mode); off, a browser
gets a plain 404. Everything else on /graphql is the API (divide_support.api.http).
"""

from __future__ import annotations

from importlib.resources import files

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response

from divide_support.api.http import graphql_endpoint
from divide_support.core.settings import get_settings

PAGE = files("divide_support.web").joinpath("templates/graphiql.html").read_text("utf-8")


def wants_graphiql(request: Request) -> bool:
    """A browser opening /graphql (an API client's GET carries `query`)."""
    return (request.method == "GET" and "text/html" in request.headers.get("accept", "")
            and "query" not in request.query_params)


async def graphql_or_graphiql(request: Request) -> Response:
    if wants_graphiql(request):
        if not get_settings().graphiql_enabled:
            return PlainTextResponse("ページが見つかりません（このサーバーでは GraphiQL は有効になっていません）。",
                                     status_code=404)
        return HTMLResponse(PAGE)
    return await graphql_endpoint(request)
