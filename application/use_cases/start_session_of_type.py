"""Start a session of a type on the caller's agent for it, creating that agent on first use:
what the deprecated session API does, in one call (a legacy session *is* an agent session)."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from pydantic import Field

from application.replies import SessionReply
from application.service import AgentApplication
from application.use_case import UseCase
from application.use_cases.start_session import StartSession
from domain.access import Caller
from domain.commands import GetOrCreateAgent
from domain.enums import AGENT_TYPE_OF_SESSION_TYPE, SessionType
from domain.errors import InvalidCommand
from domain.ids import agent_id_for
from domain.session import SessionConfig


class StartSessionOfType(UseCase[SessionReply]):
    may_create = True  # it gets or creates the caller's own agent first

    command_id: UUID = Field(default_factory=uuid4)
    session_type: SessionType
    system_prompt: str | None = None
    config: SessionConfig = Field(default_factory=SessionConfig)

    @classmethod
    def by(cls, caller: Caller, session_type: SessionType, **fields: Any) -> StartSessionOfType:
        """The request to start it on ``caller``'s agent of the type ``session_type`` maps to."""
        agent_id = agent_id_for(caller.user_id, AGENT_TYPE_OF_SESSION_TYPE[session_type])
        return cls(agent_id=agent_id, caller=caller, session_type=session_type, **fields)

    async def run(self, app: AgentApplication) -> SessionReply:
        agent_type = AGENT_TYPE_OF_SESSION_TYPE[self.session_type]
        if self.caller is None or self.agent_id != agent_id_for(self.caller.user_id, agent_type):
            raise InvalidCommand("a session of a type starts on its caller's own agent")
        await app.execute(
            GetOrCreateAgent.for_user(self.caller.user_id, agent_type, caller=self.caller)
        )
        start = StartSession(
            agent_id=self.agent_id,
            caller=self.caller,
            command_id=self.command_id,
            request_fingerprint=self.request_fingerprint,
            session_type=self.session_type,
            system_prompt=self.system_prompt,
            config=self.config,
        )
        return await start.run(app)
