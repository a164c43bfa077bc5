"""The live, never-stored events (token deltas, tool progress) of the agent's current drive."""

from __future__ import annotations

from pydantic import Field

from application.live_events import EphemeralBatch
from application.service import AgentApplication
from application.use_case import UseCase


class ReadLiveEvents(UseCase[EphemeralBatch]):
    after: int = Field(default=0, ge=0)
    """Sequence number of the last event the viewer has (0: all still buffered)."""

    async def run(self, app: AgentApplication) -> EphemeralBatch:
        return app.live.since(self.agent_id, self.after)
