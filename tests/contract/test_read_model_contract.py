"""One contract for every read-model store: SQLite, PostgreSQL, MongoDB (emulated and real).

``mongomock`` runs ``MongoReadModel`` over mongomock's in-process emulation: mongomock 4.3 only
emulates the synchronous ``MongoClient`` and cannot back ``AsyncMongoClient``, so the store
accepts any database with pymongo's async surface and the test hands it a thin async wrapper
(``tests.projection_support.AsyncMongomockDatabase``). ``mongodb`` runs the same tests against
a real server when ``MONGODB_URL`` is set.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import uuid4

import mongomock
import pytest
from pymongo import AsyncMongoClient

from domain.enums import (
    AgentStatus,
    AgentType,
    AssignmentRole,
    ControlMode,
    SessionStatus,
    SessionType,
)
from domain.events import UserUnassignedFromAgent
from domain.execution_state import LlmMessage, ToolCall
from domain.session import ClientAction, SessionConfig, SessionItem
from projections.documents import (
    ActiveSessionSummary,
    AgentDocument,
    AssignmentDocument,
    LastSessionSummary,
    SessionDocument,
)
from projections.handlers import project_agent
from projections.mongo_store import MongoReadModel
from projections.postgres_store import PostgresReadModel
from projections.sqlite_store import SQLiteReadModel
from projections.store import DocumentRefused, ReadModelStore, ReadModelUnavailable
from tests.postgres_support import POSTGRES_URL, drop_schema, require_postgres
from tests.projection_support import AsyncMongomockDatabase

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
OWNER = "user-1"

# Which stores commit a batch's documents and checkpoint together (MongoDB does not).
ATOMIC = {"sqlite": True, "postgres": True, "mongomock": False, "mongodb": False}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture(params=["sqlite", "postgres", "mongomock", "mongodb"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def store(kind: str, tmp_path: Path) -> AsyncIterator[ReadModelStore]:
    if kind == "sqlite":
        sqlite = await SQLiteReadModel.open(tmp_path / "read_model.db")
        yield sqlite
        await sqlite.close()
    elif kind == "postgres":
        require_postgres()
        postgres = await PostgresReadModel.open(POSTGRES_URL, schema=f"test_rm_{uuid4().hex[:12]}")
        yield postgres
        await postgres.drop_schema()
        await postgres.close()
    elif kind == "mongomock":
        database = AsyncMongomockDatabase(mongomock.MongoClient()["agenthost"])
        yield await MongoReadModel.attach(database)
    else:
        url = os.environ.get("MONGODB_URL")
        if not url:
            pytest.skip("MONGODB_URL not set: no MongoDB server to test against")
        client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(url)
        name = f"test_rm_{uuid4().hex[:12]}"
        mongo = await MongoReadModel.attach(client[name], client)
        yield mongo
        await client.drop_database(name)
        await mongo.close()


# ---------------------------------------------------------------------------- documents


def agent_doc(
    agent_id: str,
    *,
    created: float = 0,
    members: tuple[str, ...] = (),
    agent_type: AgentType = AgentType.TUTOR,
    status: AgentStatus = AgentStatus.ACTIVE,
    position: int = 1,
    owner: str = OWNER,
) -> AgentDocument:
    assignments = (
        AssignmentDocument(
            user_id=owner, role="primary", assigned_by=owner, assigned_at=at(created)
        ),
        *(
            AssignmentDocument(
                user_id=u, role="shared", assigned_by=owner, assigned_at=at(created + 1)
            )
            for u in members
        ),
    )
    return AgentDocument(
        id=agent_id,
        owner_user_id=owner,
        agent_type=agent_type,
        status=status,
        name=f"agent {agent_id}",
        assignments=assignments,
        member_user_ids=(owner, *members),
        archived_at=at(created + 5) if status is AgentStatus.ARCHIVED else None,
        archive_reason="gone" if status is AgentStatus.ARCHIVED else None,
        created_at=at(created),
        updated_at=at(created + 5),
        position=position,
    )


def session_doc(
    session_id: str, agent_id: str = "a-1", *, started: datetime = T0, position: int = 2
) -> SessionDocument:
    return SessionDocument(
        session_id=session_id,
        agent_id=agent_id,
        owner_user_id=OWNER,
        agent_type=AgentType.TUTOR,
        conversation_id=f"c-{session_id}",
        session_type=SessionType.LEARNING,
        control_mode=ControlMode.PROACTIVE,
        status=SessionStatus.ACTIVE,
        started_at=started,
        position=position,
    )


def rich_agent() -> AgentDocument:
    """Every optional part filled in, to prove the documents round-trip losslessly."""
    action = ClientAction(
        tool_call_id="call-2",
        tool_name="present_choices",
        widget_type="multiple_choice",
        props={"prompt": "Which?", "options": ["é", "ü"], "nested": {"k": [1, 2.5, None]}},
    )
    item = SessionItem(
        item_id="call-2", sequence=2, agent_prompt="Which?", client_action=action, started_at=at(7)
    )
    return agent_doc("a-rich", members=("user-2",)).model_copy(
        update={
            "preferences": {"language": "fr", "limits": {"daily": 3}, "tags": ["x"]},
            "total_sessions": 4,
            "total_interactions": 9,
            "successful_completions": 2,
            "has_active_session": True,
            "active_session_id": "s-4",
            "active_session": ActiveSessionSummary(
                session_id="s-4",
                status=SessionStatus.AWAITING_CLIENT_ACTION,
                pending_action=action,
                current_item=item,
                items_completed=1,
                started_at=at(6),
            ),
            "last_session": LastSessionSummary(
                session_id="s-3",
                status=SessionStatus.EXPIRED,
                started_at=at(2),
                ended_at=at(3.123456),
                end_reason="time_limit",
                summary={"score": 0.5},
            ),
            "last_interaction_at": at(7),
        }
    )


def rich_session() -> SessionDocument:
    action = ClientAction(tool_call_id="c1", tool_name="free_text", widget_type="free_text")
    answered = SessionItem(
        item_id="c1",
        sequence=1,
        client_action=action,
        started_at=at(1),
        user_response={"text": "hello", "list": [1, "2"]},
        response_time_ms=12.5,
        evaluation={"correct": False},
        completed_at=at(2),
    )
    return session_doc("s-rich").model_copy(
        update={
            "status": SessionStatus.COMPLETED,
            "system_prompt": "Be brief.",
            "config": SessionConfig(max_items=5, completion_criteria={"min_score": 0.7}),
            "items": (answered,),
            "transcript": (
                LlmMessage(role="user", content="hi"),
                LlmMessage(role="assistant", tool_calls=(ToolCall(id="c1", name="free_text"),)),
            ),
            "ended_at": at(3),
            "end_reason": "criteria_met",
            "summary": {"score": 1},
            "items_completed": 1,
        }
    )


# ---------------------------------------------------------------------------- tests


async def test_an_empty_store_has_nothing(store: ReadModelStore) -> None:
    assert await store.checkpoint() == 0
    assert await store.get_agent("a-1") is None
    assert await store.get_session("s-1") is None
    assert await store.list_agents(OWNER) == []
    assert await store.list_sessions("a-1") == []


async def test_documents_round_trip_unchanged(store: ReadModelStore) -> None:
    agent, session = rich_agent(), rich_session()
    assert await store.apply(10, [agent], [session]) is True
    assert await store.checkpoint() == 10
    assert await store.get_agent(agent.id) == agent
    assert await store.get_session(session.session_id) == session
    stored = await store.get_agent(agent.id)
    assert stored is not None
    assert stored.model_dump(mode="json") == agent.model_dump(mode="json")


async def test_members_see_their_agents_newest_first(store: ReadModelStore) -> None:
    await store.apply(
        5,
        [
            agent_doc("a-old", created=0),
            agent_doc("a-new", created=60, members=("user-2",)),
            agent_doc("a-mid", created=30, members=("user-2", "user-3")),
            agent_doc("a-other", created=10, owner="user-9"),
        ],
        [],
    )
    assert [a.id for a in await store.list_agents(OWNER)] == ["a-new", "a-mid", "a-old"]
    assert [a.id for a in await store.list_agents("user-2")] == ["a-new", "a-mid"]
    assert [a.id for a in await store.list_agents("user-3")] == ["a-mid"]
    assert [a.id for a in await store.list_agents("user-9")] == ["a-other"]
    assert await store.list_agents("nobody") == []


async def test_an_unassigned_member_no_longer_lists_the_agent(store: ReadModelStore) -> None:
    shared = agent_doc("a-1", created=1, members=("user-2", "user-3"), position=2)
    await store.apply(2, [shared, agent_doc("a-2", created=2, members=("user-2",))], [])
    assert [a.id for a in await store.list_agents("user-2")] == ["a-2", "a-1"]
    left = UserUnassignedFromAgent(
        agent_id="a-1", occurred_at=at(9), user_id="user-2", unassigned_by="user-2"
    )
    unassigned = project_agent(left, 3, shared)

    await store.apply(3, [unassigned], [])

    assert await store.get_agent("a-1") == unassigned
    assert [a.id for a in await store.list_agents("user-2")] == ["a-2"]
    assert [a.id for a in await store.list_agents("user-2", include_archived=True)] == ["a-2"]
    assert await store.list_agents("user-2", agent_type="tutor") == [await store.get_agent("a-2")]
    assert [a.id for a in await store.list_agents("user-3")] == ["a-1"]
    assert [a.id for a in await store.list_agents(OWNER)] == ["a-2", "a-1"]


async def test_order_is_by_instant_whatever_the_utc_offset(store: ReadModelStore) -> None:
    plus_two = timezone(timedelta(hours=2))
    later_but_smaller_text = agent_doc("a-utc", created=3600).model_copy(
        update={"created_at": datetime(2026, 11, 25, 10, 0, tzinfo=UTC)}
    )
    earlier = agent_doc("a-plus2").model_copy(
        update={"created_at": datetime(2026, 11, 25, 11, 30, tzinfo=plus_two)}  # 09:30 UTC
    )
    await store.apply(3, [earlier, later_but_smaller_text], [])
    assert [a.id for a in await store.list_agents(OWNER)] == ["a-utc", "a-plus2"]


async def test_ties_on_time_break_by_id(store: ReadModelStore) -> None:
    await store.apply(3, [agent_doc(f"a-{n}") for n in (2, 10, 1)], [])
    assert [a.id for a in await store.list_agents(OWNER)] == ["a-2", "a-10", "a-1"]


async def test_archived_agents_are_listed_only_on_request(store: ReadModelStore) -> None:
    await store.apply(
        4,
        [
            agent_doc("a-live", created=1),
            agent_doc("a-gone", created=2, status=AgentStatus.ARCHIVED),
        ],
        [],
    )
    assert [a.id for a in await store.list_agents(OWNER)] == ["a-live"]
    listed = await store.list_agents(OWNER, include_archived=True)
    assert [a.id for a in listed] == ["a-gone", "a-live"]


async def test_agents_with_an_active_session_page_by_id(store: ReadModelStore) -> None:
    def busy(agent_id: str) -> AgentDocument:
        return agent_doc(agent_id).model_copy(
            update={"has_active_session": True, "active_session_id": f"s-{agent_id}"}
        )

    await store.apply(
        4, [busy("a-3"), agent_doc("a-2"), busy("a-1"), busy("a-5"), agent_doc("a-4")], []
    )
    first = await store.agents_with_active_session(limit=2)
    assert [a.id for a in first] == ["a-1", "a-3"]
    rest = await store.agents_with_active_session(after_id=first[-1].id, limit=2)
    assert [a.id for a in rest] == ["a-5"]
    assert await store.agents_with_active_session(after_id="a-5") == []


async def test_agents_filter_by_type(store: ReadModelStore) -> None:
    await store.apply(
        4,
        [
            agent_doc("a-tutor", created=1),
            agent_doc("a-coach", created=2, agent_type=AgentType.COACH),
            agent_doc(
                "a-old-coach", created=3, agent_type=AgentType.COACH, status=AgentStatus.ARCHIVED
            ),
        ],
        [],
    )
    assert [a.id for a in await store.list_agents(OWNER, agent_type="coach")] == ["a-coach"]
    coaches = await store.list_agents(OWNER, agent_type="coach", include_archived=True)
    assert [a.id for a in coaches] == ["a-old-coach", "a-coach"]
    assert await store.list_agents(OWNER, agent_type="planner") == []


async def test_a_newer_document_replaces_the_stored_one(store: ReadModelStore) -> None:
    await store.apply(1, [agent_doc("a-1", position=1)], [session_doc("s-1", position=1)])
    assigned = agent_doc("a-1", members=("user-2",), position=3)
    ended = session_doc("s-1", position=3).model_copy(update={"status": SessionStatus.COMPLETED})
    await store.apply(3, [assigned], [ended])
    assert await store.get_agent("a-1") == assigned
    assert await store.get_session("s-1") == ended
    assert [a.id for a in await store.list_agents("user-2")] == ["a-1"]


async def test_sessions_list_newest_first_with_limit_and_before(store: ReadModelStore) -> None:
    sessions = [session_doc(f"s-{n}", started=at(n * 60)) for n in range(1, 6)]
    sessions.append(session_doc("s-elsewhere", "a-2", started=at(999)))
    await store.apply(9, [], sessions)
    listed = await store.list_sessions("a-1")
    assert [s.session_id for s in listed] == ["s-5", "s-4", "s-3", "s-2", "s-1"]
    assert [s.session_id for s in await store.list_sessions("a-1", limit=2)] == ["s-5", "s-4"]
    page = await store.list_sessions("a-1", limit=2, before=at(4 * 60))
    assert [s.session_id for s in page] == ["s-3", "s-2"]
    assert await store.list_sessions("a-1", before=at(60)) == []
    assert [s.session_id for s in await store.list_sessions("a-2")] == ["s-elsewhere"]
    with pytest.raises(ValueError, match="limit"):
        await store.list_sessions("a-1", limit=0)


async def test_a_batch_at_or_below_the_checkpoint_is_a_no_op(store: ReadModelStore) -> None:
    first = agent_doc("a-1", position=5)
    assert await store.apply(5, [first], []) is True
    replay = agent_doc("a-1", members=("user-2",), position=6)
    assert await store.apply(5, [replay], [session_doc("s-1", position=6)]) is False
    assert await store.apply(4, [replay], []) is False
    assert await store.checkpoint() == 5
    assert await store.get_agent("a-1") == first
    assert await store.get_session("s-1") is None


async def test_an_empty_batch_still_moves_the_checkpoint(store: ReadModelStore) -> None:
    assert await store.apply(7, [], []) is True
    assert await store.checkpoint() == 7


async def test_a_document_never_goes_back_to_an_older_position(store: ReadModelStore) -> None:
    newer = agent_doc("a-1", members=("user-2",), position=8)
    await store.apply(8, [newer], [session_doc("s-1", position=8)])
    await store.apply(9, [agent_doc("a-1", position=4)], [session_doc("s-1", position=3)])
    assert await store.get_agent("a-1") == newer
    assert await store.get_session("s-1") == session_doc("s-1", position=8)
    assert [a.id for a in await store.list_agents("user-2")] == ["a-1"]
    assert await store.checkpoint() == 9


async def test_a_failed_batch_leaves_the_checkpoint_behind(
    store: ReadModelStore, kind: str
) -> None:
    await store.apply(1, [agent_doc("a-0")], [])
    # Naive time and a NUL byte: refused by every store, after the agent was written.
    broken = SessionDocument.model_construct(
        **{**session_doc("s\x00bad").__dict__, "started_at": datetime(2026, 1, 1)}
    )
    with pytest.raises(Exception):  # noqa: B017, PT011 - each store fails in its own words
        await store.apply(2, [agent_doc("a-1", position=2)], [broken])
    assert await store.checkpoint() == 1
    if ATOMIC[kind]:
        assert await store.get_agent("a-1") is None
    else:  # written before the failure, ahead of the checkpoint: what a crash leaves behind
        assert await store.get_agent("a-1") == agent_doc("a-1", position=2)
    # Redoing the batch (as a restarted projector would) converges either way.
    assert await store.apply(2, [agent_doc("a-1", position=2)], [session_doc("s-1")]) is True
    assert await store.get_agent("a-1") == agent_doc("a-1", position=2)


async def test_reset_drops_documents_and_checkpoint(store: ReadModelStore) -> None:
    await store.apply(12, [agent_doc("a-1", position=12)], [session_doc("s-1", position=12)])
    await store.reset()
    assert await store.checkpoint() == 0
    assert await store.get_agent("a-1") is None
    assert await store.get_session("s-1") is None
    assert await store.list_agents(OWNER) == []
    assert await store.apply(1, [agent_doc("a-1", position=1)], []) is True
    assert await store.get_agent("a-1") == agent_doc("a-1", position=1)


async def test_wait_for_position(store: ReadModelStore) -> None:
    await store.apply(3, [], [])
    assert await store.wait_for_position(3, timeout=0.5) is True
    started = asyncio.get_running_loop().time()
    assert await store.wait_for_position(4, timeout=0.1) is False
    assert asyncio.get_running_loop().time() - started >= 0.1

    async def apply_later() -> None:
        await asyncio.sleep(0.05)
        await store.apply(4, [], [])

    waiting = asyncio.create_task(store.wait_for_position(4, timeout=5))
    await apply_later()
    assert await waiting is True


async def test_assignment_roles_and_statuses_survive_as_enums(store: ReadModelStore) -> None:
    await store.apply(2, [agent_doc("a-1", members=("user-2",))], [])
    stored = await store.get_agent("a-1")
    assert stored is not None
    assert [a.role for a in stored.assignments] == [AssignmentRole.PRIMARY, AssignmentRole.SHARED]
    assert stored.status is AgentStatus.ACTIVE


# ---------------------------------------------------------------------------- sessions of an owner


def owned_session(
    session_id: str,
    agent_id: str,
    *,
    owner: str = OWNER,
    started: datetime = T0,
    status: SessionStatus = SessionStatus.ACTIVE,
    position: int = 2,
) -> SessionDocument:
    return session_doc(session_id, agent_id, started=started, position=position).model_copy(
        update={"owner_user_id": owner, "status": status}
    )


async def test_sessions_of_an_owner_span_their_agents_newest_first(
    store: ReadModelStore,
) -> None:
    # 09:00:30 UTC, the earliest start, though its text sorts after every other one.
    earliest = datetime(2026, 11, 25, 11, 0, 30, tzinfo=timezone(timedelta(hours=2)))
    await store.apply(
        9,
        [
            agent_doc("a-tutor", members=("user-2",)),
            agent_doc("a-coach", agent_type=AgentType.COACH, status=AgentStatus.ARCHIVED),
        ],
        [
            owned_session("s-1", "a-tutor", started=at(60)),
            owned_session("s-2", "a-coach", started=at(120)),
            owned_session("s-3", "a-tutor", started=at(180)),
            owned_session("s-4", "a-coach", started=earliest),
            owned_session("s-5", "a-other", owner="user-9", started=at(999)),
        ],
    )
    listed = await store.list_sessions_of_owner(OWNER)
    assert [s.session_id for s in listed] == ["s-3", "s-2", "s-1", "s-4"]
    assert listed[-1] == owned_session("s-4", "a-coach", started=earliest)
    newest = await store.list_sessions_of_owner(OWNER, limit=3)
    assert [s.session_id for s in newest] == ["s-3", "s-2", "s-1"]
    assert [s.session_id for s in await store.list_sessions_of_owner("user-9")] == ["s-5"]


async def test_sessions_of_an_owner_leave_out_agents_they_are_only_assigned_to(
    store: ReadModelStore,
) -> None:
    await store.apply(
        4,
        [agent_doc("a-shared", members=("user-2",))],
        [owned_session("s-1", "a-shared")],
    )
    assert [a.id for a in await store.list_agents("user-2")] == ["a-shared"]
    assert await store.list_sessions_of_owner("user-2") == []
    assert await store.list_sessions_of_owner("nobody") == []


async def test_sessions_of_an_owner_tie_on_start_breaks_by_id(store: ReadModelStore) -> None:
    await store.apply(3, [], [owned_session(f"s-{n}", f"a-{n % 2}") for n in (2, 10, 1)])
    listed = await store.list_sessions_of_owner(OWNER)
    assert [s.session_id for s in listed] == ["s-2", "s-10", "s-1"]


async def test_sessions_of_an_owner_filter_by_status_before_the_limit(
    store: ReadModelStore,
) -> None:
    done = SessionStatus.COMPLETED
    await store.apply(
        5,
        [],
        [
            owned_session("s-1", "a-1", started=at(1), status=done),
            owned_session("s-2", "a-2", started=at(2), status=SessionStatus.TERMINATED),
            owned_session("s-3", "a-1", started=at(3), status=done),
            owned_session("s-4", "a-2", started=at(4)),
            owned_session("s-5", "a-3", started=at(5), status=SessionStatus.AWAITING_CLIENT_ACTION),
        ],
    )
    completed = await store.list_sessions_of_owner(OWNER, status=done)
    assert [s.session_id for s in completed] == ["s-3", "s-1"]
    newest_completed = await store.list_sessions_of_owner(OWNER, status=done, limit=1)
    assert [s.session_id for s in newest_completed] == ["s-3"]
    active = await store.list_sessions_of_owner(OWNER, status=SessionStatus.ACTIVE)
    assert [s.session_id for s in active] == ["s-4"]
    assert await store.list_sessions_of_owner(OWNER, status=SessionStatus.EXPIRED) == []
    with pytest.raises(ValueError, match="limit"):
        await store.list_sessions_of_owner(OWNER, limit=0)


async def test_sessions_of_an_owner_filter_on_the_newest_document(store: ReadModelStore) -> None:
    await store.apply(1, [], [owned_session("s-1", "a-1", position=1)])
    await store.apply(2, [], [owned_session("s-1", "a-1", status=SessionStatus.EXPIRED)])
    assert await store.list_sessions_of_owner(OWNER, status=SessionStatus.ACTIVE) == []
    expired = await store.list_sessions_of_owner(OWNER, status=SessionStatus.EXPIRED)
    assert expired == [owned_session("s-1", "a-1", status=SessionStatus.EXPIRED)]
    await store.reset()
    assert await store.list_sessions_of_owner(OWNER) == []


# ------------------------------------------------------------- refused data and outages

# Documents some stores cannot hold; each store either keeps one exactly or refuses it as
# DocumentRefused (never a driver's own error), so the projector knows retrying cannot help.
UNHOLDABLE: dict[str, dict[str, Any]] = {
    "nul_in_value": {"preferences": {"note": "a\x00b"}},
    "nul_in_key": {"preferences": {"a\x00b": 1}},
    "nul_in_member_id": {"member_user_ids": (OWNER, "bob\x00")},
    "lone_surrogate": {"preferences": {"note": "a\ud800b"}},
}
REFUSES = {
    "sqlite": {"lone_surrogate"},
    "postgres": set(UNHOLDABLE),
    "mongomock": {"nul_in_key", "lone_surrogate"},
    "mongodb": {"nul_in_key", "lone_surrogate"},
}


@pytest.mark.parametrize("content", list(UNHOLDABLE))
async def test_data_a_store_cannot_hold_is_refused_as_such(
    store: ReadModelStore, kind: str, content: str
) -> None:
    await store.apply(1, [agent_doc("a-0")], [])
    document = agent_doc("a-1", position=2).model_copy(update=UNHOLDABLE[content])
    if content not in REFUSES[kind]:
        assert await store.apply(2, [document], []) is True
        assert await store.get_agent("a-1") == document
        return
    with pytest.raises(DocumentRefused):
        await store.apply(2, [document], [])
    assert await store.checkpoint() == 1
    # The store still works: the next batch without that document is applied.
    assert await store.apply(2, [agent_doc("a-2", position=2)], []) is True
    assert await store.get_agent("a-2") == agent_doc("a-2", position=2)


async def test_a_closed_store_is_unavailable_not_broken(
    store: ReadModelStore, kind: str, tmp_path: Path
) -> None:
    """What a lost connection looks like to queries and to the projector: ReadModelUnavailable
    (a 503, a retry), never a driver's own error (a 500, or a poison event)."""
    if kind == "mongomock":
        pytest.skip("mongomock has no connection to lose")
    name = f"test_rm_{uuid4().hex[:12]}"
    closed: ReadModelStore
    if kind == "sqlite":
        closed = await SQLiteReadModel.open(tmp_path / "closed.db")
    elif kind == "postgres":
        closed = await PostgresReadModel.open(POSTGRES_URL, schema=name)
    else:
        client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(os.environ["MONGODB_URL"])
        closed = await MongoReadModel.attach(client[name], client)
    try:
        await closed.apply(1, [agent_doc("a-1")], [])
        await closed.close()
        queries = (
            closed.checkpoint(),
            closed.get_agent("a-1"),
            closed.list_agents(OWNER),
            closed.get_session("s-1"),
            closed.list_sessions("a-1"),
            closed.list_sessions_of_owner(OWNER),
            closed.agents_with_active_session(),
            closed.apply(2, [agent_doc("a-2", position=2)], []),
            closed.wait_for_position(2, timeout=1),
        )
        for query in queries:
            with pytest.raises(ReadModelUnavailable):
                await query
        assert await store.checkpoint() == 0  # another connection: unaffected
    finally:
        if kind == "postgres":
            await drop_schema(name)
        elif kind == "mongodb":
            async with AsyncMongoClient[dict[str, object]](os.environ["MONGODB_URL"]) as cleanup:
                await cleanup.drop_database(name)
