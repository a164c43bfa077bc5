"""Events whose data a read model cannot hold (NUL characters, lone surrogates), appended
straight to the log as a script or an old release could have: the store refuses them, and the
projector stops exactly at that event as a PoisonEvent, on SQLite, PostgreSQL and (emulated)
MongoDB read models; a transient store failure is never taken for one.

The events are built as raw envelopes, bypassing the domain, like a migration would write them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import mongomock
import pytest

from actors.projector_actor import projection_status
from eventstore.factory import open_event_store
from eventstore.port import EventStore, NewEvent
from projections.documents import AgentDocument, SessionDocument
from projections.mongo_store import MongoReadModel
from projections.postgres_store import PostgresReadModel
from projections.projector import PoisonEvent, Projector
from projections.sqlite_store import SQLiteReadModel
from projections.store import ReadModelStore, ReadModelUnavailable
from tests.postgres_support import POSTGRES_URL, require_postgres
from tests.projection_support import AsyncMongomockDatabase

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
PREFERENCES = "agent.preferences.updated.v1"
SECRET = "tenant-b-private-note"

# Which stores cannot hold each poison (the others store it exactly).
ALL_STORES = frozenset({"sqlite", "postgres", "mongomock"})
REFUSED_BY = {
    "nul_in_value": frozenset({"postgres"}),
    "nul_in_key": frozenset({"postgres", "mongomock"}),
    "nul_in_member_id": frozenset({"postgres"}),
    "lone_surrogate": ALL_STORES,
}


def created(agent_id: str, owner: str) -> NewEvent:
    return NewEvent(
        type="agent.created.v1",
        subject=agent_id,
        data={
            "agent_id": agent_id,
            "occurred_at": T0.isoformat(),
            "owner_user_id": owner,
            "agent_type": "tutor",
            "name": f"agent of {owner}",
            "system_prompt_override": None,
            "preferences": {},
            "max_history_size": 10,
        },
    )


def preferences(agent_id: str, changes: Mapping[str, Any], minute: int) -> NewEvent:
    return NewEvent(
        type=PREFERENCES,
        subject=agent_id,
        data={
            "agent_id": agent_id,
            "occurred_at": (T0 + timedelta(minutes=minute)).isoformat(),
            "preferences": dict(changes),
        },
    )


def assigned(agent_id: str, user_id: str, owner: str) -> NewEvent:
    return NewEvent(
        type="agent.user.assigned.v1",
        subject=agent_id,
        data={
            "agent_id": agent_id,
            "occurred_at": (T0 + timedelta(minutes=1)).isoformat(),
            "user_id": user_id,
            "role": "observer",
            "assigned_by": owner,
        },
    )


def poison_for(kind: str, agent_id: str) -> NewEvent:
    if kind == "nul_in_value":
        return preferences(agent_id, {"note": f"{SECRET}\x00end"}, 2)
    if kind == "nul_in_key":
        return preferences(agent_id, {f"{SECRET}\x00": 1}, 2)
    if kind == "nul_in_member_id":
        return assigned(agent_id, f"{SECRET}\x00", "owner-b")
    return preferences(agent_id, {"note": f"{SECRET}\ud800"}, 2)


@pytest.fixture
async def event_store() -> AsyncIterator[EventStore]:
    # The in-memory log keeps what SQLite's or PostgreSQL's log could not (lone surrogates).
    store = await open_event_store(f"memory://{uuid4().hex}")
    yield store
    await store.close()


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "mongomock"]
)
async def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def read_model(store_kind: str, tmp_path: Path) -> AsyncIterator[ReadModelStore]:
    if store_kind == "sqlite":
        sqlite = await SQLiteReadModel.open(tmp_path / "read_model.db")
        yield sqlite
        await sqlite.close()
    elif store_kind == "postgres":
        require_postgres()
        postgres = await PostgresReadModel.open(POSTGRES_URL, schema=f"test_rm_{uuid4().hex[:12]}")
        yield postgres
        await postgres.drop_schema()
        await postgres.close()
    else:
        yield await MongoReadModel.attach(AsyncMongomockDatabase(mongomock.MongoClient()["rm"]))


async def append(store: EventStore, events: Sequence[NewEvent]) -> list[int]:
    """Each event on its own stream's end; returns their positions."""
    positions = []
    for event in events:
        stream = f"agent-{event.subject}"
        version = await store.stream_version(stream)
        positions.append((await store.append(stream, [event], expected_version=version)).position)
    return positions


