"""Who may send a command: ``Command.decide`` checks the caller against the agent's state."""

from __future__ import annotations

import pytest

from domain.access import Caller
from domain.commands import (
    ArchiveAgent,
    AssignUser,
    Command,
    CreateAgent,
    StartSession,
    UpdatePreferences,
)
from domain.enums import AgentType, AssignmentRole
from domain.errors import AccessDenied, AgentNotFound
from domain.events import AgentCreated

from .builders import AGENT_ID, OWNER, agent_created, preferences_updated, user_assigned
from .given import COMMAND_ID, NOW, given

OBSERVER = "user-2"
STRANGER = "user-666"
SHARED_WITH_AN_OBSERVER = [agent_created(), user_assigned(OBSERVER, AssignmentRole.OBSERVER)]
NOT_FOUND = f"agent {AGENT_ID} does not exist"


def _prefer_french(caller: Caller) -> UpdatePreferences:
    return UpdatePreferences(agent_id=AGENT_ID, changes={"language": "fr"}, caller=caller)


FRENCH = preferences_updated({"language": "fr"}, occurred_at=NOW)


def test_the_owner_may_act() -> None:
    given(*SHARED_WITH_AN_OBSERVER).when(_prefer_french(Caller(user_id=OWNER))).then(FRENCH)


@pytest.mark.parametrize("role", [AssignmentRole.SHARED, AssignmentRole.MENTEE])
def test_assignees_who_may_act_may_act(role: AssignmentRole) -> None:
    shared = [agent_created(), user_assigned("user-3", role)]
    given(*shared).when(_prefer_french(Caller(user_id="user-3"))).then(FRENCH)


def test_an_admin_may_act_on_any_agent() -> None:
    admin = Caller(user_id="root", is_admin=True)
    given(*SHARED_WITH_AN_OBSERVER).when(_prefer_french(admin)).then(FRENCH)


@pytest.mark.parametrize(
    "command",
    [
        _prefer_french(Caller(user_id=OBSERVER)),
        StartSession(agent_id=AGENT_ID, command_id=COMMAND_ID, caller=Caller(user_id=OBSERVER)),
        ArchiveAgent(agent_id=AGENT_ID, reason="mine now", caller=Caller(user_id=OBSERVER)),
        AssignUser(
            agent_id=AGENT_ID,
            user_id="user-4",
            role=AssignmentRole.SHARED,
            assigned_by=OBSERVER,
            caller=Caller(user_id=OBSERVER),
        ),
    ],
    ids=lambda command: type(command).__name__,
)
def test_an_observer_may_see_but_not_act(command: Command) -> None:
    given(*SHARED_WITH_AN_OBSERVER).when(command).then_refuses(AccessDenied, match="observer")


def test_access_is_checked_before_the_command_itself() -> None:
    invalid = UpdatePreferences(agent_id=AGENT_ID, changes={"": 1}, caller=Caller(user_id=OBSERVER))
    given(*SHARED_WITH_AN_OBSERVER).when(invalid).then_refuses(AccessDenied)


def test_a_stranger_is_told_the_agent_does_not_exist() -> None:
    stranger = Caller(user_id=STRANGER)
    given(*SHARED_WITH_AN_OBSERVER).when(_prefer_french(stranger)).then_refuses(
        AgentNotFound, match=NOT_FOUND
    )
    given().when(_prefer_french(stranger)).then_refuses(AgentNotFound, match=NOT_FOUND)


def test_creating_over_an_existing_agent_does_not_reveal_it_to_a_stranger() -> None:
    create = CreateAgent(
        agent_id=AGENT_ID,
        owner_user_id=STRANGER,
        agent_type=AgentType.TUTOR,
        caller=Caller(user_id=STRANGER),
    )
    given(agent_created()).when(create).then_refuses(AgentNotFound, match=NOT_FOUND)


def test_anyone_may_create_a_new_agent_of_their_own() -> None:
    create = CreateAgent(
        agent_id=AGENT_ID,
        owner_user_id=STRANGER,
        agent_type=AgentType.TUTOR,
        caller=Caller(user_id=STRANGER),
    )
    given().when(create).then(
        AgentCreated(
            agent_id=AGENT_ID,
            occurred_at=NOW,
            owner_user_id=STRANGER,
            agent_type=AgentType.TUTOR,
            name="Tutor agent",
            max_history_size=50,
        )
    )
