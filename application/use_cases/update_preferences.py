"""Change an agent's preferences, refusing a change its profile would not run on."""

from __future__ import annotations

from uuid import UUID, uuid4

from pydantic import Field, JsonValue

from application.service import AgentApplication
from application.use_case import UseCase
from domain import commands
from domain.access import Permission, authorize
from domain.commands import CommandResult
from domain.errors import InvalidCommand
from execution.agent_profiles import InvalidPreferences, check_preferences


class UpdatePreferences(UseCase[CommandResult]):
    """The aggregate merges any JSON; the executor reads some keys as the agent's profile
    (``execution.agent_profiles``), where a bad value would fail every later drive. So the
    merged preferences are checked here first (422 naming the key) and only then is the
    domain command sent, whose own access check, under the agent's lock, stays the
    authority (an owner-only key, say)."""

    command_id: UUID = Field(default_factory=uuid4)
    """Fixed before the first attempt: a retry is recognised, not applied twice."""
    changes: dict[str, JsonValue]
    """``None`` removes a key."""

    async def run(self, app: AgentApplication) -> CommandResult:
        state = await app.agent_state(self.agent_id)
        command = commands.UpdatePreferences(
            command_id=self.command_id,
            agent_id=self.agent_id,
            caller=self.caller,
            request_fingerprint=self.request_fingerprint,
            changes=self.changes,
        )
        if self.caller is not None:  # before the check says anything about the agent
            needed = command.required(state) if state is not None else Permission.READ
            authorize(state, self.agent_id, self.caller, needed)
        if state is not None:
            try:
                check_preferences(
                    state.agent_type,
                    state.preferences,
                    self.changes,
                    state.system_prompt_override,
                )
            except InvalidPreferences as error:
                raise InvalidCommand(str(error)) from None
        return await app.execute(command)
