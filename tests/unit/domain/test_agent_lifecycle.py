"""Creating, configuring, sharing and archiving agents."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from domain.agent import Agent
from domain.enums import AgentStatus, AgentType, AssignmentRole, SessionStatus
from domain.errors import (
    AgentAlreadyExists,
    AgentIsArchived,
    AgentNotFound,
    InvalidAssignment,
    InvalidCommand,
    UserAlreadyAssigned,
)
from domain.events import (
    AgentArchived,
    AgentCreated,
    AgentPreferencesUpdated,
    SessionTerminated,
    UserAssignedToAgent,
)
from domain.session import ClientResponse

from .builders import AGENT_ID, OWNER, T0, answer, at, new_agent, suspended, with_session


def test_create_emits_agent_created_and_owner_is_primary() -> None:
    agent = Agent.create(
        agent_id=AGENT_ID,
        owner_user_id=OWNER,
        agent_type=AgentType.EVALUATOR,
        now=T0,
        preferences={"language": "fr"},
    )
    (event,) = agent.pending_events
    assert isinstance(event, AgentCreated)
    assert event.owner_user_id == OWNER
    assert event.agent_type is AgentType.EVALUATOR
    assert event.name == "Evaluator agent"
    state = agent.state
    assert state.status is AgentStatus.ACTIVE
    assert state.preferences == {"language": "fr"}
    assert agent.get_user_role(OWNER) is AssignmentRole.PRIMARY
    assert agent.version == 0  # nothing committed yet
    agent.mark_committed()
    assert agent.version == 1
    assert agent.pending_events == ()


def test_create_twice_is_refused() -> None:
    agent = new_agent()
    with pytest.raises(AgentAlreadyExists):
        agent.register(agent_id=AGENT_ID, owner_user_id=OWNER, agent_type=AgentType.TUTOR, now=T0)
    assert agent.pending_events == ()


@pytest.mark.parametrize(
    ("field", "value"),
    [("agent_id", ""), ("owner_user_id", "  "), ("max_history_size", 0)],
)
def test_create_with_bad_arguments_is_refused(field: str, value: object) -> None:
    arguments: dict[str, object] = {
        "agent_id": AGENT_ID,
        "owner_user_id": OWNER,
        "agent_type": AgentType.TUTOR,
        "now": T0,
        field: value,
    }
    agent = Agent()
    with pytest.raises(InvalidCommand):
        agent.register(**arguments)  # type: ignore[arg-type]
    assert agent.pending_events == ()
    assert not agent.exists


def test_commands_on_a_missing_agent_are_refused() -> None:
    with pytest.raises(AgentNotFound):
        Agent().update_preferences({"a": 1}, now=T0)


def test_update_preferences_merges_and_none_removes() -> None:
    agent = new_agent()
    agent.update_preferences({"language": "fr", "difficulty": "hard"}, now=at(1))
    agent.update_preferences({"difficulty": None, "pace": "slow"}, now=at(2))
    first, second = agent.pending_events
    assert isinstance(first, AgentPreferencesUpdated)
    assert isinstance(second, AgentPreferencesUpdated)
    assert second.preferences == {"language": "fr", "pace": "slow"}
    assert agent.state.preferences == {"language": "fr", "pace": "slow"}
    assert agent.state.updated_at == at(2)


def test_update_preferences_without_change_emits_nothing() -> None:
    agent = new_agent()
    agent.update_preferences({"missing": None}, now=at(1))
    assert agent.pending_events == ()


def test_update_preferences_refuses_empty_key() -> None:
    agent = new_agent()
    with pytest.raises(InvalidCommand):
        agent.update_preferences({"": 1}, now=at(1))
    assert agent.pending_events == ()


def test_assign_user_records_role() -> None:
    agent = new_agent()
    agent.assign_user("user-2", "observer", assigned_by=OWNER, now=at(1))
    (event,) = agent.pending_events
    assert isinstance(event, UserAssignedToAgent)
    assert event.role is AssignmentRole.OBSERVER
    assert agent.is_user_assigned("user-2")
    assert agent.get_user_role("user-2") is AssignmentRole.OBSERVER
    assert AssignmentRole.OBSERVER.can_act is False


@pytest.mark.parametrize("role", ["owner", "PRIMARY", "primary", ""])
def test_assign_user_refuses_invalid_roles(role: str) -> None:
    agent = new_agent()
    with pytest.raises(InvalidAssignment):
        agent.assign_user("user-2", role, assigned_by=OWNER, now=at(1))
    assert agent.pending_events == ()


@pytest.mark.parametrize("user", [OWNER, "user-2"])
def test_assign_user_refuses_duplicates(user: str) -> None:
    agent = new_agent()
    agent.assign_user("user-2", AssignmentRole.SHARED, assigned_by=OWNER, now=at(1))
    agent.mark_committed()
    with pytest.raises(UserAlreadyAssigned):
        agent.assign_user(user, AssignmentRole.MENTEE, assigned_by=OWNER, now=at(2))
    assert agent.pending_events == ()


def test_archive_idle_agent() -> None:
    agent = new_agent()
    agent.archive("reset requested", now=at(5))
    (event,) = agent.pending_events
    assert isinstance(event, AgentArchived)
    assert agent.is_archived()
    assert agent.state.archived_at == at(5)
    assert agent.state.archive_reason == "reset requested"


def test_archive_terminates_the_active_session_first_in_one_commit() -> None:
    agent = suspended()
    agent.archive("reset requested", now=at(5))
    terminated, archived = agent.pending_events
    assert isinstance(terminated, SessionTerminated)
    assert terminated.session_id == "s-1"
    assert isinstance(archived, AgentArchived)
    state = agent.state
    assert state.active_session is None
    assert state.execution_state is None
    assert state.session_history[-1].status is SessionStatus.TERMINATED
    assert state.session_history[-1].end_reason == "agent archived: reset requested"


def test_archive_needs_a_reason() -> None:
    agent = new_agent()
    with pytest.raises(InvalidCommand):
        agent.archive(" ", now=at(1))
    assert agent.pending_events == ()


def _archived_with_session() -> Agent:
    agent = with_session()
    agent.archive("done", now=at(3))
    agent.mark_committed()
    return agent


@pytest.mark.parametrize(
    "command",
    [
        lambda a: a.update_preferences({"x": 1}, now=at(9)),
        lambda a: a.assign_user("user-9", "shared", assigned_by=OWNER, now=at(9)),
        lambda a: a.archive("again", now=at(9)),
        lambda a: a.start_session(session_id="s-9", conversation_id="c-9", now=at(9)),
        lambda a: a.terminate_session("x", now=at(9)),
        lambda a: a.complete_session(now=at(9)),
        lambda a: a.receive_client_response(answer(), now=at(9)),
        lambda a: a.resume_execution(ClientResponse(tool_call_id="c", response=1), now=at(9)),
    ],
    ids=[
        "preferences",
        "assign",
        "archive",
        "start",
        "terminate",
        "complete",
        "respond",
        "resume",
    ],
)
def test_archived_agent_accepts_nothing_but_reads(command: Callable[[Agent], object]) -> None:
    agent = _archived_with_session()
    before = agent.state
    with pytest.raises(AgentIsArchived):
        command(agent)
    assert agent.pending_events == ()
    assert agent.state == before
    assert agent.state.session_history[0].session_id == "s-1"
