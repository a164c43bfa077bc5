"""What one API replica's routes call: the agents' hosts, the projector, its read-model and
log connections, its authenticator."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from actors.projector_actor import ProjectionStatus, ProjectorClient
from actors.runtime import AgentRuntime
from actors.settings import Settings
from application.use_case import UseCases
from eventstore.factory import open_event_store
from eventstore.port import EventStore
from projections.factory import open_read_model
from projections.store import ReadModelStore
from serve_app.auth import Authenticator, AuthSettings
from serve_app.settings import ApiSettings


class ProjectionProgress(Protocol):
    """How far the read model has followed the log: the projector actor, or an in-process
    projector in tests."""

    async def status(self) -> ProjectionStatus: ...

    async def wait_for_position(self, position: int, timeout_s: float) -> bool: ...


@dataclass
class Backend:
    settings: Settings
    api: ApiSettings
    runtime: UseCases
    """Where use cases go: the agents' host actors (an in-process application in tests)."""
    projector: ProjectionProgress
    read_model: ReadModelStore
    event_store: EventStore
    """For streams: each replica reads the log itself, no actor on the way."""
    authenticator: Authenticator

    async def close(self) -> None:
        await self.runtime.close()
        await self.read_model.close()
        await self.event_store.close()


async def open_backend(settings: Settings, api: ApiSettings, auth: AuthSettings) -> Backend:
    read_model = await open_read_model(settings.read_model_url)
    try:
        event_store = await open_event_store(settings.event_store_url)
    except BaseException:
        await read_model.close()
        raise
    return Backend(
        settings=settings,
        api=api,
        runtime=AgentRuntime(settings),
        projector=ProjectorClient(settings),
        read_model=read_model,
        event_store=event_store,
        authenticator=Authenticator(auth),
    )
