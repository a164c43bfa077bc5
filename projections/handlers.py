"""Projection handlers: pure functions from (event, position, current documents) to documents.

Each document is a left fold of its own events only (the agent's summary of its active session
is folded from the same events as the SessionDocument, not read from it), so a document never
depends on how far another document has got: that keeps stores without multi-document
transactions (MongoDB) convergent after a crash. An event at or below a document's
``position`` returns that document unchanged, so re-applying any event is harmless.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.enums import AgentStatus, AssignmentRole, SessionStatus
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
from domain.session import SessionItem, session_score
from projections.documents import (
    ActiveSessionSummary,
    AgentDocument,
    AssignmentDocument,
    LastSessionSummary,
    SessionDocument,
)

SessionEvent = (
    SessionStarted
    | SessionMessagesRecorded
    | ClientActionRequested
    | ExecutionSuspended
    | ClientResponseReceived
    | ExecutionResumed
    | SessionCompleted
    | SessionTerminated
)
_SESSION_EVENTS = (
    SessionStarted,
    SessionMessagesRecorded,
    ClientActionRequested,
    ExecutionSuspended,
    ClientResponseReceived,
    ExecutionResumed,
    SessionCompleted,
    SessionTerminated,
)


class ProjectionError(Exception):
    """The log contradicts the read model (e.g. an event for an agent never created)."""


@dataclass(frozen=True, slots=True)
class Projected:
    """The documents after one event; ``session`` is None for events without a session."""

    agent: AgentDocument
    session: SessionDocument | None


def session_id_of(event: DomainEvent) -> str | None:
    """The session an event belongs to, so the projector can load its SessionDocument first."""
    return event.session_id if isinstance(event, _SESSION_EVENTS) else None


def project(
    event: DomainEvent, position: int, agent: AgentDocument | None, session: SessionDocument | None
) -> Projected:
    """Apply one event at global ``position`` to the agent and (if any) its session document."""
    if position < 1:
        raise ValueError(f"positions start at 1, got {position}")
    new_agent = project_agent(event, position, agent)
    if not isinstance(event, _SESSION_EVENTS):
        return Projected(new_agent, session)
    return Projected(new_agent, project_session(event, position, new_agent, session))


def project_agent(event: DomainEvent, position: int, agent: AgentDocument | None) -> AgentDocument:
    if agent is not None and agent.position >= position:
        return agent
    if isinstance(event, AgentCreated):
        if agent is not None:
            raise ProjectionError(f"agent {event.agent_id} created again at position {position}")
        return _created(event, position)
    if agent is None:
        raise ProjectionError(
            f"{event.event_type} at position {position} for agent {event.agent_id}, "
            "which the read model does not have"
        )
    changes = _agent_changes(agent, event, position)
    return agent.model_copy(
        update={**changes, "updated_at": event.occurred_at, "position": position}
    )


def project_session(
    event: SessionEvent, position: int, agent: AgentDocument, session: SessionDocument | None
) -> SessionDocument:
    """Fold a session event into its SessionDocument (``agent`` supplies owner and type)."""
    if session is not None and session.position >= position:
        return session
    if isinstance(event, SessionStarted):
        if session is not None:
            raise ProjectionError(f"session {event.session_id} started again at {position}")
        return _session_started(event, position, agent)
    if session is None:
        raise ProjectionError(
            f"{event.event_type} at position {position} for session {event.session_id}, "
            "which the read model does not have"
        )
    changes = _session_changes(session, event)
    if not changes:
        return session
    return session.model_copy(update={**changes, "position": position})


# ---------------------------------------------------------------------------- agent


def _created(event: AgentCreated, position: int) -> AgentDocument:
    owner = AssignmentDocument(
        user_id=event.owner_user_id,
        role=AssignmentRole.PRIMARY,
        assigned_by=event.owner_user_id,
        assigned_at=event.occurred_at,
    )
    return AgentDocument(
        id=event.agent_id,
        owner_user_id=event.owner_user_id,
        agent_type=event.agent_type,
        status=AgentStatus.ACTIVE,
        name=event.name,
        preferences=dict(event.preferences),
        assignments=(owner,),
        member_user_ids=(event.owner_user_id,),
        created_at=event.occurred_at,
        updated_at=event.occurred_at,
        position=position,
    )


def _agent_changes(agent: AgentDocument, event: DomainEvent, position: int) -> dict[str, Any]:
    match event:
        case AgentArchived(reason=reason, occurred_at=at):
            return {"status": AgentStatus.ARCHIVED, "archived_at": at, "archive_reason": reason}
        case UserAssignedToAgent():
            assignment = AssignmentDocument(
                user_id=event.user_id,
                role=event.role,
                assigned_by=event.assigned_by,
                assigned_at=event.occurred_at,
            )
            members = agent.member_user_ids
            if event.user_id not in members:
                members = (*members, event.user_id)
            return {"assignments": (*agent.assignments, assignment), "member_user_ids": members}
        case UserUnassignedFromAgent(user_id=user_id):
            return {
                "assignments": tuple(a for a in agent.assignments if a.user_id != user_id),
                "member_user_ids": tuple(m for m in agent.member_user_ids if m != user_id),
            }
        case AgentPreferencesUpdated(preferences=preferences):
            return {"preferences": dict(preferences)}
        case SessionStarted(session_id=session_id, occurred_at=at):
            if agent.active_session is not None:
                raise ProjectionError(
                    f"session {session_id} started at {position} while agent {agent.id} "
                    f"has active session {agent.active_session.session_id}"
                )
            return {
                "total_sessions": agent.total_sessions + 1,
                "has_active_session": True,
                "active_session_id": session_id,
                "active_session": ActiveSessionSummary(
                    session_id=session_id, status=SessionStatus.ACTIVE, started_at=at
                ),
                "last_interaction_at": at,
            }
        case SessionMessagesRecorded() | ExecutionSuspended() | ExecutionResumed():
            _active(agent, event, position)  # nothing shown changes, but it must be consistent
            return {}
        case ClientActionRequested():
            active = _active(agent, event, position)
            opened = _new_item(event, sequence=active.items_completed + 1)
            awaiting = active.model_copy(
                update={
                    "status": SessionStatus.AWAITING_CLIENT_ACTION,
                    "pending_action": event.action,
                    "current_item": opened,
                }
            )
            return {"active_session": awaiting}
        case ClientResponseReceived():
            active = _active(agent, event, position)
            current = active.current_item
            answered = current is not None and _answers(event, current)
            resumed = active.model_copy(
                update={
                    "status": SessionStatus.ACTIVE,
                    "pending_action": None,
                    "current_item": None if answered else current,
                    "items_completed": active.items_completed + (1 if answered else 0),
                }
            )
            return {
                "active_session": resumed,
                "total_interactions": agent.total_interactions + 1,
                "last_interaction_at": event.occurred_at,
            }
        case SessionCompleted(reason=reason, summary=summary, occurred_at=at):
            active = _active(agent, event, position)
            score = session_score(summary)
            scored = {}
            if score is not None:  # the same arithmetic as AgentState, so the values are equal
                count, total = agent.scored_sessions + 1, agent.score_total + score
                scored = {
                    "scored_sessions": count,
                    "score_total": total,
                    "average_score": total / count,
                }
            return {
                **_ended(active, SessionStatus.COMPLETED, at, reason, summary),
                "successful_completions": agent.successful_completions + 1,
                **scored,
            }
        case SessionTerminated(reason=reason, final_status=final_status, occurred_at=at):
            active = _active(agent, event, position)
            return _ended(active, SessionStatus(final_status), at, reason, None)
    raise ProjectionError(f"no projection rule for {type(event).__name__}")


def _active(agent: AgentDocument, event: SessionEvent, position: int) -> ActiveSessionSummary:
    active = agent.active_session
    if active is None or active.session_id != event.session_id:
        raise ProjectionError(
            f"{event.event_type} at position {position} for session {event.session_id}, "
            f"but agent {agent.id} has active session {agent.active_session_id}"
        )
    return active


def _ended(
    active: ActiveSessionSummary,
    status: SessionStatus,
    at: datetime,
    reason: str,
    summary: dict[str, Any] | None,
) -> dict[str, Any]:
    last = LastSessionSummary(
        session_id=active.session_id,
        status=status,
        started_at=active.started_at,
        ended_at=at,
        end_reason=reason,
        summary=summary,
    )
    return {
        "has_active_session": False,
        "active_session_id": None,
        "active_session": None,
        "last_session": last,
    }


# ---------------------------------------------------------------------------- session


def _session_started(event: SessionStarted, position: int, agent: AgentDocument) -> SessionDocument:
    return SessionDocument(
        session_id=event.session_id,
        agent_id=event.agent_id,
        owner_user_id=agent.owner_user_id,
        agent_type=agent.agent_type,
        conversation_id=event.conversation_id,
        session_type=event.session_type,
        control_mode=event.control_mode,
        status=SessionStatus.ACTIVE,
        system_prompt=event.system_prompt,
        config=event.config,
        started_at=event.occurred_at,
        position=position,
    )


def _session_changes(session: SessionDocument, event: SessionEvent) -> dict[str, Any]:
    """Changed fields; empty for events that change nothing a SessionDocument shows."""
    match event:
        case SessionMessagesRecorded(messages=messages):
            return {"transcript": (*session.transcript, *messages)}
        case ClientActionRequested(action=action):
            item = _new_item(event, sequence=len(session.items) + 1)
            return {
                "items": (*session.items, item),
                "pending_action": action,
                "status": SessionStatus.AWAITING_CLIENT_ACTION,
            }
        case ClientResponseReceived():
            items = tuple(
                _answered(item, event) if _answers(event, item) else item for item in session.items
            )
            return {
                "items": items,
                "pending_action": None,
                "status": SessionStatus.ACTIVE,
                "items_completed": sum(1 for item in items if item.completed_at is not None),
            }
        case SessionCompleted(reason=reason, summary=summary, occurred_at=at):
            return _session_end(SessionStatus.COMPLETED, at, reason, summary)
        case SessionTerminated(reason=reason, final_status=final_status, occurred_at=at):
            return _session_end(SessionStatus(final_status), at, reason, None)
    return {}  # SessionStarted is handled by the caller; suspension is executor-internal


def _session_end(
    status: SessionStatus, at: datetime, reason: str, summary: dict[str, Any] | None
) -> dict[str, Any]:
    return {
        "status": status,
        "pending_action": None,
        "ended_at": at,
        "end_reason": reason,
        "summary": summary,
    }


# ---------------------------------------------------------------------------- items
# Shared by both folds, and the same rules as the aggregate's ``evolve``.


def _new_item(event: ClientActionRequested, sequence: int) -> SessionItem:
    return SessionItem(
        item_id=event.item_id,
        sequence=sequence,
        agent_prompt=str(event.action.props.get("prompt", "")),
        client_action=event.action,
        started_at=event.occurred_at,
    )


def _answers(event: ClientResponseReceived, item: SessionItem) -> bool:
    return (
        item.client_action is not None
        and item.client_action.tool_call_id == event.response.tool_call_id
        and item.completed_at is None
    )


def _answered(item: SessionItem, event: ClientResponseReceived) -> SessionItem:
    return item.model_copy(
        update={
            "user_response": event.response.response,
            "response_time_ms": event.response.response_time_ms,
            "evaluation": event.evaluation,
            "completed_at": event.occurred_at,
        }
    )
