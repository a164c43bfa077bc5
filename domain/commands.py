"""Commands sent to an agent's activation, and the result every command returns.

A command is a small serialisable message with a ``command_id`` (chosen by the caller, or
generated at the edge). Its events get ids derived from that id, so a retry after a crash is
recognised and answered with the same result instead of acting twice. Ids a command creates
(session, conversation) are derived from it too, for the same reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID, uuid4, uuid5

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from domain.access import MANAGED_PREFERENCE_KEYS, Caller, Permission, authorize
from domain.agent import Agent
from domain.answer_check import AnswerCheck
from domain.enums import AgentType, AssignmentRole, ControlMode, SessionType
from domain.errors import InvalidCommand
from domain.execution_state import ExecutionState, LlmMessage
from domain.ids import agent_id_for
from domain.session import ClientAction, ClientResponse, Session, SessionConfig
from domain.state import DEFAULT_MAX_HISTORY_SIZE, AgentState


class Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    may_create: ClassVar[bool] = False
    """Whether the command may run on an agent whose stream does not exist yet."""

    permission: ClassVar[Permission] = Permission.ACT
    """What the caller must be allowed to do on the agent for the command to run, unless
    ``required`` says otherwise for this command's content."""

    command_id: UUID = Field(default_factory=uuid4)
    agent_id: str = Field(min_length=1)
    caller: Caller | None = None
    """Who sent it; None for the system's own steps (the executor, the sweeper)."""
    request_fingerprint: str | None = Field(default=None, pattern=r"^[0-9a-f]{1,64}$")
    """A digest of the request the command id was chosen for (an Idempotency-Key's): the
    same id with another digest is another request, refused rather than taken as a retry."""

    def decide(self, agent: Agent, now: datetime) -> None:
        """Check the caller's access to the agent as it stands, then apply the command."""
        self.authorize(agent)
        self.apply(agent, now)

    def authorize(self, agent: Agent) -> None:
        """Refuse a caller who may not do this to ``agent`` (the system's own steps may)."""
        if self.caller is not None and (agent.exists or not self.may_create):
            state = agent.state if agent.exists else None
            needed = self.required(state) if state is not None else Permission.READ
            authorize(state, self.agent_id, self.caller, needed)

    def required(self, state: AgentState) -> Permission:
        """The permission this command needs on ``state`` (commands whose content decides
        it override this)."""
        return self.permission

    def apply(self, agent: Agent, now: datetime) -> None:
        """Run the domain method(s); raise DomainError to refuse."""
        raise NotImplementedError

    def session_of(self, agent: Agent) -> Session | None:
        """The session the caller is told about; derived from state so a retry answers alike."""
        return agent.get_active_session() if agent.exists else None


class CommandResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    agent_id: str
    command_id: UUID
    version: int
    """Stream version after the command."""
    position: int = 0
    """Global position of the command's last event (what a read-your-writes query waits for);
    0 when it emitted nothing; for a duplicate, the position where its events were stored."""
    event_types: tuple[str, ...] = ()
    duplicate: bool = False
    """True when the command had already been applied (a retry): nothing was written now."""
    session: Session | None = None
    """The session the command concerns, without its transcript: the transcript grows with
    the conversation and is read from the read model, not shipped with every result."""


def _derived(command_id: UUID, what: str) -> str:
    return str(uuid5(command_id, what))


# ---------------------------------------------------------------------- agent commands


class CreateAgent(Command):
    """Create a new agent with a random (or given) UUID."""

    may_create = True

    owner_user_id: str = Field(min_length=1)
    agent_type: AgentType
    name: str | None = None
    preferences: dict[str, JsonValue] = Field(default_factory=dict)
    system_prompt_override: str | None = None
    max_history_size: int = Field(default=DEFAULT_MAX_HISTORY_SIZE, ge=1)

    def apply(self, agent: Agent, now: datetime) -> None:
        agent.register(
            agent_id=self.agent_id,
            owner_user_id=self.owner_user_id,
            agent_type=self.agent_type,
            now=now,
            name=self.name,
            preferences=self.preferences,
            system_prompt_override=self.system_prompt_override,
            max_history_size=self.max_history_size,
        )


class GetOrCreateAgent(CreateAgent):
    """The one agent a user has of a type: creates it on first use, else changes nothing."""

    @classmethod
    def for_user(cls, owner_user_id: str, agent_type: AgentType, **fields: Any) -> GetOrCreateAgent:
        return cls(
            agent_id=agent_id_for(owner_user_id, agent_type),
            owner_user_id=owner_user_id,
            agent_type=agent_type,
            **fields,
        )

    def apply(self, agent: Agent, now: datetime) -> None:
        if agent.exists:
            if self.agent_id != agent_id_for(self.owner_user_id, self.agent_type):
                raise InvalidCommand("get-or-create needs the deterministic agent id")
            return
        super().apply(agent, now)


class UpdatePreferences(Command):
    changes: dict[str, JsonValue]

    def required(self, state: AgentState) -> Permission:
        """Setting or removing a profile key is the owner's; personal keys any user's."""
        if MANAGED_PREFERENCE_KEYS.isdisjoint(self.changes):
            return Permission.ACT
        return Permission.CONFIGURE_AGENT

    def apply(self, agent: Agent, now: datetime) -> None:
        agent.update_preferences(self.changes, now=now)


