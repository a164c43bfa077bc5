"""The FastAPI application: routes, error shapes, limits and health, for any host.

``create_app`` takes a coroutine that opens the replica's backend, so the same app runs in a
Ray Serve replica (``serve_app.deployment``) and in-process in tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request, Response

from serve_app import agents, legacy, streams, web
from serve_app.auth import AuthSettings
from serve_app.backend import Backend
from serve_app.body_limit import MaxBodySizeMiddleware
from serve_app.problems import Problem, install_problem_handlers
from serve_app.schemas import Health

OpenBackend = Callable[[], Awaitable[Backend]]


def create_app(
    open_backend: OpenBackend,
    max_body_bytes: int,
    web_dir: Path | None = None,
    auth: AuthSettings | None = None,
) -> FastAPI:
    """The app; with ``web_dir`` it also serves the built UI under / (``auth`` sets its CSP)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.backend = await open_backend()
        try:
            yield
        finally:
            await app.state.backend.close()

    app = FastAPI(
        title="Agent Host",
        version="0.1.0",
        summary="Durable, event-sourced AI agents: sessions, widgets, history.",
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    app.add_middleware(MaxBodySizeMiddleware, max_bytes=max_body_bytes)
    app.add_middleware(legacy.DeprecationHeaders)
    app.include_router(agents.router)
    app.include_router(streams.router)
    app.include_router(legacy.router)
    app.include_router(web.router)

    @app.get("/healthz", tags=["health"], summary="The process answers")
    async def healthz() -> Health:
        return Health(status="ok")

    @app.get(
        "/readyz",
        tags=["health"],
        summary="The actors and stores answer",
        responses={503: {"model": Problem, "description": "The projector has stopped"}},
    )
    async def readyz(request: Request, response: Response) -> Health:
        backend: Backend = request.app.state.backend
        projection = await backend.projector.status()
        if projection.stopped_by is not None:
            response.status_code = 503
        return Health(
            status="ready" if projection.stopped_by is None else "degraded",
            projection_lag=projection.lag,
            projection_stopped_by=projection.stopped_by,
        )

    if web_dir is not None:
        web.mount_ui(app, web_dir, auth or AuthSettings())
    return app
