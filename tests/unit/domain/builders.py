"""Given-events builders for domain tests: agents built by commands, and the events they store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from domain.agent import Agent
from domain.enums import AgentType, AssignmentRole, ControlMode, SessionType
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
    SessionStarted,
    SessionTerminated,
    UserAssignedToAgent,
    UserUnassignedFromAgent,
)
from domain.execution_state import ExecutionState, LlmMessage, PendingToolCall
from domain.session import ClientAction, ClientResponse

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
OWNER = "user-1"
AGENT_ID = "0b8f7a52-8f3e-4d55-9b0f-3f2f2b9d7e11"


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


T1, T2, T3, T4 = (at(n) for n in range(1, 5))


def new_agent(max_history_size: int = 50) -> Agent:
    """A committed, freshly created tutor agent."""
    agent = Agent.create(
        agent_id=AGENT_ID,
        owner_user_id=OWNER,
        agent_type=AgentType.TUTOR,
        now=T0,
        max_history_size=max_history_size,
    )
    agent.mark_committed()
    return agent


def with_session(agent: Agent | None = None, session_id: str = "s-1") -> Agent:
    agent = agent or new_agent()
    agent.start_session(session_id=session_id, conversation_id=f"c-{session_id}", now=at(1))
    agent.mark_committed()
    return agent


def widget(call_id: str = "call-1") -> ClientAction:
    return ClientAction(
        tool_call_id=call_id,
        tool_name="present_choices",
        widget_type="multiple_choice",
        props={"prompt": "2 + 2 = ?", "options": ["3", "4"]},
    )


def execution(call_id: str = "call-1") -> ExecutionState:
    return ExecutionState(
        conversation_snapshot=(
            LlmMessage(role="system", content="You are a tutor."),
            LlmMessage(role="user", content="Quiz me."),
        ),
        iteration=2,
        tool_calls_made=1,
        pending_tool_call=PendingToolCall(
            call_id=call_id, tool_name="present_choices", arguments={"prompt": "2 + 2 = ?"}
        ),
        started_at_ms=1000.0,
        suspended_at_ms=2000.0,
    )


def suspended(agent: Agent | None = None, call_id: str = "call-1") -> Agent:
    agent = agent or with_session()
    agent.suspend_execution(execution(call_id), widget(call_id), now=at(2))
    agent.mark_committed()
    return agent


def answer(call_id: str = "call-1", value: object = "4") -> ClientResponse:
    return ClientResponse(tool_call_id=call_id, response={"selection": value}, response_time_ms=850)


# ---------------------------------------------------------------------- stored events


def agent_created(max_history_size: int = 50) -> AgentCreated:
    """What ``new_agent`` stores."""
    return AgentCreated(
        agent_id=AGENT_ID,
        occurred_at=T0,
        owner_user_id=OWNER,
        agent_type=AgentType.TUTOR,
        name="Tutor agent",
        max_history_size=max_history_size,
    )


def session_started(session_id: str = "s-1", occurred_at: datetime = T1) -> SessionStarted:
    """What ``with_session`` stores."""
    return SessionStarted(
        agent_id=AGENT_ID,
        occurred_at=occurred_at,
        session_id=session_id,
        conversation_id=f"c-{session_id}",
        session_type=SessionType.LEARNING,
        control_mode=ControlMode.PROACTIVE,
    )


def action_requested(
    call_id: str = "call-1", session_id: str = "s-1", occurred_at: datetime = T2
) -> ClientActionRequested:
    return ClientActionRequested(
        agent_id=AGENT_ID,
        occurred_at=occurred_at,
        session_id=session_id,
        item_id=call_id,
        action=widget(call_id),
    )


def execution_suspended(
    call_id: str = "call-1", session_id: str = "s-1", occurred_at: datetime = T2
) -> ExecutionSuspended:
    return ExecutionSuspended(
        agent_id=AGENT_ID,
        occurred_at=occurred_at,
        session_id=session_id,
        execution_state=execution(call_id),
    )


def response_received(
    call_id: str = "call-1",
    session_id: str = "s-1",
    occurred_at: datetime = T3,
    evaluation: dict[str, Any] | None = None,
) -> ClientResponseReceived:
    return ClientResponseReceived(
        agent_id=AGENT_ID,
        occurred_at=occurred_at,
        session_id=session_id,
        response=answer(call_id),
        evaluation=evaluation,
    )


def execution_resumed(
    call_id: str = "call-1", session_id: str = "s-1", occurred_at: datetime = T3
) -> ExecutionResumed:
    return ExecutionResumed(
        agent_id=AGENT_ID, occurred_at=occurred_at, session_id=session_id, tool_call_id=call_id
    )


def session_completed(
    session_id: str = "s-1",
    occurred_at: datetime = T4,
    reason: str = "criteria_met",
    summary: dict[str, Any] | None = None,
) -> SessionCompleted:
    return SessionCompleted(
        agent_id=AGENT_ID,
        occurred_at=occurred_at,
        session_id=session_id,
        reason=reason,
        summary=summary,
    )


def session_terminated(
    session_id: str = "s-1",
    occurred_at: datetime = T4,
    reason: str = "User terminated",
    final_status: Literal["terminated", "expired"] = "terminated",
) -> SessionTerminated:
    return SessionTerminated(
        agent_id=AGENT_ID,
        occurred_at=occurred_at,
        session_id=session_id,
        reason=reason,
        final_status=final_status,
    )


def user_assigned(
    user_id: str, role: AssignmentRole, occurred_at: datetime = T1
) -> UserAssignedToAgent:
    return UserAssignedToAgent(
        agent_id=AGENT_ID, occurred_at=occurred_at, user_id=user_id, role=role, assigned_by=OWNER
    )


def user_unassigned(
    user_id: str, unassigned_by: str = OWNER, occurred_at: datetime = T2
) -> UserUnassignedFromAgent:
    return UserUnassignedFromAgent(
        agent_id=AGENT_ID, occurred_at=occurred_at, user_id=user_id, unassigned_by=unassigned_by
    )


def preferences_updated(
    preferences: dict[str, Any], occurred_at: datetime = T1
) -> AgentPreferencesUpdated:
    return AgentPreferencesUpdated(
        agent_id=AGENT_ID, occurred_at=occurred_at, preferences=preferences
    )


def agent_archived(reason: str, occurred_at: datetime = T3) -> AgentArchived:
    return AgentArchived(agent_id=AGENT_ID, occurred_at=occurred_at, reason=reason)


def session_events(session_id: str = "s-1") -> list[DomainEvent]:
    """The stream of ``with_session()``: created, then one session started."""
    return [agent_created(), session_started(session_id)]


def suspended_events(call_id: str = "call-1") -> list[DomainEvent]:
    """The stream of ``suspended()``: a session whose loop waits on widget ``call_id``."""
    return [*session_events(), action_requested(call_id), execution_suspended(call_id)]
