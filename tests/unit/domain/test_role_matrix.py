"""The role matrix, cell by cell: who may do what to an agent, decided by ``Command.decide``
against the agent's state (the same turn that decides the command).

Each cell runs the action as that role's caller on an agent its owner shares with a shared, a
mentee and an observer user (and a bystander to unassign), and expects the events the action
stores, or the refusal (nothing emitted, nothing changed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import uuid5

import pytest

from domain.access import MANAGED_PREFERENCE_KEYS, Caller, Permission, authorize
from domain.agent import Agent
from domain.commands import (
    ArchiveAgent,
    AssignUser,
    StartSession,
    SubmitResponse,
    TerminateSession,
    UnassignUser,
    UpdatePreferences,
)
from domain.enums import AssignmentRole, ControlMode, SessionType
from domain.errors import (
    AccessDenied,
    AgentNotFound,
    DomainError,
    InvalidCommand,
    OwnerCannotLeave,
    UserNotAssigned,
)
from domain.events import DomainEvent, SessionStarted, UserAssignedToAgent
from domain.session import SessionConfig

from .builders import (
    AGENT_ID,
    OWNER,
    action_requested,
    agent_archived,
    agent_created,
    answer,
    execution_resumed,
    execution_suspended,
    preferences_updated,
    response_received,
    session_started,
    session_terminated,
    user_assigned,
    user_unassigned,
)
from .given import COMMAND_ID, NOW, Action, given

SHARED, MENTEE, OBSERVER = "user-shared", "user-mentee", "user-observer"
BYSTANDER = "user-bystander"
"""A member nobody in the matrix is: the one "unassign another user" removes."""
NEWCOMER = "user-new"
TEMPLATE = "arithmetic-basics"

CALLERS = {
    "owner": Caller(user_id=OWNER),
    "admin": Caller(user_id="root", is_admin=True),
    "shared": Caller(user_id=SHARED),
    "mentee": Caller(user_id=MENTEE),
    "observer": Caller(user_id=OBSERVER),
    "stranger": Caller(user_id="user-666"),
}
ROLES = tuple(CALLERS)

TEAM: list[DomainEvent] = [
    agent_created(),
    user_assigned(SHARED, AssignmentRole.SHARED),
    user_assigned(MENTEE, AssignmentRole.MENTEE),
    user_assigned(OBSERVER, AssignmentRole.OBSERVER),
    user_assigned(BYSTANDER, AssignmentRole.OBSERVER),
]
WITH_A_SESSION = [*TEAM, session_started()]
WAITING_ON_A_WIDGET = [*WITH_A_SESSION, action_requested(), execution_suspended()]


@dataclass(frozen=True)
class Case:
    """One row of the matrix: the stream it starts from, the action as ``caller``, and what
    the action stores when it is allowed."""

    given: list[DomainEvent]
    action: Callable[[Caller], Action]
    stores: Callable[[Caller], list[DomainEvent]]


def _read(caller: Caller) -> Action:
    def read(agent: Agent, _: datetime) -> None:
        authorize(agent.state, AGENT_ID, caller, Permission.READ)

    return read


def _start(caller: Caller, **overrides: Any) -> StartSession:
    return StartSession(
        agent_id=AGENT_ID,
        command_id=COMMAND_ID,
        caller=caller,
        **{"session_type": SessionType.LEARNING, "config": SessionConfig(template_id=TEMPLATE)}
        | overrides,
    )


def _started(**overrides: Any) -> list[DomainEvent]:
    fields: dict[str, Any] = {
        "config": SessionConfig(template_id=TEMPLATE),
        "control_mode": ControlMode.PROACTIVE,
        **overrides,
    }
    return [
        SessionStarted(
            agent_id=AGENT_ID,
            occurred_at=NOW,
            session_id=str(uuid5(COMMAND_ID, "session")),
            conversation_id=str(uuid5(COMMAND_ID, "conversation")),
            session_type=SessionType.LEARNING,
            **fields,
        )
    ]


PERSONAL = {"theme": "dark", "language": "fr"}
PROFILE = {"system_prompt": "Answer in riddles."}

ROWS: dict[str, Case] = {
    "read agent, sessions, stream": Case(TEAM, _read, lambda _: []),
    "start a session with the defaults": Case(TEAM, _start, lambda _: _started()),
    "start a session with overrides": Case(
        TEAM,
        lambda caller: _start(caller, system_prompt="Be terse."),
        lambda _: _started(system_prompt="Be terse."),
    ),
    "answer a widget": Case(
        WAITING_ON_A_WIDGET,
        lambda caller: SubmitResponse(agent_id=AGENT_ID, caller=caller, response=answer()),
        lambda _: [response_received(occurred_at=NOW), execution_resumed(occurred_at=NOW)],
    ),
    "terminate the session": Case(
        WITH_A_SESSION,
        lambda caller: TerminateSession(agent_id=AGENT_ID, caller=caller),
        lambda _: [session_terminated(occurred_at=NOW)],
    ),
    "personal preferences": Case(
        TEAM,
        lambda caller: UpdatePreferences(agent_id=AGENT_ID, caller=caller, changes=PERSONAL),
        lambda _: [preferences_updated(PERSONAL, occurred_at=NOW)],
    ),
    "profile preferences": Case(
        TEAM,
        lambda caller: UpdatePreferences(agent_id=AGENT_ID, caller=caller, changes=PROFILE),
        lambda _: [preferences_updated(PROFILE, occurred_at=NOW)],
    ),
    "assign a user": Case(
        TEAM,
        lambda caller: AssignUser(
            agent_id=AGENT_ID,
            caller=caller,
            user_id=NEWCOMER,
            role=AssignmentRole.OBSERVER,
            assigned_by=caller.user_id,
        ),
        lambda caller: [
            UserAssignedToAgent(
                agent_id=AGENT_ID,
                occurred_at=NOW,
                user_id=NEWCOMER,
                role=AssignmentRole.OBSERVER,
                assigned_by=caller.user_id,
            )
        ],
    ),
    "unassign another user": Case(
        TEAM,
        lambda caller: UnassignUser(
            agent_id=AGENT_ID, caller=caller, user_id=BYSTANDER, unassigned_by=caller.user_id
        ),
        lambda caller: [user_unassigned(BYSTANDER, caller.user_id, occurred_at=NOW)],
    ),
    "unassign oneself (leave)": Case(
        TEAM,
        lambda caller: UnassignUser(
            agent_id=AGENT_ID, caller=caller, user_id=caller.user_id, unassigned_by=caller.user_id
        ),
        lambda caller: [user_unassigned(caller.user_id, caller.user_id, occurred_at=NOW)],
    ),
    "archive": Case(
        TEAM,
        lambda caller: ArchiveAgent(agent_id=AGENT_ID, caller=caller, reason="done"),
        lambda _: [agent_archived("done", occurred_at=NOW)],
    ),
}

Y, DENIED, HIDDEN = "yes", AccessDenied, AgentNotFound
Cell = str | type[DomainError]

MATRIX: dict[str, tuple[Cell, ...]] = {
    # row                                 owner  admin  shared  mentee  observer  stranger
    "read agent, sessions, stream": (Y, Y, Y, Y, Y, HIDDEN),
    "start a session with the defaults": (Y, Y, Y, Y, DENIED, HIDDEN),
    "start a session with overrides": (Y, Y, Y, DENIED, DENIED, HIDDEN),
    "answer a widget": (Y, Y, Y, Y, DENIED, HIDDEN),
    "terminate the session": (Y, Y, Y, Y, DENIED, HIDDEN),
    "personal preferences": (Y, Y, Y, Y, DENIED, HIDDEN),
    "profile preferences": (Y, Y, DENIED, DENIED, DENIED, HIDDEN),
    "assign a user": (Y, Y, DENIED, DENIED, DENIED, HIDDEN),
    "unassign another user": (Y, Y, DENIED, DENIED, DENIED, HIDDEN),
    "unassign oneself (leave)": (OwnerCannotLeave, UserNotAssigned, Y, Y, Y, HIDDEN),
    "archive": (Y, Y, DENIED, DENIED, DENIED, HIDDEN),
}
"""The matrix as the issue states it (the admin, who has no assignment, cannot leave one)."""

CELLS = [
    (row, role, cell)
    for row, cells in MATRIX.items()
    for role, cell in zip(ROLES, cells, strict=True)
]


def test_the_matrix_covers_every_row_and_role() -> None:
    assert set(MATRIX) == set(ROWS)
    assert all(len(cells) == len(ROLES) for cells in MATRIX.values())


@pytest.mark.parametrize(("row", "role", "cell"), CELLS, ids=[f"{r}-{o}" for r, o, _ in CELLS])
def test_each_cell(row: str, role: str, cell: Cell) -> None:
    case, caller = ROWS[row], CALLERS[role]
    outcome = given(*case.given).when(case.action(caller))
    if cell == Y:
        outcome.then(*case.stores(caller))
    elif cell is AccessDenied:
        outcome.then_refuses(AccessDenied, match=rf"agent {AGENT_ID} \({role}\) may not ")
    elif cell is AgentNotFound:
        outcome.then_refuses(AgentNotFound, match=f"^agent {AGENT_ID} does not exist$")
    else:
        assert isinstance(cell, type)
        outcome.then_refuses(cell)


# ---------------------------------------------------------------------- starting a session

OVERRIDES: list[dict[str, Any]] = [
    {"system_prompt": "Be terse."},
    {"control_mode": ControlMode.REACTIVE},
    {"config": SessionConfig(template_id=TEMPLATE, time_limit_seconds=60)},
    {"config": SessionConfig(template_id=TEMPLATE, item_time_limit_seconds=5)},
    {"config": SessionConfig(template_id=TEMPLATE, max_items=1)},
    {"config": SessionConfig(template_id=TEMPLATE, completion_criteria={"pass_mark": 0})},
    {"config": SessionConfig(template_id=TEMPLATE, allow_skip=True)},
    {"config": SessionConfig(template_id=TEMPLATE, allow_back=True)},
    {"config": SessionConfig(template_id=TEMPLATE, allow_concurrent_sessions=True)},
    {"config": SessionConfig(template_id=TEMPLATE, model_id="gpt-4o")},
    {"config": SessionConfig(template_id=TEMPLATE, extra={"hint": "all"})},
    {"config": SessionConfig(max_items=3)},
]


def _override_id(override: dict[str, Any]) -> str:
    config = override.get("config")
    if isinstance(config, SessionConfig):
        return "+".join(config.model_dump(exclude_defaults=True))
    return "+".join(override)


@pytest.mark.parametrize("override", OVERRIDES, ids=_override_id)
def test_every_override_needs_a_role_that_may_configure_sessions(
    override: dict[str, Any],
) -> None:
    given(*TEAM).when(_start(CALLERS["mentee"], **override)).then_refuses(
        AccessDenied, match=r"\(mentee\) may not start a session with overrides"
    )
    given(*TEAM).when(_start(CALLERS["shared"], **override)).then(*_started(**override))


@pytest.mark.parametrize(
    "defaults",
    [{}, {"session_type": None}, {"config": SessionConfig()}],
    ids=["a template", "no session type", "no template"],
)
def test_naming_only_a_template_or_a_session_type_keeps_the_defaults(
    defaults: dict[str, Any],
) -> None:
    start = _start(CALLERS["mentee"], **defaults)
    given(*TEAM).when(start).then(*_started(config=start.config))


# ---------------------------------------------------------------------- preferences


@pytest.mark.parametrize("key", sorted(MANAGED_PREFERENCE_KEYS))
@pytest.mark.parametrize("value", ["new", None], ids=["set", "removed"])
def test_each_profile_key_is_the_owners_to_set_or_remove(key: str, value: object) -> None:
    changes = {"theme": "dark", key: value}
    for role in ("shared", "mentee", "observer"):
        refuse = UpdatePreferences(agent_id=AGENT_ID, caller=CALLERS[role], changes=changes)
        given(*TEAM, preferences_updated({key: "old"})).when(refuse).then_refuses(
            AccessDenied, match=rf"\({role}\) may not change the agent's profile"
        )
    allow = UpdatePreferences(agent_id=AGENT_ID, caller=CALLERS["owner"], changes=changes)
    stored = {"theme": "dark"} if value is None else {"theme": "dark", key: value}
    given(*TEAM, preferences_updated({key: "old"})).when(allow).then(
        preferences_updated(stored, occurred_at=NOW)
    )


def test_a_refusal_names_the_role_and_the_action_and_no_user() -> None:
    assign = AssignUser(
        agent_id=AGENT_ID,
        caller=CALLERS["shared"],
        user_id=NEWCOMER,
        role=AssignmentRole.OBSERVER,
        assigned_by=SHARED,
    )
    with pytest.raises(AccessDenied) as refused:
        assign.decide(Agent.replay(TEAM), NOW)
    assert str(refused.value) == f"your role on agent {AGENT_ID} (shared) may not assign users"


# ---------------------------------------------------------------------- unassigning


def test_an_unassigned_user_loses_every_access_in_the_same_stream() -> None:
    unassign = UnassignUser(
        agent_id=AGENT_ID, caller=CALLERS["owner"], user_id=MENTEE, unassigned_by=OWNER
    )
    agent = given(*TEAM).when(unassign).then(user_unassigned(MENTEE, occurred_at=NOW))
    assert agent.get_user_role(MENTEE) is None
    assert [a.user_id for a in agent.state.assignments] == [OWNER, SHARED, OBSERVER, BYSTANDER]
    after = [*TEAM, user_unassigned(MENTEE)]
    for row in ("read agent, sessions, stream", "start a session with the defaults"):
        given(*after).when(ROWS[row].action(CALLERS["mentee"])).then_refuses(AgentNotFound)


def test_a_user_who_left_may_be_assigned_again() -> None:
    assign = AssignUser(
        agent_id=AGENT_ID,
        caller=CALLERS["owner"],
        user_id=MENTEE,
        role=AssignmentRole.SHARED,
        assigned_by=OWNER,
    )
    agent = (
        given(*TEAM, user_unassigned(MENTEE, MENTEE))
        .when(assign)
        .then(user_assigned(MENTEE, AssignmentRole.SHARED, occurred_at=NOW))
    )
    assert agent.get_user_role(MENTEE) is AssignmentRole.SHARED


@pytest.mark.parametrize(
    "stream",
    [TEAM, [*TEAM, user_assigned(NEWCOMER, AssignmentRole.MENTEE), user_unassigned(NEWCOMER)]],
    ids=["never assigned", "already unassigned"],
)
def test_unassigning_a_user_without_an_assignment_is_refused(stream: list[DomainEvent]) -> None:
    unassign = UnassignUser(
        agent_id=AGENT_ID, caller=CALLERS["owner"], user_id=NEWCOMER, unassigned_by=OWNER
    )
    given(*stream).when(unassign).then_refuses(
        UserNotAssigned, match=f"user {NEWCOMER} is not assigned to agent {AGENT_ID}"
    )


@pytest.mark.parametrize("role", ["owner", "admin", None], ids=["owner", "admin", "system"])
def test_nobody_unassigns_the_owner(role: str | None) -> None:
    caller = CALLERS[role] if role is not None else None
    unassign = UnassignUser(
        agent_id=AGENT_ID,
        caller=caller,
        user_id=OWNER,
        unassigned_by=caller.user_id if caller is not None else "system",
    )
    given(*TEAM).when(unassign).then_refuses(
        OwnerCannotLeave, match=f"the owner of agent {AGENT_ID} cannot be unassigned"
    )


@pytest.mark.parametrize(("user_id", "by"), [(" ", OWNER), (MENTEE, " ")])
def test_unassign_needs_a_user_and_who_unassigns(user_id: str, by: str) -> None:
    unassign = UnassignUser(
        agent_id=AGENT_ID, caller=CALLERS["owner"], user_id=user_id, unassigned_by=by
    )
    given(*TEAM).when(unassign).then_refuses(InvalidCommand)
