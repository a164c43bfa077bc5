"""Drive the agent's session until it rests: what the sweeper asks of sessions nobody drives."""

from __future__ import annotations

from application.service import AgentApplication
from application.use_case import UseCase
from domain.errors import SessionStuck
from execution.executor import Outcome


class DriveSession(UseCase[Outcome]):
    """Idempotent: a session already resting answers where it rests (a system request: the
    executor's own steps carry no caller). A stuck session answers ``STUCK``: for the sweeper
    a state to count, not a failure to log every round."""

    async def run(self, app: AgentApplication) -> Outcome:
        try:
            return await app.drive(self.agent_id)
        except SessionStuck:
            return Outcome.STUCK
