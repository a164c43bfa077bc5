"""Start a session and drive it to its first rest (usually: the first widget is showing)."""

from __future__ import annotations

from uuid import UUID, uuid4

from pydantic import Field

from application.replies import SessionReply
from application.service import AgentApplication
from application.use_case import UseCase
from domain import commands
from domain.access import Permission, authorize
from domain.enums import SessionType
from domain.session import SessionConfig


class StartSession(UseCase[SessionReply]):
    command_id: UUID = Field(default_factory=uuid4)
    """Fixed before the first attempt: a retry starts the same session, not a second one."""
    session_type: SessionType | None = None
    system_prompt: str | None = None
    config: SessionConfig = Field(default_factory=SessionConfig)
    then_drive: bool = True
    """False: only start it (whoever asks drives it later, e.g. with ``DriveSession``)."""

    async def run(self, app: AgentApplication) -> SessionReply:
        state = await app.agent_state(self.agent_id)
        if self.caller is not None:  # before the config says anything about the agent
            asked = commands.StartSession(
                agent_id=self.agent_id,
                session_type=self.session_type,
                system_prompt=self.system_prompt,
                config=self.config,
            )
            needed = asked.required(state) if state is not None else Permission.READ
            authorize(state, self.agent_id, self.caller, needed)
        config = self.config
        if state is not None:
            config = app.executor.session_config(state, self.config)
        command = commands.StartSession(
            command_id=self.command_id,
            agent_id=self.agent_id,
            caller=self.caller,
            request_fingerprint=self.request_fingerprint,
            session_type=self.session_type,
            system_prompt=self.system_prompt,
            config=config,
        )
        return await app.drive_after(await app.execute(command), drive=self.then_drive)
