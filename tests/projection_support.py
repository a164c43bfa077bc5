"""Test support for the read side: random valid histories, checks, and mongomock made async.

``random_command`` drives a real ``Agent`` with commands it accepts, so histories are valid by
construction (the aggregate decides every event). ``AsyncMongomockDatabase`` gives mongomock,
which only emulates the synchronous client, the small async surface ``MongoReadModel`` uses.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import mongomock

from domain.agent import Agent
from domain.enums import AgentType, AssignmentRole
from domain.execution_state import ExecutionState, LlmMessage, PendingToolCall
from domain.session import ClientAction, ClientResponse, Session, SessionConfig
from domain.state import AgentState
from projections.documents import AgentDocument, SessionDocument

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
OTHER_USERS = ("user-b", "user-c", "user-d")
ASSIGNABLE_ROLES = (AssignmentRole.SHARED, AssignmentRole.MENTEE, AssignmentRole.OBSERVER)


@dataclass
class Clock:
    """Per-agent time that only moves forward, by random steps."""

    now: datetime = T0
    rng: random.Random = field(default_factory=random.Random)

    def tick(self) -> datetime:
        self.now += timedelta(
            seconds=self.rng.randint(1, 120), microseconds=self.rng.randint(0, 999)
        )
        return self.now


def create_agent(
    rng: random.Random, clock: Clock, agent_id: str, owner: str, max_history_size: int = 50
) -> Agent:
    return Agent.create(
        agent_id=agent_id,
        owner_user_id=owner,
        agent_type=rng.choice(list(AgentType)),
        now=clock.tick(),
        name=f"agent {agent_id}",
        preferences={"language": rng.choice(["en", "fr"])},
        max_history_size=max_history_size,
    )


def random_command(agent: Agent, rng: random.Random, clock: Clock) -> bool:
    """Run one random command the agent accepts (it emits events); False once archived."""
    if agent.is_archived():
        return False
    state = agent.state
    now = clock.tick()
    choices: list[tuple[float, str]] = [(0.5, "preferences"), (0.03, "archive")]
    if any(state.role_of(user) is None for user in OTHER_USERS):
        choices.append((0.5, "assign"))
    session = state.active_session
    if session is None:
        choices.append((6, "start"))
    else:
        choices += [(1.5, "record"), (0.4, "terminate"), (0.2, "expire")]
        if session.pending_action is None:
            choices += [(2, "request"), (2, "suspend"), (1.2, "complete")]
        elif agent.is_suspended():
            choices.append((4, "resume"))
        else:
            choices += [(1, "suspend_pending"), (3, "respond")]
    command = rng.choices([name for _, name in choices], [weight for weight, _ in choices])[0]
    _run(agent, command, rng, now)
    return True


def _run(agent: Agent, command: str, rng: random.Random, now: datetime) -> None:
    state = agent.state
    session = state.active_session
    items = len(session.items) if session is not None else 0
    call_id = f"call-{items + 1}"
    if command == "preferences":
        agent.update_preferences({"revision": state.preferences.get("revision", 0) + 1}, now=now)
    elif command == "archive":
        agent.archive("no longer needed", now=now)
    elif command == "assign":
        user = rng.choice([u for u in OTHER_USERS if state.role_of(u) is None])
        agent.assign_user(
            user, rng.choice(ASSIGNABLE_ROLES), assigned_by=state.owner_user_id, now=now
        )
    elif command == "start":
        number = state.total_sessions + 1
        agent.start_session(
            session_id=f"{state.id}/s{number}",
            conversation_id=f"{state.id}/c{number}",
            now=now,
            system_prompt=rng.choice([None, "Be brief."]),
            config=SessionConfig(max_items=rng.choice([None, 5])),
        )
    elif command == "record":
        agent.record_messages(
            [LlmMessage(role="assistant", content=f"turn {rng.randint(0, 99)}")], now=now
        )
    elif command == "terminate":
        agent.terminate_session("user_left", now=now)
    elif command == "expire":
        agent.expire_session("time_limit", now=now)
    elif command == "request":
        agent.request_client_action(widget(call_id), now=now)
    elif command == "suspend":
        agent.suspend_execution(execution(call_id), widget(call_id), now=now)
    elif command == "suspend_pending":
        assert session is not None
        assert session.pending_action is not None
        pending = session.pending_action.tool_call_id
        agent.suspend_execution(execution(pending), session.pending_action, now=now)
    elif command == "complete":
        agent.complete_session(
            now=now, summary=rng.choice([None, {"score": rng.random()}, {"score": 3}])
        )
    elif command in ("respond", "resume"):
        assert session is not None
        assert session.pending_action is not None
        response = ClientResponse(
            tool_call_id=session.pending_action.tool_call_id,
            response={"answer": rng.randint(0, 3)},
            response_time_ms=rng.choice([None, 420.0]),
        )
        evaluation = rng.choice([None, {"correct": rng.random() < 0.5}])
        if command == "resume":
            agent.resume_execution(response, now=now, evaluation=evaluation)
        else:
            agent.receive_client_response(response, now=now, evaluation=evaluation)
    else:
        raise AssertionError(f"unknown command {command}")


def widget(call_id: str) -> ClientAction:
    return ClientAction(
        tool_call_id=call_id,
        tool_name="present_choices",
        widget_type="multiple_choice",
        props={"prompt": f"question {call_id}", "options": ["a", "b"]},
    )


def execution(call_id: str) -> ExecutionState:
    return ExecutionState(
        conversation_snapshot=(LlmMessage(role="user", content="Quiz me."),),
        iteration=1,
        tool_calls_made=1,
        pending_tool_call=PendingToolCall(call_id=call_id, tool_name="present_choices"),
    )


# ---------------------------------------------------------------------------- checks


def assert_matches_state(
    agent: AgentDocument, sessions: dict[str, SessionDocument], state: AgentState
) -> None:
    """The read model shows what the aggregate holds (sessions beyond its history included)."""
    assert agent.id == state.id
    assert agent.owner_user_id == state.owner_user_id
    assert agent.agent_type is state.agent_type
    assert agent.status is state.status
    assert agent.name == state.name
    assert agent.preferences == state.preferences
    assert [a.model_dump() for a in agent.assignments] == [
        a.model_dump() for a in state.assignments
    ]
    assert agent.member_user_ids == tuple(a.user_id for a in state.assignments)
    assert agent.total_sessions == state.total_sessions
    assert agent.total_interactions == state.total_interactions
    assert agent.successful_completions == state.successful_completions
    assert (agent.scored_sessions, agent.score_total) == (state.scored_sessions, state.score_total)
    assert agent.average_score == state.average_score
    assert (agent.archived_at, agent.archive_reason) == (state.archived_at, state.archive_reason)
    assert agent.created_at == state.created_at
    assert agent.updated_at == state.updated_at
    assert agent.last_interaction_at == state.last_interaction_at
    active = state.active_session
    assert agent.has_active_session is (active is not None)
    assert agent.active_session_id == (active.session_id if active else None)
    if active is None:
        assert agent.active_session is None
    else:
        assert agent.active_session is not None
        assert agent.active_session.model_dump() == {
            "session_id": active.session_id,
            "status": active.status,
            "pending_action": active.pending_action.model_dump() if active.pending_action else None,
            "current_item": active.current_item.model_dump() if active.current_item else None,
            "items_completed": active.items_completed,
            "started_at": active.started_at,
        }
    if state.session_history:
        last = state.session_history[-1]
        assert agent.last_session is not None
        assert agent.last_session.session_id == last.session_id
        assert agent.last_session.status is last.status
        assert agent.last_session.ended_at == last.ended_at
        assert agent.last_session.end_reason == last.end_reason
        assert agent.last_session.summary == last.summary
    else:
        assert agent.last_session is None
    assert len(sessions) == state.total_sessions
    for session in (*state.session_history, *([active] if active else [])):
        assert_view_matches(sessions[session.session_id], session, state)


def assert_view_matches(view: SessionDocument, session: Session, state: AgentState) -> None:
    assert (view.agent_id, view.owner_user_id, view.agent_type) == (
        state.id,
        state.owner_user_id,
        state.agent_type,
    )
    shared = set(Session.model_fields) & set(SessionDocument.model_fields)
    assert shared >= {"items", "transcript", "pending_action", "status", "config", "summary"}
    assert view.model_dump(include=shared) == session.model_dump(include=shared)
    assert view.items_completed == session.items_completed


# ---------------------------------------------------------------------------- mongomock


class AsyncMongomockDatabase:
    """The subset of pymongo's ``AsyncDatabase`` that ``MongoReadModel`` uses, over mongomock.

    Every call yields to the event loop first, as network I/O would, so a cancelled projector
    can stop between two document writes just as it can against a real server.
    """

    def __init__(self, database: mongomock.Database) -> None:
        self._database = database

    def __getitem__(self, name: str) -> AsyncMongomockCollection:
        return AsyncMongomockCollection(self._database[name])


class AsyncMongomockCursor:
    def __init__(self, cursor: mongomock.collection.Cursor) -> None:
        self._cursor = cursor

    async def to_list(self, length: int | None = None) -> list[dict[str, Any]]:
        await asyncio.sleep(0)
        found = list(self._cursor)
        return found if length is None else found[:length]


class AsyncMongomockCollection:
    def __init__(self, collection: mongomock.Collection) -> None:
        self._collection = collection

    def find(self, *args: Any, **kwargs: Any) -> AsyncMongomockCursor:
        return AsyncMongomockCursor(self._collection.find(*args, **kwargs))

    async def find_one(
        self, filter: Any | None = None, *args: Any, **kwargs: Any
    ) -> dict[str, Any] | None:
        await asyncio.sleep(0)
        found: dict[str, Any] | None = self._collection.find_one(filter, *args, **kwargs)
        return found

    async def replace_one(
        self, filter: Mapping[str, Any], replacement: Mapping[str, Any], upsert: bool = False
    ) -> Any:
        await asyncio.sleep(0)
        return self._collection.replace_one(filter, replacement, upsert=upsert)

    async def update_one(
        self, filter: Mapping[str, Any], update: Mapping[str, Any], upsert: bool = False
    ) -> Any:
        await asyncio.sleep(0)
        return self._collection.update_one(filter, update, upsert=upsert)

    async def delete_many(self, filter: Mapping[str, Any]) -> Any:
        await asyncio.sleep(0)
        return self._collection.delete_many(filter)

    async def create_index(self, keys: Any, **kwargs: Any) -> str:
        await asyncio.sleep(0)
        name: str = self._collection.create_index(keys, **kwargs)
        return name
