"""Given-events builders for domain tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.agent import Agent
from domain.enums import AgentType
from domain.execution_state import ExecutionState, LlmMessage, PendingToolCall
from domain.session import ClientAction, ClientResponse

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
OWNER = "user-1"
AGENT_ID = "0b8f7a52-8f3e-4d55-9b0f-3f2f2b9d7e11"


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


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
