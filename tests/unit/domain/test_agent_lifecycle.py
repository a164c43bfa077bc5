"""Creating, configuring, sharing and archiving agents."""

from __future__ import annotations

from datetime import datetime

import pytest

from domain.agent import Agent
from domain.commands import (
    ArchiveAgent,
    AssignUser,
    Command,
    CompleteSession,
    CreateAgent,
    GetOrCreateAgent,
    RecordMessages,
    RequestClientAction,
    StartSession,
    SubmitResponse,
    SuspendExecution,
    TerminateSession,
    UnassignUser,
    UpdatePreferences,
)
from domain.enums import AgentStatus, AgentType, AssignmentRole, SessionStatus
from domain.errors import (
    AgentAlreadyExists,
    AgentIsArchived,
    AgentNotFound,
    InvalidAssignment,
    InvalidCommand,
    UserAlreadyAssigned,
)
from domain.events import AgentArchived, AgentCreated, AgentPreferencesUpdated, SessionTerminated
from domain.execution_state import LlmMessage
from domain.ids import agent_id_for
from domain.session import ClientResponse

from .builders import (
    AGENT_ID,
    OWNER,
    T0,
    agent_archived,
    agent_created,
    answer,
    at,
    execution,
    new_agent,
    preferences_updated,
    session_events,
    session_terminated,
    suspended_events,
    user_assigned,
    widget,
)
from .given import NOW, given


def test_create_emits_agent_created_and_owner_is_primary() -> None:
    create = CreateAgent(
        agent_id=AGENT_ID,
        owner_user_id=OWNER,
        agent_type=AgentType.EVALUATOR,
        preferences={"language": "fr"},
    )
    agent = (
        given()
        .when(create)
        .then(
            AgentCreated(
                agent_id=AGENT_ID,
                occurred_at=NOW,
                owner_user_id=OWNER,
                agent_type=AgentType.EVALUATOR,
                name="Evaluator agent",
                preferences={"language": "fr"},
                max_history_size=50,
            )
        )
    )
    state = agent.state
    assert state.status is AgentStatus.ACTIVE
    assert state.preferences == {"language": "fr"}
    assert agent.get_user_role(OWNER) is AssignmentRole.PRIMARY
    assert agent.version == 0  # nothing committed yet
    agent.mark_committed()
    assert agent.version == 1
    assert agent.pending_events == ()


def test_create_twice_is_refused() -> None:
    create = CreateAgent(agent_id=AGENT_ID, owner_user_id=OWNER, agent_type=AgentType.TUTOR)
    given(agent_created()).when(create).then_refuses(AgentAlreadyExists)


def test_get_or_create_creates_once_then_changes_nothing() -> None:
    command = GetOrCreateAgent.for_user(OWNER, AgentType.TUTOR)
    created = AgentCreated(
        agent_id=agent_id_for(OWNER, AgentType.TUTOR),
        occurred_at=NOW,
        owner_user_id=OWNER,
        agent_type=AgentType.TUTOR,
        name="Tutor agent",
        max_history_size=50,
    )
    given().when(command).then(created)
    given(created).when(command).then()


def test_get_or_create_on_an_existing_agent_needs_its_deterministic_id() -> None:
    command = GetOrCreateAgent(agent_id=AGENT_ID, owner_user_id=OWNER, agent_type=AgentType.TUTOR)
    given(agent_created()).when(command).then_refuses(InvalidCommand, match="deterministic")


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
    given().when(UpdatePreferences(agent_id=AGENT_ID, changes={"a": 1})).then_refuses(AgentNotFound)


def test_update_preferences_merges_and_none_removes() -> None:
    first = UpdatePreferences(agent_id=AGENT_ID, changes={"language": "fr", "difficulty": "hard"})
    given(agent_created()).when(first).then(
        AgentPreferencesUpdated(
            agent_id=AGENT_ID,
            occurred_at=NOW,
            preferences={"language": "fr", "difficulty": "hard"},
        )
    )
    second = UpdatePreferences(agent_id=AGENT_ID, changes={"difficulty": None, "pace": "slow"})
    agent = (
        given(agent_created(), preferences_updated({"language": "fr", "difficulty": "hard"}))
        .when(second)
        .then(
            AgentPreferencesUpdated(
                agent_id=AGENT_ID, occurred_at=NOW, preferences={"language": "fr", "pace": "slow"}
            )
        )
    )
    assert agent.state.preferences == {"language": "fr", "pace": "slow"}
    assert agent.state.updated_at == NOW


def test_update_preferences_without_change_emits_nothing() -> None:
    unchanged = UpdatePreferences(agent_id=AGENT_ID, changes={"missing": None})
    given(agent_created()).when(unchanged).then()


def test_update_preferences_refuses_empty_key() -> None:
    empty_key = UpdatePreferences(agent_id=AGENT_ID, changes={"": 1})
    given(agent_created()).when(empty_key).then_refuses(InvalidCommand)


