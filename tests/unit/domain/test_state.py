"""``evolve``: one rule per event class, and the checked copy every rule makes."""

from __future__ import annotations

from typing import ClassVar

import pytest

from domain.enums import AssignmentRole
from domain.errors import CorruptStream
from domain.events import AGENT_EVENT_CLASSES, DomainEvent, SessionMessagesRecorded
from domain.execution_state import LlmMessage
from domain.state import AgentState, evolve

from .builders import (
    AGENT_ID,
    action_requested,
    agent_archived,
    agent_created,
    at,
    execution_resumed,
    execution_suspended,
    preferences_updated,
    response_received,
    session_completed,
    session_started,
    session_terminated,
    user_assigned,
    user_unassigned,
)


def _one_of_each() -> list[DomainEvent]:
    """A valid stream holding every event class, each at its own time."""
    return [
        agent_created(),
        preferences_updated({"language": "fr"}, occurred_at=at(1)),
        user_assigned("user-2", AssignmentRole.SHARED, occurred_at=at(2)),
        session_started(occurred_at=at(3)),
        SessionMessagesRecorded(
            agent_id=AGENT_ID,
            occurred_at=at(4),
            session_id="s-1",
            messages=(LlmMessage(role="assistant", content="Hi"),),
        ),
        action_requested(occurred_at=at(5)),
        execution_suspended(occurred_at=at(6)),
        response_received(occurred_at=at(7), evaluation={"correct": True}),
        execution_resumed(occurred_at=at(8)),
        session_completed(occurred_at=at(9), summary={"score": 0.5}),
        session_started("s-2", occurred_at=at(10)),
        session_terminated("s-2", occurred_at=at(11)),
        user_unassigned("user-2", occurred_at=at(12)),
        agent_archived("done", occurred_at=at(13)),
    ]


def test_every_event_class_has_an_evolve_rule_that_runs() -> None:
    stream = _one_of_each()
    missing = set(AGENT_EVENT_CLASSES) - {type(event) for event in stream}
    assert not missing, f"add an instance of {missing} here, and its rule to evolve"
    state: AgentState | None = None
    for event in stream:  # runs every rule, so a misspelt field in one fails here
        state = evolve(state, event)
        assert state.updated_at == event.occurred_at
    assert state is not None
    assert (state.total_sessions, state.total_interactions, state.scored_sessions) == (2, 1, 1)
    assert [s.session_id for s in state.session_history] == ["s-1", "s-2"]
    assert state.session_history[0].transcript == (LlmMessage(role="assistant", content="Hi"),)


def test_events_before_the_creation_are_a_corrupt_stream() -> None:
    with pytest.raises(CorruptStream, match="before its creation"):
        evolve(None, session_started())


@pytest.mark.parametrize(
    "event",
    [
        SessionMessagesRecorded(
            agent_id=AGENT_ID, occurred_at=at(1), session_id="s-1", messages=()
        ),
        action_requested(),
        response_received(),
        session_completed(),
        session_terminated(),
    ],
    ids=lambda event: event.event_type,
)
def test_session_events_without_a_session_are_a_corrupt_stream(event: DomainEvent) -> None:
    with pytest.raises(CorruptStream, match="without an active session"):
        evolve(evolve(None, agent_created()), event)


class _Teleported(DomainEvent):
    event_type: ClassVar[str] = "agent.teleported.v1"


def test_an_event_class_without_a_rule_is_a_type_error() -> None:
    teleported = _Teleported(agent_id=AGENT_ID, occurred_at=at(1))
    with pytest.raises(TypeError, match="_Teleported"):
        evolve(evolve(None, agent_created()), teleported)
    with pytest.raises(CorruptStream):  # before the creation, the stream is wrong first
        evolve(None, teleported)


def test_replace_copies_with_the_changes_and_leaves_the_original() -> None:
    state = evolve(None, agent_created())
    renamed = state.replace(name="Renamed", updated_at=at(5))
    assert (renamed.name, renamed.updated_at) == ("Renamed", at(5))
    assert (state.name, state.updated_at) == ("Tutor agent", agent_created().occurred_at)
    assert renamed.replace(name=state.name, updated_at=state.updated_at) == state


def test_replace_refuses_a_misspelt_field_name() -> None:
    state = evolve(evolve(None, agent_created()), session_started())
    with pytest.raises(TypeError, match="AgentState has no field 'updatedat'"):
        state.replace(updatedat=at(5))
    session = state.active_session
    assert session is not None
    with pytest.raises(TypeError, match="'sesion_id'"):
        session.replace(status=session.status, sesion_id="s-2")
