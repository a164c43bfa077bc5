"""Answer the widget the session waits on, then drive the session to its next rest."""

from __future__ import annotations

from uuid import UUID, uuid4

from pydantic import Field, JsonValue

from application.replies import SessionReply
from application.service import AgentApplication
from application.use_case import UseCase
from domain.access import Permission, authorize
from domain.commands import CommandResult
from domain.session import ClientResponse
from execution.agent_profiles import profile_of


class AnswerWidget(UseCase[SessionReply]):
    """While a drive of the agent runs, the agent's ``response_policy`` decides: ``reject``
    goes ahead at once (the aggregate refuses an answer nothing waits for: 409), ``queue``
    waits for the drive to rest first; queued answers then go in arrival order."""

    command_id: UUID = Field(default_factory=uuid4)
    """Fixed before the first attempt: a retry is recognised, not applied twice."""
    tool_call_id: str = Field(min_length=1)
    response: JsonValue
    response_time_ms: float | None = Field(default=None, ge=0)
    session_id: str | None = None
    """The session the caller answers in; None: whichever is active."""
    then_drive: bool = True
    """False: only record the answer (whoever asks drives on later)."""

    async def run(self, app: AgentApplication) -> SessionReply:
        state = await app.agent_state(self.agent_id)
        if self.caller is not None:  # before validation says anything about the widget
            authorize(state, self.agent_id, self.caller, Permission.ACT)
        queues = state is not None and profile_of(state).response_policy == "queue"
        if app.drives.is_running(self.agent_id) and queues:
            async with app.drives.answer_queue(self.agent_id):
                await app.drives.until_idle(self.agent_id)
                return await app.drive_after(await self._record(app), drive=self.then_drive)
        return await app.drive_after(await self._record(app), drive=self.then_drive)

    async def _record(self, app: AgentApplication) -> CommandResult:
        answer = ClientResponse(
            tool_call_id=self.tool_call_id,
            response=self.response,
            response_time_ms=self.response_time_ms,
        )
        return await app.executor.respond(
            self.agent_id,
            answer,
            command_id=self.command_id,
            caller=self.caller,
            request_fingerprint=self.request_fingerprint,
            session_id=self.session_id,
        )
