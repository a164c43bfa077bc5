"""AgentState and ``evolve``: state is the left fold of ``evolve`` over the agent's events.

Nothing else changes state, so replaying a stream always rebuilds exactly what commands built.
``evolve`` trusts its input (events were validated when decided) and never refuses.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from pydantic import AwareDatetime, Field

from domain.assignment import AgentAssignment
from domain.enums import AgentStatus, AgentType, AssignmentRole, SessionStatus
from domain.errors import CorruptStream
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
from domain.execution_state import ExecutionState
from domain.session import Session, SessionItem, session_score
from domain.value_object import ValueObject

DEFAULT_MAX_HISTORY_SIZE = 50

_E = TypeVar("_E", bound=DomainEvent)


class AgentState(ValueObject):
    id: str
    owner_user_id: str
    agent_type: AgentType
    status: AgentStatus = AgentStatus.ACTIVE
    assignments: tuple[AgentAssignment, ...] = ()

    name: str
    system_prompt_override: str | None = None
    preferences: dict[str, Any] = Field(default_factory=dict)

    total_sessions: int = 0
    total_interactions: int = 0
    successful_completions: int = 0
    scored_sessions: int = 0
    score_total: float = 0.0

    active_session: Session | None = None
    execution_state: ExecutionState | None = None

    session_history: tuple[Session, ...] = ()
    max_history_size: int = Field(default=DEFAULT_MAX_HISTORY_SIZE, ge=1)

    archived_at: AwareDatetime | None = None
    archive_reason: str | None = None

    created_at: AwareDatetime
    updated_at: AwareDatetime
    last_interaction_at: AwareDatetime | None = None

    @property
    def average_score(self) -> float | None:
        """Mean score of the completed sessions that reported one (evaluators, templates)."""
        return self.score_total / self.scored_sessions if self.scored_sessions else None

    def role_of(self, user_id: str) -> AssignmentRole | None:
        for assignment in self.assignments:
            if assignment.user_id == user_id:
                return assignment.role
        return None


def evolve(state: AgentState | None, event: DomainEvent) -> AgentState:
    if isinstance(event, AgentCreated):
        return _on_agent_created(event)
    if state is None:
        raise CorruptStream(f"{event.event_type} for agent {event.agent_id} before its creation")
    rule = _RULES.get(type(event))
    if rule is None:
        raise TypeError(f"evolve has no rule for {type(event).__name__}")
    return rule(state, event)


# ---------------------------------------------------------------------- one rule per event


def _on_agent_created(event: AgentCreated) -> AgentState:
    owner = AgentAssignment(
        user_id=event.owner_user_id,
        role=AssignmentRole.PRIMARY,
        assigned_by=event.owner_user_id,
        assigned_at=event.occurred_at,
    )
    return AgentState(
        id=event.agent_id,
        owner_user_id=event.owner_user_id,
        agent_type=event.agent_type,
        assignments=(owner,),
        name=event.name,
        system_prompt_override=event.system_prompt_override,
        preferences=dict(event.preferences),
        max_history_size=event.max_history_size,
        created_at=event.occurred_at,
        updated_at=event.occurred_at,
    )


def _on_agent_archived(state: AgentState, event: AgentArchived) -> AgentState:
    return state.replace(
        status=AgentStatus.ARCHIVED,
        archived_at=event.occurred_at,
        archive_reason=event.reason,
        updated_at=event.occurred_at,
    )


def _on_user_assigned(state: AgentState, event: UserAssignedToAgent) -> AgentState:
    assignment = AgentAssignment(
        user_id=event.user_id,
        role=event.role,
        assigned_by=event.assigned_by,
        assigned_at=event.occurred_at,
    )
    return state.replace(assignments=(*state.assignments, assignment), updated_at=event.occurred_at)


def _on_user_unassigned(state: AgentState, event: UserUnassignedFromAgent) -> AgentState:
    kept = tuple(a for a in state.assignments if a.user_id != event.user_id)
    return state.replace(assignments=kept, updated_at=event.occurred_at)


def _on_preferences_updated(state: AgentState, event: AgentPreferencesUpdated) -> AgentState:
    return state.replace(preferences=dict(event.preferences), updated_at=event.occurred_at)


def _on_session_started(state: AgentState, event: SessionStarted) -> AgentState:
    started = Session(
        session_id=event.session_id,
        conversation_id=event.conversation_id,
        session_type=event.session_type,
        control_mode=event.control_mode,
        status=SessionStatus.ACTIVE,
        system_prompt=event.system_prompt,
        config=event.config,
        started_at=event.occurred_at,
    )
    return state.replace(
        active_session=started,
        execution_state=None,
        total_sessions=state.total_sessions + 1,
        last_interaction_at=event.occurred_at,
        updated_at=event.occurred_at,
    )


def _on_messages_recorded(state: AgentState, event: SessionMessagesRecorded) -> AgentState:
    session = _session_of(state, event)
    recorded = session.replace(transcript=(*session.transcript, *event.messages))
    return state.replace(active_session=recorded, updated_at=event.occurred_at)


def _on_client_action_requested(state: AgentState, event: ClientActionRequested) -> AgentState:
    session = _session_of(state, event)
    item = SessionItem(
        item_id=event.item_id,
        sequence=len(session.items) + 1,
        agent_prompt=str(event.action.props.get("prompt", "")),
        client_action=event.action,
        started_at=event.occurred_at,
    )
    awaiting = session.replace(
        pending_action=event.action,
        status=SessionStatus.AWAITING_CLIENT_ACTION,
        items=(*session.items, item),
    )
    return state.replace(active_session=awaiting, updated_at=event.occurred_at)


def _on_execution_suspended(state: AgentState, event: ExecutionSuspended) -> AgentState:
    return state.replace(execution_state=event.execution_state, updated_at=event.occurred_at)


def _on_client_response_received(state: AgentState, event: ClientResponseReceived) -> AgentState:
    session = _session_of(state, event)
    response = event.response
    items = tuple(
        item.replace(
            user_response=response.response,
            response_time_ms=response.response_time_ms,
            evaluation=event.evaluation,
            completed_at=event.occurred_at,
        )
        if item.client_action is not None
        and item.client_action.tool_call_id == response.tool_call_id
        and item.completed_at is None
        else item
        for item in session.items
    )
    answered = session.replace(pending_action=None, status=SessionStatus.ACTIVE, items=items)
    return state.replace(
        active_session=answered,
        total_interactions=state.total_interactions + 1,
        last_interaction_at=event.occurred_at,
        updated_at=event.occurred_at,
    )


def _on_execution_resumed(state: AgentState, event: ExecutionResumed) -> AgentState:
    return state.replace(execution_state=None, updated_at=event.occurred_at)


def _on_session_completed(state: AgentState, event: SessionCompleted) -> AgentState:
    session = _session_of(state, event)
    ended = _ended(session, SessionStatus.COMPLETED, event.occurred_at, event.reason, event.summary)
    scored_sessions, score_total = _score_metrics(state, event.summary)
    return state.replace(
        active_session=None,
        execution_state=None,
        session_history=_history_with(state, ended),
        successful_completions=state.successful_completions + 1,
        scored_sessions=scored_sessions,
        score_total=score_total,
        updated_at=event.occurred_at,
    )


def _on_session_terminated(state: AgentState, event: SessionTerminated) -> AgentState:
    session = _session_of(state, event)
    status = SessionStatus(event.final_status)
    ended = _ended(session, status, event.occurred_at, event.reason, None)
    return state.replace(
        active_session=None,
        execution_state=None,
        session_history=_history_with(state, ended),
        updated_at=event.occurred_at,
    )


def _rule(
    event_class: type[_E], rule: Callable[[AgentState, _E], AgentState]
) -> tuple[type[DomainEvent], Callable[[AgentState, Any], AgentState]]:
    """A table entry; mypy checks that the rule takes the event class it is filed under."""
    return event_class, rule


_RULES: dict[type[DomainEvent], Callable[[AgentState, Any], AgentState]] = dict(
    [
        _rule(AgentArchived, _on_agent_archived),
        _rule(UserAssignedToAgent, _on_user_assigned),
        _rule(UserUnassignedFromAgent, _on_user_unassigned),
        _rule(AgentPreferencesUpdated, _on_preferences_updated),
        _rule(SessionStarted, _on_session_started),
        _rule(SessionMessagesRecorded, _on_messages_recorded),
        _rule(ClientActionRequested, _on_client_action_requested),
        _rule(ExecutionSuspended, _on_execution_suspended),
        _rule(ClientResponseReceived, _on_client_response_received),
        _rule(ExecutionResumed, _on_execution_resumed),
        _rule(SessionCompleted, _on_session_completed),
        _rule(SessionTerminated, _on_session_terminated),
    ]
)
"""Rules copy via ``replace``: names checked when run (typing them would repeat each field list)."""


# ---------------------------------------------------------------------- helpers


def _session_of(state: AgentState, event: DomainEvent) -> Session:
    if state.active_session is None:
        raise CorruptStream(f"{event.event_type} for agent {state.id} without an active session")
    return state.active_session


def _ended(
    session: Session,
    status: SessionStatus,
    at: datetime,
    reason: str,
    summary: dict[str, Any] | None,
) -> Session:
    return session.replace(
        status=status, pending_action=None, ended_at=at, end_reason=reason, summary=summary
    )


def _history_with(state: AgentState, ended: Session) -> tuple[Session, ...]:
    """The ended session joins the history; the oldest ones fall off past the bound."""
    return (*state.session_history, ended)[-state.max_history_size :]


def _score_metrics(state: AgentState, summary: dict[str, Any] | None) -> tuple[int, float]:
    """(scored sessions, score total) counting a completed session's score, if it has one."""
    score = session_score(summary)
    if score is None:
        return state.scored_sessions, state.score_total
    return state.scored_sessions + 1, state.score_total + score