@dataclass(frozen=True)
class Log:
    """Where three tenants' events and the poison among them sit in the log."""

    agents: dict[str, str]
    created: dict[str, int]
    before: int
    poison: int
    last: int


async def three_tenants_and_a_poison(store: EventStore, kind: str) -> Log:
    """A, B and C created; A updated; B poisoned; C and A updated after it: one batch."""
    agents = {name: str(uuid4()) for name in "abc"}
    a, b, c = agents.values()
    positions = await append(
        store,
        [
            created(a, "owner-a"),
            created(b, "owner-b"),
            created(c, "owner-c"),
            preferences(a, {"revision": 1}, 1),
            poison_for(kind, b),
            preferences(c, {"revision": 1}, 3),
            preferences(a, {"revision": 2}, 4),
        ],
    )
    return Log(
        agents=agents,
        created=dict(zip("abc", positions[:3], strict=True)),
        before=positions[3],
        poison=positions[4],
        last=positions[-1],
    )


async def documents_of(read_model: ReadModelStore, log: Log) -> dict[str, AgentDocument]:
    found = {name: await read_model.get_agent(agent_id) for name, agent_id in log.agents.items()}
    assert all(document is not None for document in found.values()), found
    return {name: document for name, document in found.items() if document is not None}


@pytest.mark.parametrize("poison", list(REFUSED_BY))
async def test_data_a_store_cannot_hold_stops_the_projector_exactly_at_its_event(
    event_store: EventStore, read_model: ReadModelStore, store_kind: str, poison: str
) -> None:
    log = await three_tenants_and_a_poison(event_store, poison)
    projector = Projector(event_store, read_model, batch_size=200)  # all seven in one batch

    if store_kind not in REFUSED_BY[poison]:
        # This store holds the data exactly: nothing to stop for.
        assert await projector.catch_up() == log.last
        return

    with pytest.raises(PoisonEvent) as stopped:
        await projector.catch_up()
    assert stopped.value.position == log.poison
    assert stopped.value.event_type == event_type_of(poison)
    # Everything before it is applied and checkpointed; nothing after it is, not even for
    # the other tenants, so no document runs ahead of the event the projector stopped at...
    assert await read_model.checkpoint() == log.before
    documents = await documents_of(read_model, log)
    a = (documents["a"].preferences, documents["a"].position)
    if store_kind == "mongomock":  # ...but on MongoDB, documents written before the refused
        # one in the failed batch stay ahead of the checkpoint, as after a crash (no
        # multi-document transactions): per document, still in log order.
        assert a in (({"revision": 1}, log.before), ({"revision": 2}, log.last))
    else:
        assert a == ({"revision": 1}, log.before)
    assert documents["b"].position == log.created["b"]
    assert (documents["c"].preferences, documents["c"].position) == ({}, log.created["c"])
    # Following stops there again at once: never skipped, never retried in a loop.
    following = asyncio.create_task(Projector(event_store, read_model).run())
    with pytest.raises(PoisonEvent) as again:
        await asyncio.wait_for(asyncio.shield(following), timeout=5)
    assert again.value.position == log.poison
    assert await read_model.checkpoint() == log.before

    status = await projection_status(projector, following, pid=0)
    assert status.stopped_by == "poison_event"
    assert status.stopped_at == log.poison
    assert status.stopped_event_type == event_type_of(poison)
    assert status.checkpoint == log.before
    assert status.lag == log.last - log.before
    shown = status.model_dump_json()
    assert SECRET not in shown
    assert "Error" not in shown
    assert "\\u0000" not in shown