class AssignUser(Command):
    permission = Permission.ASSIGN

    user_id: str
    role: AssignmentRole
    assigned_by: str

    def apply(self, agent: Agent, now: datetime) -> None:
        agent.assign_user(self.user_id, self.role, assigned_by=self.assigned_by, now=now)


class UnassignUser(Command):
    """End a user's assignment: another user's (the owner, an admin) or one's own (leave)."""

    user_id: str
    unassigned_by: str

    def required(self, state: AgentState) -> Permission:
        leaving = self.caller is not None and self.caller.user_id == self.user_id
        return Permission.LEAVE if leaving else Permission.UNASSIGN

    def apply(self, agent: Agent, now: datetime) -> None:
        agent.unassign_user(self.user_id, unassigned_by=self.unassigned_by, now=now)


class ArchiveAgent(Command):
    permission = Permission.ARCHIVE

    reason: str

    def apply(self, agent: Agent, now: datetime) -> None:
        agent.archive(self.reason, now=now)


# ---------------------------------------------------------------------- session commands


class StartSession(Command):
    session_type: SessionType | None = None
    control_mode: ControlMode = ControlMode.PROACTIVE
    system_prompt: str | None = None
    config: SessionConfig = Field(default_factory=SessionConfig)

    def required(self, state: AgentState) -> Permission:
        """The defaults (naming a template or a session type at most) are anyone's who may
        use the agent; anything else overrides how the agent runs the session."""
        as_configured = (
            self.system_prompt is None
            and self.control_mode is ControlMode.PROACTIVE
            and self.config == SessionConfig(template_id=self.config.template_id)
        )
        return Permission.ACT if as_configured else Permission.CONFIGURE_SESSION

    @property
    def session_id(self) -> str:
        return _derived(self.command_id, "session")

    def apply(self, agent: Agent, now: datetime) -> None:
        agent.start_session(
            session_id=self.session_id,
            conversation_id=_derived(self.command_id, "conversation"),
            now=now,
            session_type=self.session_type,
            control_mode=self.control_mode,
            system_prompt=self.system_prompt,
            config=self.config,
        )

    def session_of(self, agent: Agent) -> Session | None:
        return _find_session(agent, self.session_id)


class _SessionCommand(Command):
    session_id: str | None = None
    """The session the caller believes is active; None means whichever is."""


class RecordMessages(_SessionCommand):
    messages: tuple[LlmMessage, ...]

    def apply(self, agent: Agent, now: datetime) -> None:
        agent.record_messages(self.messages, now=now, session_id=self.session_id)


class RequestClientAction(_SessionCommand):
    action: ClientAction
    item_id: str | None = None

    def apply(self, agent: Agent, now: datetime) -> None:
        agent.request_client_action(
            self.action, now=now, session_id=self.session_id, item_id=self.item_id
        )


class SuspendExecution(_SessionCommand):
    execution_state: ExecutionState
    action: ClientAction
    item_id: str | None = None

    def apply(self, agent: Agent, now: datetime) -> None:
        agent.suspend_execution(
            self.execution_state,
            self.action,
            now=now,
            session_id=self.session_id,
            item_id=self.item_id,
        )


class SubmitResponse(_SessionCommand):
    """The user's answer; resumes a suspended execution waiting on it (same commit).

    ``check`` (the executor's, never sent over the wire) validates and normalises the answer
    against the pending action this command finds; without it the answer is recorded as
    given, with ``evaluation``.
    """

    response: ClientResponse
    evaluation: dict[str, JsonValue] | None = None
    check: AnswerCheck | None = Field(default=None, exclude=True, repr=False)

    def apply(self, agent: Agent, now: datetime) -> None:
        agent.receive_client_response(
            self.response,
            now=now,
            session_id=self.session_id,
            evaluation=self.evaluation,
            check=self.check,
        )

    def session_of(self, agent: Agent) -> Session | None:
        return _session_answering(agent, self.response.tool_call_id)


class _EndingCommand(_SessionCommand):
    def session_of(self, agent: Agent) -> Session | None:
        if self.session_id is not None:
            return _find_session(agent, self.session_id)
        history = agent.state.session_history
        return agent.get_active_session() or (history[-1] if history else None)


class CompleteSession(_EndingCommand):
    reason: str = "criteria_met"
    summary: dict[str, JsonValue] | None = None

    def apply(self, agent: Agent, now: datetime) -> None:
        agent.complete_session(
            now=now, reason=self.reason, summary=self.summary, session_id=self.session_id
        )


class TerminateSession(_EndingCommand):
    reason: str = "User terminated"
    expired: bool = False

    def apply(self, agent: Agent, now: datetime) -> None:
        end = agent.expire_session if self.expired else agent.terminate_session
        end(self.reason, now=now, session_id=self.session_id)


def _find_session(agent: Agent, session_id: str) -> Session | None:
    if not agent.exists:
        return None
    active = agent.get_active_session()
    if active is not None and active.session_id == session_id:
        return active
    return next((s for s in agent.state.session_history if s.session_id == session_id), None)


def _session_answering(agent: Agent, tool_call_id: str) -> Session | None:
    """The session holding the item answered by ``tool_call_id`` (active, or since ended)."""
    if not agent.exists:
        return None
    candidates: list[Session] = [*reversed(agent.state.session_history)]
    active = agent.get_active_session()
    if active is not None:
        candidates.insert(0, active)
    for session in candidates:
        if any(
            item.client_action is not None and item.client_action.tool_call_id == tool_call_id
            for item in session.items
        ):
            return session
    return None
