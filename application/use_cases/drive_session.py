"""Drive the agent's session until it rests: what the sweeper asks of sessions nobody drives."""

from __future__ import annotations

from application.service import AgentApplication
from application.use_case import UseCase
from execution.executor import Outcome


class DriveSession(UseCase[Outcome]):
    """Idempotent: a session already resting answers where it rests (a system request: the
    executor's own steps carry no caller)."""

    async def run(self, app: AgentApplication) -> Outcome:
        return await app.drive(self.agent_id)
