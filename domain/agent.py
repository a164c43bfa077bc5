"""The Agent aggregate: the business rules of an agent's life, decided against its state.

Each command checks its invariants first and either raises a specific DomainError having
emitted nothing, or emits events that ``evolve`` folds into the state. The runtime appends
``pending_events`` with ``expected_version=version`` and then calls ``mark_committed``.
Time comes in as ``now``: the domain reads no clock, so decisions replay identically.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from domain.answer_check import AnswerCheck
from domain.enums import (
    DEFAULT_SESSION_TYPE,
    AgentStatus,
    AgentType,
    AssignmentRole,
    ControlMode,
    SessionType,
)
from domain.errors import (
    AgentAlreadyExists,
    AgentIsArchived,
    AgentNotFound,
    ClientActionAlreadyPending,
    ExecutionAlreadySuspended,
    ExecutionNotSuspended,
    InvalidAssignment,
    InvalidCommand,
    NoActiveSession,
    NoPendingClientAction,
    OwnerCannotLeave,
    SessionAlreadyActive,
    SessionMismatch,
    UserAlreadyAssigned,
    UserNotAssigned,
    WrongToolCall,
)
from domain.events import (
    AgentArchived,
    AgentCreated,
    AgentPreferencesUpdated,
    ClientActionRequested,
    ClientResponseReceived,
    DomainEvent,
    ExecutionResumed,
    ExecutionSuspended,
    SessionCompleted,
    SessionMessagesRecorded,
    SessionStarted,
    SessionTerminated,
    UserAssignedToAgent,
    UserUnassignedFromAgent,
)
from domain.execution_state import ExecutionState, LlmMessage
from domain.session import ClientAction, ClientResponse, Session, SessionConfig
from domain.state import DEFAULT_MAX_HISTORY_SIZE, AgentState, evolve

ARCHIVE_TERMINATION_REASON = "agent archived"


class Agent:
    def __init__(self, state: AgentState | None = None, version: int = 0) -> None:
        self._state = state
        self._version = version
        self._pending: list[DomainEvent] = []

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def replay(
        cls,
        events: Iterable[DomainEvent],
        *,
        snapshot: AgentState | None = None,
        snapshot_version: int = 0,
    ) -> Agent:
        """Rebuild from the stream (optionally starting from a snapshot at its version)."""
        state, version = snapshot, snapshot_version
        for event in events:
            state = evolve(state, event)
            version += 1
        return cls(state, version)

    @classmethod
    def create(
        cls,
        *,
        agent_id: str,
        owner_user_id: str,
        agent_type: AgentType,
        now: datetime,
        name: str | None = None,
        preferences: Mapping[str, Any] | None = None,
        system_prompt_override: str | None = None,
        max_history_size: int = DEFAULT_MAX_HISTORY_SIZE,
    ) -> Agent:
        agent = cls()
        agent.register(
            agent_id=agent_id,
            owner_user_id=owner_user_id,
            agent_type=agent_type,
            now=now,
            name=name,
            preferences=preferences,
            system_prompt_override=system_prompt_override,
            max_history_size=max_history_size,
        )
        return agent

    def register(
        self,
        *,
        agent_id: str,
        owner_user_id: str,
        agent_type: AgentType,
        now: datetime,
        name: str | None = None,
        preferences: Mapping[str, Any] | None = None,
        system_prompt_override: str | None = None,
        max_history_size: int = DEFAULT_MAX_HISTORY_SIZE,
    ) -> None:
        """Create the agent on an empty stream (the runtime's get-or-create path)."""
        if self._state is not None:
            raise AgentAlreadyExists(f"agent {self._state.id} already exists")
        _require_text(agent_id, "agent_id")
        _require_text(owner_user_id, "owner_user_id")
        if max_history_size < 1:
            raise InvalidCommand("max_history_size must be at least 1")
        self._emit(
            AgentCreated(
                agent_id=agent_id,
                occurred_at=now,
                owner_user_id=owner_user_id,
                agent_type=AgentType(agent_type),
                name=name or f"{AgentType(agent_type).value.title()} agent",
                system_prompt_override=system_prompt_override,
                preferences=dict(preferences or {}),
                max_history_size=max_history_size,
            )
        )

    @property
    def version(self) -> int:
        """Version of the stream the committed state came from (the next expected version)."""
        return self._version

    @property
    def pending_events(self) -> tuple[DomainEvent, ...]:
        return tuple(self._pending)

    def mark_committed(self) -> None:
        self._version += len(self._pending)
        self._pending.clear()

    # ------------------------------------------------------------------ queries

    @property
    def exists(self) -> bool:
        return self._state is not None

    @property
    def state(self) -> AgentState:
        if self._state is None:
            raise AgentNotFound("the agent has not been created")
        return self._state

    @property
    def id(self) -> str:
        return self.state.id

    def has_active_session(self) -> bool:
        return self.state.active_session is not None

    def get_active_session(self) -> Session | None:
        return self.state.active_session

    def get_execution_state(self) -> ExecutionState | None:
        return self.state.execution_state

    def is_suspended(self) -> bool:
        execution = self.state.execution_state
        return execution is not None and execution.pending_tool_call is not None

    def is_archived(self) -> bool:
        return self.state.status is AgentStatus.ARCHIVED

    def is_user_assigned(self, user_id: str) -> bool:
        return self.state.role_of(user_id) is not None

    def get_user_role(self, user_id: str) -> AssignmentRole | None:
        return self.state.role_of(user_id)

    # ------------------------------------------------------------------ agent commands

    def update_preferences(self, changes: Mapping[str, Any], *, now: datetime) -> None:
        """Merge ``changes`` (a ``None`` value removes the key); no change emits nothing."""
        state = self._writable()
        merged = dict(state.preferences)
        for key, value in changes.items():
            _require_text(key, "preference key")
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        if merged != state.preferences:
            self._emit(
                AgentPreferencesUpdated(agent_id=state.id, occurred_at=now, preferences=merged)
            )

    def assign_user(
        self, user_id: str, role: AssignmentRole | str, *, assigned_by: str, now: datetime
    ) -> None:
        state = self._writable()
        _require_text(user_id, "user_id")
        _require_text(assigned_by, "assigned_by")
        try:
            checked_role = AssignmentRole(role)
        except ValueError:
            allowed = ", ".join(r.value for r in AssignmentRole if r is not AssignmentRole.PRIMARY)
            raise InvalidAssignment(f"unknown role {role!r}; expected one of {allowed}") from None
        if checked_role is AssignmentRole.PRIMARY:
            raise InvalidAssignment("the primary role belongs to the owner and is not assignable")
        if state.role_of(user_id) is not None:
            raise UserAlreadyAssigned(f"user {user_id} is already assigned to agent {state.id}")
        self._emit(
            UserAssignedToAgent(
                agent_id=state.id,
                occurred_at=now,
                user_id=user_id,
                role=checked_role,
                assigned_by=assigned_by,
            )
        )

    def unassign_user(self, user_id: str, *, unassigned_by: str, now: datetime) -> None:
        """End ``user_id``'s assignment (``unassigned_by`` is who did: the owner, an admin,
        or the user, leaving); the owner's primary role never ends."""
        state = self._writable()
        _require_text(user_id, "user_id")
        _require_text(unassigned_by, "unassigned_by")
        if user_id == state.owner_user_id:
            raise OwnerCannotLeave(f"the owner of agent {state.id} cannot be unassigned")
        if state.role_of(user_id) is None:
            raise UserNotAssigned(f"user {user_id} is not assigned to agent {state.id}")
        self._emit(
            UserUnassignedFromAgent(
                agent_id=state.id, occurred_at=now, user_id=user_id, unassigned_by=unassigned_by
            )
        )

    def archive(self, reason: str, *, now: datetime) -> None:
        """Soft-delete; an active session is terminated first, in the same commit."""
        state = self._writable()
        _require_text(reason, "reason")
        events: list[DomainEvent] = []
        if state.active_session is not None:
            events.append(
                SessionTerminated(
                    agent_id=state.id,
                    occurred_at=now,
                    session_id=state.active_session.session_id,
                    reason=f"{ARCHIVE_TERMINATION_REASON}: {reason}",
                )
            )
        events.append(AgentArchived(agent_id=state.id, occurred_at=now, reason=reason))
        self._emit(*events)

    # ------------------------------------------------------------------ session commands

    def start_session(
        self,
        *,
        session_id: str,
        conversation_id: str,
        now: datetime,
        session_type: SessionType | None = None,
        control_mode: ControlMode = ControlMode.PROACTIVE,
        system_prompt: str | None = None,
        config: SessionConfig | None = None,
    ) -> Session:
        state = self._writable()
        _require_text(session_id, "session_id")
        _require_text(conversation_id, "conversation_id")
        if state.active_session is not None:
            raise SessionAlreadyActive(
                f"agent {state.id} already has active session {state.active_session.session_id}"
            )
        if any(past.session_id == session_id for past in state.session_history):
            raise InvalidCommand(f"session id {session_id} was already used by this agent")
        self._emit(
            SessionStarted(
                agent_id=state.id,
                occurred_at=now,
                session_id=session_id,
                conversation_id=conversation_id,
                session_type=session_type or DEFAULT_SESSION_TYPE[state.agent_type],
                control_mode=control_mode,
                system_prompt=system_prompt,
                config=config or SessionConfig(),
            )
        )
        return self._session()

    def record_messages(
        self, messages: Sequence[LlmMessage], *, now: datetime, session_id: str | None = None
    ) -> None:
        """Make completed chat messages of the active session durable."""
        session = self._active_session(session_id)
        if not messages:
            raise InvalidCommand("no messages to record")
        self._emit(
            SessionMessagesRecorded(
                agent_id=self.id,
                occurred_at=now,
                session_id=session.session_id,
                messages=tuple(messages),
            )
        )

    def request_client_action(
        self,
        action: ClientAction,
        *,
        now: datetime,
        session_id: str | None = None,
        item_id: str | None = None,
    ) -> None:
        session = self._active_session(session_id)
        self._require_no_pending_action(session)
        self._emit(self._action_requested(session, action, now, item_id))

    def suspend_execution(
        self,
        execution_state: ExecutionState,
        action: ClientAction,
        *,
        now: datetime,
        session_id: str | None = None,
        item_id: str | None = None,
    ) -> None:
        """Park the LLM loop on a widget: records the action (unless already requested)."""
        session = self._active_session(session_id)
        if self.is_suspended():
            raise ExecutionAlreadySuspended(f"session {session.session_id} is already suspended")
        pending_call = execution_state.pending_tool_call
        if pending_call is None:
            raise InvalidCommand("a suspended execution must name the tool call it waits on")
        if pending_call.call_id != action.tool_call_id:
            raise WrongToolCall(
                f"execution waits on {pending_call.call_id} but the action is for "
                f"{action.tool_call_id}"
            )
        events: list[DomainEvent] = []
        if session.pending_action is None:
            events.append(self._action_requested(session, action, now, item_id))
        elif session.pending_action.tool_call_id != action.tool_call_id:
            self._require_no_pending_action(session)  # waiting on another widget: refuse
        events.append(
            ExecutionSuspended(
                agent_id=self.id,
                occurred_at=now,
                session_id=session.session_id,
                execution_state=execution_state,
            )
        )
        self._emit(*events)

    def receive_client_response(
        self,
        response: ClientResponse,
        *,
        now: datetime,
        session_id: str | None = None,
        evaluation: Mapping[str, Any] | None = None,
        check: AnswerCheck | None = None,
    ) -> None:
        """Record the answer (as ``check`` makes it, against the widget pending now); if the
        loop was suspended on it, it resumes in the same commit."""
        session = self._active_session(session_id)
        pending = session.pending_action
        if pending is None:
            raise NoPendingClientAction(f"session {session.session_id} is not waiting on a widget")
        if pending.tool_call_id != response.tool_call_id:
            raise WrongToolCall(
                f"session {session.session_id} waits on tool call {pending.tool_call_id}, "
                f"not {response.tool_call_id}"
            )
        if check is not None:
            checked = check(session, pending, response.response)
            response = response.model_copy(update={"response": checked.response})
            evaluation = checked.evaluation
        events: list[DomainEvent] = [
            ClientResponseReceived(
                agent_id=self.id,
                occurred_at=now,
                session_id=session.session_id,
                response=response,
                evaluation=dict(evaluation) if evaluation is not None else None,
            )
        ]
        execution = self.state.execution_state
        suspended_call = execution.pending_tool_call if execution is not None else None
        if suspended_call is not None and suspended_call.call_id == response.tool_call_id:
            events.append(
                ExecutionResumed(
                    agent_id=self.id,
                    occurred_at=now,
                    session_id=session.session_id,
                    tool_call_id=response.tool_call_id,
                )
            )
        self._emit(*events)

    def resume_execution(
        self,
        response: ClientResponse,
        *,
        now: datetime,
        session_id: str | None = None,
        evaluation: Mapping[str, Any] | None = None,
    ) -> ExecutionState:
        """Accept the answer the suspended loop waits on and hand back its saved state."""
        session = self._active_session(session_id)
        execution = self.state.execution_state
        if execution is None or execution.pending_tool_call is None:
            raise ExecutionNotSuspended(f"session {session.session_id} has no suspended execution")
        if execution.pending_tool_call.call_id != response.tool_call_id:
            raise WrongToolCall(
                f"execution waits on tool call {execution.pending_tool_call.call_id}, "
                f"not {response.tool_call_id}"
            )
        self.receive_client_response(
            response, now=now, session_id=session.session_id, evaluation=evaluation
        )
        return execution

    def complete_session(
        self,
        *,
        now: datetime,
        reason: str = "criteria_met",
        summary: Mapping[str, Any] | None = None,
        session_id: str | None = None,
    ) -> Session:
        """Finish successfully: the session moves to history and the metrics count it."""
        session = self._active_session(session_id)
        _require_text(reason, "reason")
        if session.pending_action is not None:
            raise ClientActionAlreadyPending(
                f"session {session.session_id} still waits on {session.pending_action.tool_call_id}"
                "; answer it or terminate the session"
            )
        self._emit(
            SessionCompleted(
                agent_id=self.id,
                occurred_at=now,
                session_id=session.session_id,
                reason=reason,
                summary=dict(summary) if summary is not None else None,
            )
        )
        return self.state.session_history[-1]

    def terminate_session(
        self, reason: str, *, now: datetime, session_id: str | None = None
    ) -> Session:
        """End early (user or operator): clears the execution state; the session goes to history."""
        return self._end_early(reason, "terminated", now, session_id)

    def expire_session(
        self, reason: str, *, now: datetime, session_id: str | None = None
    ) -> Session:
        """End on a time limit (``time_limit``, ``item_timeout``, ``inactivity``)."""
        return self._end_early(reason, "expired", now, session_id)

    # ------------------------------------------------------------------ internals

    def _emit(self, *events: DomainEvent) -> None:
        state = self._state
        for event in events:
            state = evolve(state, event)
        self._state = state
        self._pending.extend(events)

    def _writable(self) -> AgentState:
        state = self.state
        if state.status is AgentStatus.ARCHIVED:
            raise AgentIsArchived(f"agent {state.id} is archived and accepts only reads")
        return state

    def _session(self) -> Session:
        session = self.state.active_session
        if session is None:
            raise NoActiveSession(f"agent {self.state.id} has no active session")
        return session

    def _active_session(self, session_id: str | None) -> Session:
        self._writable()
        session = self._session()
        if session_id is not None and session_id != session.session_id:
            raise SessionMismatch(
                f"session {session_id} is not the active session ({session.session_id})"
            )
        return session

    @staticmethod
    def _require_no_pending_action(session: Session) -> None:
        if session.pending_action is not None:
            raise ClientActionAlreadyPending(
                f"session {session.session_id} already waits on "
                f"{session.pending_action.tool_call_id}"
            )

    def _action_requested(
        self, session: Session, action: ClientAction, now: datetime, item_id: str | None
    ) -> ClientActionRequested:
        if any(item.item_id == (item_id or action.tool_call_id) for item in session.items):
            raise InvalidCommand(f"item {item_id or action.tool_call_id} already exists")
        return ClientActionRequested(
            agent_id=self.id,
            occurred_at=now,
            session_id=session.session_id,
            item_id=item_id or action.tool_call_id,
            action=action,
        )

    def _end_early(
        self,
        reason: str,
        final_status: Literal["terminated", "expired"],
        now: datetime,
        session_id: str | None,
    ) -> Session:
        session = self._active_session(session_id)
        _require_text(reason, "reason")
        self._emit(
            SessionTerminated(
                agent_id=self.id,
                occurred_at=now,
                session_id=session.session_id,
                reason=reason,
                final_status=final_status,
            )
        )
        return self.state.session_history[-1]


def _require_text(value: str, what: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidCommand(f"{what} must be a non-empty string")
