"""Events and value objects survive JSON losslessly; the registry maps and upcasts types."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import pytest
from pydantic import ValidationError

from domain.assignment import AgentAssignment
from domain.enums import AgentType, AssignmentRole
from domain.errors import UnknownEventType
from domain.events import (
    AGENT_EVENT_CLASSES,
    AGENT_EVENTS,
    AgentCreated,
    DomainEvent,
    EventRegistry,
)
from domain.execution_state import ExecutionState, LlmMessage, ToolCall
from domain.ids import agent_id_for, stream_name
from domain.session import Session
from domain.state import AgentState

from .builders import OWNER, T0, answer, at, execution, suspended, widget, with_session

PLAN_EVENT_TYPES = {
    "agent.created.v1",
    "agent.archived.v1",
    "agent.user.assigned.v1",
    "agent.preferences.updated.v1",
    "agent.session.started.v1",
    "agent.execution.suspended.v1",
    "agent.execution.resumed.v1",
    "agent.client.action.requested.v1",
    "agent.client.response.received.v1",
    "agent.session.completed.v1",
    "agent.session.terminated.v1",
}


def _through_json(data: dict[str, Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(json.dumps(data))
    return loaded


def _every_event() -> list[DomainEvent]:
    """One real instance of each event type, produced by commands."""
    agent = with_session()
    agent.suspend_execution(execution(), widget(), now=at(2))
    agent.resume_execution(answer(), now=at(3), evaluation={"correct": True, "score": 1})
    agent.record_messages(
        [
            LlmMessage(
                role="assistant",
                content="",
                tool_calls=(ToolCall(id="t1", name="lookup", arguments={"q": "x"}),),
            ),
            LlmMessage(role="tool", content="{}", tool_call_id="t1", name="lookup"),
        ],
        now=at(4),
    )
    agent.complete_session(now=at(5), summary={"score": 1.0})
    agent.start_session(session_id="s-2", conversation_id="c-2", now=at(6))
    agent.update_preferences({"language": "de"}, now=at(7))
    agent.assign_user("user-2", AssignmentRole.MENTEE, assigned_by=OWNER, now=at(8))
    agent.unassign_user("user-2", unassigned_by="user-2", now=at(9))
    agent.archive("reset", now=at(10))
    created = AgentCreated(
        agent_id="a",
        occurred_at=T0,
        owner_user_id=OWNER,
        agent_type=AgentType.TUTOR,
        name="Tutor",
        max_history_size=3,
    )
    return [created, *agent.pending_events]


def test_registry_knows_the_plan_events_plus_the_transcript_and_unassign_events() -> None:
    assert AGENT_EVENTS.types >= PLAN_EVENT_TYPES
    assert AGENT_EVENTS.types - PLAN_EVENT_TYPES == {
        "agent.session.messages.recorded.v1",
        "agent.user.unassigned.v1",
    }
    assert len(AGENT_EVENT_CLASSES) == len(AGENT_EVENTS.types)


def test_every_event_type_is_covered_by_the_round_trip_sample() -> None:
    assert {e.event_type for e in _every_event()} == AGENT_EVENTS.types


@pytest.mark.parametrize("event", _every_event(), ids=lambda e: e.event_type)
def test_every_event_round_trips_through_json(event: DomainEvent) -> None:
    event_type, data = AGENT_EVENTS.encode(event)
    assert event_type == event.event_type
    decoded = AGENT_EVENTS.decode(event_type, _through_json(data))
    assert decoded == event
    assert type(decoded) is type(event)


def test_events_are_immutable_and_reject_naive_times_and_unknown_fields() -> None:
    event = _every_event()[0]
    with pytest.raises(ValidationError):
        event.agent_id = "other"  # type: ignore[misc]
    data = event.to_dict()
    with pytest.raises(ValidationError):
        AgentCreated.from_dict({**data, "occurred_at": datetime(2026, 1, 1).isoformat()})
    with pytest.raises(ValidationError):
        AgentCreated.from_dict({**data, "surprise": 1})


def test_unknown_event_type_is_refused() -> None:
    with pytest.raises(UnknownEventType):
        AGENT_EVENTS.decode("agent.teleported.v1", {})


def test_upcaster_chain_turns_retired_types_into_current_ones() -> None:
    registry = EventRegistry(AGENT_EVENT_CLASSES)
    current = _every_event()[0].to_dict()

    def v0_to_v05(data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return "agent.created.v0.5", {**data, "max_history_size": 7}

    def v05_to_v1(data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        renamed = {k: v for k, v in data.items() if k != "user_id"}
        return "agent.created.v1", {**renamed, "owner_user_id": data["user_id"]}

    registry.register_upcaster("agent.created.v0", v0_to_v05)
    registry.register_upcaster("agent.created.v0.5", v05_to_v1)
    old = {k: v for k, v in current.items() if k not in {"owner_user_id", "max_history_size"}}
    event = registry.decode("agent.created.v0", {**old, "user_id": "legacy-user"})
    assert isinstance(event, AgentCreated)
    assert event.owner_user_id == "legacy-user"
    assert event.max_history_size == 7


def test_upcaster_cycles_and_shadowing_are_refused() -> None:
    registry = EventRegistry(AGENT_EVENT_CLASSES)
    registry.register_upcaster("x.v1", lambda d: ("x.v2", d))
    registry.register_upcaster("x.v2", lambda d: ("x.v1", d))
    with pytest.raises(UnknownEventType):
        registry.decode("x.v1", {})
    with pytest.raises(ValueError, match="current event type"):
        registry.register_upcaster("agent.created.v1", lambda d: ("agent.created.v1", d))


def test_execution_state_round_trips_every_message_kind() -> None:
    state = ExecutionState(
        conversation_snapshot=(
            LlmMessage(role="system", content="sys"),
            LlmMessage(role="user", content="héllo ✓"),
            LlmMessage(
                role="assistant",
                tool_calls=(ToolCall(id="1", name="present_choices", arguments={"o": [1, 2]}),),
            ),
            LlmMessage(role="tool", content="ok", tool_call_id="1", name="present_choices"),
        ),
        iteration=3,
        tool_calls_made=2,
        started_at_ms=1.5,
        suspended_at_ms=2.5,
    )
    assert ExecutionState.from_dict(_through_json(state.to_dict())) == state


def test_session_assignment_and_full_state_round_trip() -> None:
    agent = suspended(with_session())
    agent.assign_user("user-2", "shared", assigned_by=OWNER, now=at(3))
    state = agent.state
    assert AgentState.from_dict(_through_json(state.to_dict())) == state
    session = state.active_session
    assert session is not None
    assert Session.from_dict(_through_json(session.to_dict())) == session
    assignment = state.assignments[-1]
    assert AgentAssignment.from_dict(_through_json(assignment.to_dict())) == assignment


def test_get_or_create_ids_are_deterministic_uuid5() -> None:
    first = agent_id_for("user-1", AgentType.TUTOR)
    assert first == agent_id_for("user-1", AgentType.TUTOR)
    assert uuid.UUID(first).version == 5
    others = {
        agent_id_for("user-1", AgentType.THOUGHT),
        agent_id_for("user-2", AgentType.TUTOR),
        agent_id_for("user-1tutor", AgentType.TUTOR),
    }
    assert first not in others
    assert len(others) == 3
    assert stream_name(first) == f"agent-{first}"
