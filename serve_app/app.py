"""The FastAPI application: routes, error shapes, limits and health, for any host.

``create_app`` takes a coroutine that opens the replica's backend, so the same app runs in a
Ray Serve replica (``serve_app.deployment``) and in-process in tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request, Response
from ray.exceptions import RayError

from eventstore.port import StoreUnavailable
from projections.store import ReadModelUnavailable
from serve_app import agents, legacy, streams, unknown_paths, web
from serve_app.auth import AuthSettings
from serve_app.backend import Backend
from serve_app.body_limit import MaxBodySizeMiddleware
from serve_app.openapi import problem_openapi
from serve_app.problems import install_problem_handlers
from serve_app.schemas import Health, NotReadyReason

OpenBackend = Callable[[], Awaitable[Backend]]
READY_CHECK_TIMEOUT_S = 2.0
"""How long /readyz waits for the stores and the projector: not answering by then is down."""
READY_RETRY_AFTER_S = "5"


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
    app.openapi = problem_openapi(app)  # type: ignore[method-assign]
    app.add_middleware(MaxBodySizeMiddleware, max_bytes=max_body_bytes)
    app.add_middleware(legacy.DeprecationHeaders)
    api_routers = (agents.router, streams.router, legacy.router, web.router)
    for router in api_routers:
        app.include_router(router)
    app.include_router(unknown_paths.fallback_for(*api_routers))  # after every API route

    @app.get("/healthz", tags=["health"], summary="The process answers")
    async def healthz() -> Health:
        return Health(status="ok")

    @app.get(
        "/readyz",
        tags=["health"],
        summary="The stores and the projector answer, and the projector follows the log",
        response_model_exclude_none=True,
        responses={
            503: {
                "model": Health,
                "description": "Not ready (with Retry-After): `reason` says why, as a code",
            }
        },
    )
    async def readyz(request: Request, response: Response) -> Health:
        health = await _readiness(request.app.state.backend)
        if health.status != "ready":
            response.status_code = 503
            response.headers["Retry-After"] = READY_RETRY_AFTER_S
        return health

    if web_dir is not None:
        web.mount_ui(app, web_dir, auth or AuthSettings())
    return app


async def _readiness(backend: Backend) -> Health:
    """Ready when this replica's read model and event store answer, and the projector answers
    and still follows the log. A failure is reported by its code alone (the error itself is
    the stores' and the projector's logs' to show)."""
    reason: NotReadyReason = "read_model_unavailable"  # what failed if the next step does
    try:
        async with asyncio.timeout(READY_CHECK_TIMEOUT_S):
            await backend.read_model.checkpoint()
            reason = "event_store_unavailable"
            await backend.event_store.last_position()
            reason = "projector_unavailable"
            projection = await backend.projector.status()
    except (ReadModelUnavailable, StoreUnavailable, RayError, TimeoutError):
        return Health(status="not_ready", reason=reason)
    if projection.stopped_by == "poison_event":
        return Health(
            status="not_ready",
            projection_lag=projection.lag,
            reason="poison_event",
            stopped_at_position=projection.stopped_at,
            stopped_at_event_type=projection.stopped_event_type,
        )
    if projection.stopped_by is not None:
        return Health(status="not_ready", projection_lag=projection.lag, reason="projector_stopped")
    return Health(status="ready", projection_lag=projection.lag)
