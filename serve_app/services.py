"""What one API replica holds: handles on the actors, its read-model connection, its auth."""

from __future__ import annotations

from dataclasses import dataclass

from actors.projector_actor import ProjectorClient
from actors.runtime import AgentRuntime
from actors.settings import Settings
from eventstore.factory import open_event_store
from eventstore.port import EventStore
from projections.factory import open_read_model
from projections.store import ReadModelStore
from serve_app.auth import Authenticator, AuthSettings
from serve_app.settings import ApiSettings


@dataclass
class Services:
    settings: Settings
    api: ApiSettings
    runtime: AgentRuntime
    projector: ProjectorClient
    read_model: ReadModelStore
    event_store: EventStore
    """For streams: each replica reads the log itself, no actor on the way."""
    authenticator: Authenticator

    async def close(self) -> None:
        await self.read_model.close()
        await self.event_store.close()


async def open_services(settings: Settings, api: ApiSettings, auth: AuthSettings) -> Services:
    read_model = await open_read_model(settings.read_model_url)
    try:
        event_store = await open_event_store(settings.event_store_url)
    except BaseException:
        await read_model.close()
        raise
    return Services(
        settings=settings,
        api=api,
        runtime=AgentRuntime(settings),
        projector=ProjectorClient(settings),
        read_model=read_model,
        event_store=event_store,
        authenticator=Authenticator(auth),
    )
