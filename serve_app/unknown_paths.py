"""Unknown API paths answer 404 problem+json whatever the method.

The web UI is mounted at / and matches every path, so without this route a POST to a path
that does not exist would reach the UI's static files and answer their 405, and a known path
called with another method would lose the ``Allow`` header of the route that has it. Included
after every API router: Starlette tries routes in order, so it sees only what none matched.
"""

from __future__ import annotations

from typing import NoReturn

from fastapi import APIRouter, Request
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.routing import Match

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def fallback_for(*api_routers: APIRouter) -> APIRouter:
    """The catch-all of ``/api/...``: a 405 naming the methods when one of ``api_routers``
    has the path, else a 404."""
    routes = [route for r in api_routers for route in r.routes if isinstance(route, APIRoute)]
    router = APIRouter()

    @router.api_route(
        "/api/{path:path}", methods=METHODS, include_in_schema=False, response_model=None
    )
    async def unknown_api_path(request: Request, path: str) -> NoReturn:
        allowed = sorted(
            method
            for route in routes
            if route.matches(request.scope)[0] is Match.PARTIAL
            for method in route.methods or ()
        )
        if allowed:
            raise HTTPException(405, headers={"Allow": ", ".join(allowed)})
        raise HTTPException(404)

    return router
