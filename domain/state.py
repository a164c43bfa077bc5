"""AgentState and ``evolve``: state is the left fold of ``evolve`` over the agent's events.

Nothing else changes state, so replaying a stream always rebuilds exactly what commands built.
``evolve`` trusts its input (events were validated when decided) and never refuses.
"""

from __future__ import annotations

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
)
from domain.execution_state import ExecutionState
from domain.session import Session, SessionItem, session_score
from domain.value_object import ValueObject

DEFAULT_MAX_HISTORY_SIZE = 50

_V = TypeVar("_V", bound=ValueObject)


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
        return _created(event)
    if state is None:
        raise CorruptStream(f"{event.event_type} for agent {event.agent_id} before its creation")
    changes = _changes(state, event)
    changes["updated_at"] = event.occurred_at
    return state.model_copy(update=changes)


def _created(event: AgentCreated) -> AgentState:
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


def _session_of(state: AgentState, event: DomainEvent) -> Session:
    if state.active_session is None:
        raise CorruptStream(f"{event.event_type} for agent {state.id} without an active session")
    return state.active_session


def _changes(state: AgentState, event: DomainEvent) -> dict[str, Any]:
    match event:
        case AgentArchived(reason=reason, occurred_at=at):
            return {"status": AgentStatus.ARCHIVED, "archived_at": at, "archive_reason": reason}
        case UserAssignedToAgent():
            assignment = AgentAssignment(
                user_id=event.user_id,
                role=event.role,
                assigned_by=event.assigned_by,
                assigned_at=event.occurred_at,
            )
            return {"assignments": (*state.assignments, assignment)}
        case AgentPreferencesUpdated(preferences=preferences):
            return {"preferences": dict(preferences)}
        case SessionStarted():
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
            return {
                "active_session": started,
                "execution_state": None,
                "total_sessions": state.total_sessions + 1,
                "last_interaction_at": event.occurred_at,
            }
        case SessionMessagesRecorded(messages=messages):
            session = _session_of(state, event)
            return {"active_session": _update(session, transcript=(*session.transcript, *messages))}
        case ClientActionRequested(action=action):
            session = _session_of(state, event)
            item = SessionItem(
                item_id=event.item_id,
                sequence=len(session.items) + 1,
                agent_prompt=str(action.props.get("prompt", "")),
                client_action=action,
                started_at=event.occurred_at,
            )
            awaiting = _update(
                session,
                pending_action=action,
                status=SessionStatus.AWAITING_CLIENT_ACTION,
                items=(*session.items, item),
            )
            return {"active_session": awaiting}
        case ExecutionSuspended(execution_state=execution_state):
            return {"execution_state": execution_state}
        case ClientResponseReceived(response=response, evaluation=evaluation):
            session = _session_of(state, event)
            items = tuple(
                _update(
                    item,
                    user_response=response.response,
                    response_time_ms=response.response_time_ms,
                    evaluation=evaluation,
                    completed_at=event.occurred_at,
                )
                if item.client_action is not None
                and item.client_action.tool_call_id == response.tool_call_id
                and item.completed_at is None
                else item
                for item in session.items
            )
            answered = _update(
                session, pending_action=None, status=SessionStatus.ACTIVE, items=items
            )
            return {
                "active_session": answered,
                "total_interactions": state.total_interactions + 1,
                "last_interaction_at": event.occurred_at,
            }
        case ExecutionResumed():
            return {"execution_state": None}
        case SessionCompleted(reason=reason, summary=summary, occurred_at=at):
            session = _session_of(state, event)
            ended = _end(session, SessionStatus.COMPLETED, at, reason, summary)
            return {
                **_archive_session(state, ended),
                "successful_completions": state.successful_completions + 1,
                **_scored(state.scored_sessions, state.score_total, summary),
            }
        case SessionTerminated(reason=reason, final_status=final_status, occurred_at=at):
            session = _session_of(state, event)
            ended = _end(session, SessionStatus(final_status), at, reason, None)
            return _archive_session(state, ended)
    raise TypeError(f"evolve has no rule for {type(event).__name__}")


def _scored(sessions: int, total: float, summary: dict[str, Any] | None) -> dict[str, Any]:
    """Metrics of a completed session's score (nothing when its summary has none)."""
    score = session_score(summary)
    if score is None:
        return {}
    return {"scored_sessions": sessions + 1, "score_total": total + score}


def _update(value: _V, **changes: Any) -> _V:
    return value.model_copy(update=changes)


def _end(
    session: Session,
    status: SessionStatus,
    at: datetime,
    reason: str,
    summary: dict[str, Any] | None,
) -> Session:
    return _update(
        session,
        status=status,
        pending_action=None,
        ended_at=at,
        end_reason=reason,
        summary=summary,
    )


def _archive_session(state: AgentState, ended: Session) -> dict[str, Any]:
    """The ended session joins the history; the oldest ones fall off past the bound."""
    history = (*state.session_history, ended)[-state.max_history_size :]
    return {"active_session": None, "execution_state": None, "session_history": history}
