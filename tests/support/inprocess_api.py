"""The HTTP API in this process, no Ray: the FastAPI app over a local application service.

Route tests run against exactly the app a Serve replica runs (same routes, errors, auth), with
the application answering use cases in-process instead of through host actors, an in-memory
event store, and a projector following it in a task. For what needs Ray itself (host kills,
replicas, the proxy) keep the Serve end-to-end tests.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
from pydantic import SecretStr

from actors.projector_actor import ProjectionStatus, projection_status
from actors.runtime import host_config
from actors.settings import Settings
from application.bootstrap import build_application
from application.service import AgentApplication
from eventstore.factory import open_event_store
from projections.factory import open_read_model
from projections.projector import Projector
from serve_app.app import create_app
from serve_app.auth import Authenticator, AuthSettings
from serve_app.backend import Backend
from serve_app.settings import ApiSettings


class LocalProjector:
    """The projector actor's read-side face, following the log in a task of this loop."""

    def __init__(self, projector: Projector) -> None:
        self._projector = projector
        self._task = asyncio.create_task(projector.run())

    async def status(self) -> ProjectionStatus:
        """The actor's status, from the same function (there is no retry here: any failure
        stops following)."""
        return await projection_status(self._projector, self._task, pid=0)

    async def wait_for_position(self, position: int, timeout_s: float) -> bool:
        return await self._projector.read_model.wait_for_position(position, timeout_s)

    async def stop(self) -> None:
        """Stop following; a failure that had stopped it already is what ``status`` reports."""
        self._task.cancel()
        await asyncio.wait({self._task})


@dataclass
class InProcessApi:
    http: httpx.AsyncClient
    application: AgentApplication
    services: Backend


@contextlib.asynccontextmanager
async def inprocess_api(
    workdir: Path,
    *,
    secret: str,
    max_body_bytes: int = 4096,
    read_model_url: str | None = None,
    web_dir: Path | None = None,
    **settings_fields: Any,
) -> AsyncIterator[InProcessApi]:
    """The API on an ``httpx`` client (base URL http://api), tokens checked against ``secret``;
    the read model in SQLite under ``workdir`` unless ``read_model_url`` names another; with
    ``web_dir``, the UI mounted at / as ``make run`` serves it."""
    settings = Settings(
        event_store_url=f"memory://{uuid4().hex}",
        read_model_url=read_model_url or f"sqlite:///{workdir / 'read_model.db'}",
        **settings_fields,
    )
    application = build_application(host_config(settings))
    api = ApiSettings(max_body_bytes=max_body_bytes)
    auth = AuthSettings(jwt_secret=SecretStr(secret))
    event_store = await open_event_store(settings.event_store_url)
    read_model = await open_read_model(settings.read_model_url)
    projector = LocalProjector(
        Projector(await open_event_store(settings.event_store_url), read_model)
    )
    services = Backend(
        settings=settings,
        api=api,
        runtime=application,
        projector=projector,
        read_model=read_model,
        event_store=event_store,
        authenticator=Authenticator(auth),
    )

    async def opened() -> Backend:
        return services

    app = create_app(opened, api.max_body_bytes, web_dir=web_dir, auth=auth)
    async with (  # the lifespan's end closes the backend: the application with it
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api", timeout=30
        ) as http,
    ):
        try:
            yield InProcessApi(http=http, application=application, services=services)
        finally:
            await projector.stop()  # before the lifespan closes the stores under it