def test_assign_user_records_role() -> None:
    assign = AssignUser(agent_id=AGENT_ID, user_id="user-2", role="observer", assigned_by=OWNER)
    agent = (
        given(agent_created())
        .when(assign)
        .then(user_assigned("user-2", AssignmentRole.OBSERVER, occurred_at=NOW))
    )
    assert agent.is_user_assigned("user-2")
    assert agent.get_user_role("user-2") is AssignmentRole.OBSERVER


@pytest.mark.parametrize("role", ["owner", "PRIMARY", "primary", ""])
def test_assign_user_refuses_invalid_roles(role: str) -> None:
    agent = new_agent()
    with pytest.raises(InvalidAssignment):
        agent.assign_user("user-2", role, assigned_by=OWNER, now=at(1))
    assert agent.pending_events == ()


def test_assign_command_refuses_the_primary_role() -> None:
    assign = AssignUser(
        agent_id=AGENT_ID, user_id="user-2", role=AssignmentRole.PRIMARY, assigned_by=OWNER
    )
    given(agent_created()).when(assign).then_refuses(InvalidAssignment)


@pytest.mark.parametrize("user", [OWNER, "user-2"])
def test_assign_user_refuses_duplicates(user: str) -> None:
    assign = AssignUser(
        agent_id=AGENT_ID, user_id=user, role=AssignmentRole.MENTEE, assigned_by=OWNER
    )
    given(agent_created(), user_assigned("user-2", AssignmentRole.SHARED)).when(
        assign
    ).then_refuses(UserAlreadyAssigned)


def test_archive_idle_agent() -> None:
    archive = ArchiveAgent(agent_id=AGENT_ID, reason="reset requested")
    agent = given(agent_created()).when(archive).then(agent_archived("reset requested", NOW))
    assert agent.is_archived()
    assert agent.state.archived_at == NOW
    assert agent.state.archive_reason == "reset requested"


def test_archive_terminates_the_active_session_first_in_one_commit() -> None:
    archive = ArchiveAgent(agent_id=AGENT_ID, reason="reset requested")
    agent = (
        given(*suspended_events())
        .when(archive)
        .then(
            SessionTerminated(
                agent_id=AGENT_ID,
                occurred_at=NOW,
                session_id="s-1",
                reason="agent archived: reset requested",
            ),
            AgentArchived(agent_id=AGENT_ID, occurred_at=NOW, reason="reset requested"),
        )
    )
    state = agent.state
    assert state.active_session is None
    assert state.execution_state is None
    assert state.session_history[-1].status is SessionStatus.TERMINATED
    assert state.session_history[-1].end_reason == "agent archived: reset requested"


def test_archive_needs_a_reason() -> None:
    given(agent_created()).when(ArchiveAgent(agent_id=AGENT_ID, reason=" ")).then_refuses(
        InvalidCommand
    )


ARCHIVED_WITH_SESSION = [
    *session_events(),
    session_terminated(occurred_at=at(3), reason="agent archived: done"),
    agent_archived("done", at(3)),
]
"""What ``with_session().archive("done", now=at(3))`` stores."""


@pytest.mark.parametrize(
    "command",
    [
        UpdatePreferences(agent_id=AGENT_ID, changes={"x": 1}),
        AssignUser(
            agent_id=AGENT_ID, user_id="user-9", role=AssignmentRole.SHARED, assigned_by=OWNER
        ),
        UnassignUser(agent_id=AGENT_ID, user_id="user-9", unassigned_by=OWNER),
        ArchiveAgent(agent_id=AGENT_ID, reason="again"),
        StartSession(agent_id=AGENT_ID),
        TerminateSession(agent_id=AGENT_ID, reason="x"),
        TerminateSession(agent_id=AGENT_ID, reason="x", expired=True),
        CompleteSession(agent_id=AGENT_ID),
        SubmitResponse(agent_id=AGENT_ID, response=answer()),
        RecordMessages(agent_id=AGENT_ID, messages=(LlmMessage(role="user", content="hi"),)),
        RequestClientAction(agent_id=AGENT_ID, action=widget()),
        SuspendExecution(agent_id=AGENT_ID, execution_state=execution(), action=widget()),
    ],
    ids=lambda command: type(command).__name__,
)
def test_archived_agent_accepts_nothing_but_reads(command: Command) -> None:
    agent = given(*ARCHIVED_WITH_SESSION).when(command).then_refuses(AgentIsArchived)
    assert agent.state.session_history[0].session_id == "s-1"


def test_archived_agent_refuses_resume() -> None:
    def resume(agent: Agent, now: datetime) -> object:
        return agent.resume_execution(ClientResponse(tool_call_id="c", response=1), now=now)

    agent = given(*ARCHIVED_WITH_SESSION).when(resume).then_refuses(AgentIsArchived)
    assert agent.state.session_history[0].session_id == "s-1"


def test_archived_stream_matches_what_archiving_stores() -> None:
    """The given stream above is the real one (so the refusals are tested on a real agent)."""
    agent = new_agent()
    agent.start_session(session_id="s-1", conversation_id="c-s-1", now=at(1))
    agent.archive("done", now=at(3))
    assert list(agent.pending_events) == ARCHIVED_WITH_SESSION[1:]