def event_type_of(poison: str) -> str:
    return "agent.user.assigned.v1" if poison == "nul_in_member_id" else PREFERENCES


async def test_a_store_that_holds_nul_reads_it_back_exactly(
    event_store: EventStore, read_model: ReadModelStore, store_kind: str
) -> None:
    agent_id = str(uuid4())
    note = {"note": f"{SECRET}\x00end"}
    await append(event_store, [created(agent_id, "owner"), preferences(agent_id, note, 1)])
    projector = Projector(event_store, read_model)
    if store_kind == "postgres":
        with pytest.raises(PoisonEvent):
            await projector.catch_up()
        return
    await projector.catch_up()
    stored = await read_model.get_agent(agent_id)
    assert stored is not None
    assert stored.preferences == note


class FlakyReadModel(ReadModelStore):
    """A SQLite read model whose first ``failures`` batches fail as an outage would."""

    def __init__(self, inner: ReadModelStore, failures: int) -> None:
        self._inner = inner
        self.failures = failures

    async def apply(
        self, position: int, agents: Sequence[AgentDocument], sessions: Sequence[SessionDocument]
    ) -> bool:
        if self.failures > 0:
            self.failures -= 1
            raise ReadModelUnavailable("the read model did not answer")
        return await self._inner.apply(position, agents, sessions)

    async def checkpoint(self) -> int:
        return await self._inner.checkpoint()

    async def get_agent(self, agent_id: str) -> AgentDocument | None:
        return await self._inner.get_agent(agent_id)

    async def list_agents(
        self, user_id: str, *, include_archived: bool = False, agent_type: str | None = None
    ) -> list[AgentDocument]:
        raise NotImplementedError

    async def agents_with_active_session(
        self, *, after_id: str = "", limit: int = 50
    ) -> list[AgentDocument]:
        raise NotImplementedError

    async def get_session(self, session_id: str) -> SessionDocument | None:
        return await self._inner.get_session(session_id)

    async def list_sessions(
        self, agent_id: str, *, limit: int = 50, before: datetime | None = None
    ) -> list[SessionDocument]:
        raise NotImplementedError

    async def list_sessions_of_owner(
        self, owner_user_id: str, *, status: Any = None, limit: int = 50
    ) -> list[SessionDocument]:
        raise NotImplementedError

    async def reset(self) -> None:
        await self._inner.reset()

    async def close(self) -> None:
        await self._inner.close()


async def test_an_outage_is_not_a_poison_event(event_store: EventStore, tmp_path: Path) -> None:
    agent_id = str(uuid4())
    await append(event_store, [created(agent_id, "o"), preferences(agent_id, {"r": 1}, 1)])
    flaky = FlakyReadModel(await SQLiteReadModel.open(tmp_path / "flaky.db"), failures=1)
    projector = Projector(event_store, flaky, batch_size=1)
    with pytest.raises(ReadModelUnavailable):  # the actor retries this, from the checkpoint
        await projector.catch_up()
    assert await flaky.checkpoint() == 0
    assert await projector.catch_up() == await event_store.last_position()
    stored = await flaky.get_agent(agent_id)
    assert stored is not None
    assert stored.preferences == {"r": 1}
    await flaky.close()


async def test_status_of_a_projector_still_following_shows_no_stop(
    event_store: EventStore, tmp_path: Path
) -> None:
    read_model = await SQLiteReadModel.open(tmp_path / "rm.db")
    projector = Projector(event_store, read_model)
    following = asyncio.create_task(projector.run())
    try:
        await append(event_store, [created(str(uuid4()), "o")])
        assert await read_model.wait_for_position(await event_store.last_position(), 5)
        status = await projection_status(projector, following, pid=7)
        assert (status.stopped_by, status.stopped_at, status.stopped_event_type) == (None,) * 3
        assert (status.lag, status.pid) == (0, 7)
    finally:
        following.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await following
        await read_model.close()
