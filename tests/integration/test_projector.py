"""The projector over real stores: SQLite event store, SQLite (and emulated MongoDB) read model.

Histories are written through ``AgentRepository`` exactly as the runtime writes them, and the
documents are checked against the aggregates loaded back from the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import UUID, uuid4

import mongomock
import pydantic
import pytest

from application.agent_repository import AgentRepository
from domain.agent import Agent
from eventstore.factory import open_event_store
from eventstore.port import EventStore, NewEvent
from projections.factory import open_read_model
from projections.mongo_store import MongoReadModel
from projections.projector import PoisonEvent, Projector
from projections.store import ReadModelStore
from tests.projection_support import (
    AsyncMongomockDatabase,
    Clock,
    assert_matches_state,
    create_agent,
    random_command,
)

OWNERS = ("owner-a", "owner-b", "owner-c")


class Population:
    """Several agents whose commands are saved, interleaved, through the repository."""

    def __init__(self, repository: AgentRepository, rng: random.Random) -> None:
        self.repository = repository
        self.rng = rng
        self.agents: dict[str, Agent] = {}
        self.clocks: dict[str, Clock] = {}

    async def create(self, count: int) -> None:
        for index in range(count):
            agent_id = str(UUID(int=self.rng.getrandbits(128)))
            clock = Clock(rng=self.rng)
            agent = create_agent(self.rng, clock, agent_id, OWNERS[index % len(OWNERS)], 4)
            await self.repository.save(agent)
            self.agents[agent_id], self.clocks[agent_id] = agent, clock

    async def advance(self, steps: int) -> None:
        for _ in range(steps):
            live = [a for a in self.agents.values() if not a.is_archived()]
            if not live:
                return
            agent = self.rng.choice(live)
            random_command(agent, self.rng, self.clocks[agent.id])
            await self.repository.save(agent)


@pytest.fixture
async def event_store(tmp_path: Path) -> AsyncIterator[EventStore]:
    store = await open_event_store(f"sqlite:///{tmp_path / 'events.db'}")
    yield store
    await store.close()


@pytest.fixture
async def read_model(tmp_path: Path) -> AsyncIterator[ReadModelStore]:
    store = await open_read_model(f"sqlite:///{tmp_path / 'read_model.db'}")
    yield store
    await store.close()


async def populated(event_store: EventStore, seed: int, agents: int, steps: int) -> Population:
    population = Population(AgentRepository(event_store), random.Random(seed))
    await population.create(agents)
    await population.advance(steps)
    return population


async def assert_read_model_matches(read_model: ReadModelStore, population: Population) -> None:
    """Every agent's documents equal what its aggregate, loaded back from the log, holds."""
    for agent_id in population.agents:
        loaded = await population.repository.load(agent_id)
        dto = await read_model.get_agent(agent_id)
        assert dto is not None
        views = await read_model.list_sessions(agent_id, limit=1000)
        assert_matches_state(dto, {v.session_id: v for v in views}, loaded.agent.state)
    for owner in OWNERS:
        listed = {a.id for a in await read_model.list_agents(owner, include_archived=True)}
        owned = {a.id for a in population.agents.values() if a.state.owner_user_id == owner}
        assert owned <= listed


async def snapshot(read_model: ReadModelStore, agent_ids: list[str]) -> dict[str, object]:
    """Every document of the given agents, for comparing two read models."""
    documents: dict[str, object] = {}
    for agent_id in agent_ids:
        documents[agent_id] = await read_model.get_agent(agent_id)
        for view in await read_model.list_sessions(agent_id, limit=1000):
            documents[view.session_id] = view
    return documents


async def test_catch_up_projects_every_agent(
    event_store: EventStore, read_model: ReadModelStore
) -> None:
    population = await populated(event_store, seed=1, agents=8, steps=300)
    projector = Projector(event_store, read_model, batch_size=50)
    last = await event_store.last_position()
    assert await projector.lag() == last
    assert await projector.catch_up() == last
    assert await read_model.checkpoint() == last
    assert await projector.lag() == 0
    await assert_read_model_matches(read_model, population)


async def test_run_follows_new_events_live(
    event_store: EventStore, read_model: ReadModelStore
) -> None:
    population = await populated(event_store, seed=2, agents=4, steps=60)
    task = asyncio.create_task(Projector(event_store, read_model).run())
    try:
        for _ in range(3):
            assert await read_model.wait_for_position(await event_store.last_position(), 5)
            await assert_read_model_matches(read_model, population)
            await population.advance(25)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.mark.parametrize("store_kind", ["sqlite", "mongomock"])
async def test_a_projector_stopped_anywhere_converges_without_double_counting(
    event_store: EventStore, tmp_path: Path, store_kind: str
) -> None:
    rng = random.Random(42)
    population = await populated(event_store, seed=3, agents=10, steps=250)
    if store_kind == "sqlite":
        read_model = await open_read_model(f"sqlite:///{tmp_path / 'crashing.db'}")
    else:
        database = AsyncMongomockDatabase(mongomock.MongoClient()["agenthost"])
        read_model = await MongoReadModel.attach(database)
    stopped_mid_stream = 0
    for _ in range(8):
        projector = Projector(event_store, read_model, batch_size=rng.choice([1, 3, 7, 40]))
        task = asyncio.create_task(projector.run())
        writing = asyncio.create_task(population.advance(rng.randint(0, 30)))
        last = await event_store.last_position()
        checkpoint = await read_model.checkpoint()
        if rng.random() < 0.7 and checkpoint < last:  # stop after some progress...
            await read_model.wait_for_position(rng.randint(checkpoint + 1, last), 10)
        else:  # ...or almost at once
            await asyncio.sleep(rng.uniform(0, 0.003))
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await writing
        if 0 < await read_model.checkpoint() < await event_store.last_position():
            stopped_mid_stream += 1
    assert stopped_mid_stream >= 3

    final = await Projector(event_store, read_model).catch_up()
    assert final == await event_store.last_position()
    await assert_read_model_matches(read_model, population)  # metrics exact: nothing twice

    fresh = await open_read_model(f"sqlite:///{tmp_path / 'fresh.db'}")
    assert await Projector(event_store, fresh).rebuild() == final
    ids = list(population.agents)
    assert await snapshot(read_model, ids) == await snapshot(fresh, ids)
    await fresh.close()
    await read_model.close()


async def test_rebuild_reproduces_the_same_documents(
    event_store: EventStore, read_model: ReadModelStore
) -> None:
    population = await populated(event_store, seed=4, agents=5, steps=120)
    projector = Projector(event_store, read_model, batch_size=17)
    checkpoint = await projector.catch_up()
    before = await snapshot(read_model, list(population.agents))
    assert await projector.rebuild() == checkpoint
    assert await snapshot(read_model, list(population.agents)) == before


async def test_events_of_other_aggregates_only_move_the_checkpoint(
    event_store: EventStore, read_model: ReadModelStore
) -> None:
    await populated(event_store, seed=5, agents=1, steps=3)
    foreign = NewEvent(type="user.registered.v1", data={"user_id": "u-1"}, subject="u-1")
    await event_store.append("user-u-1", [foreign], expected_version=0)
    projector = Projector(event_store, read_model)
    assert await projector.catch_up() == await event_store.last_position()
    assert await read_model.get_agent("u-1") is None


async def test_an_undecodable_event_stops_the_projector_loudly(
    event_store: EventStore, read_model: ReadModelStore
) -> None:
    await populated(event_store, seed=6, agents=1, steps=3)
    good = await event_store.last_position()
    broken = NewEvent(type="agent.created.v1", data={"agent_id": "x"}, subject="x", id=uuid4())
    await event_store.append("agent-x", [broken], expected_version=0)
    projector = Projector(event_store, read_model, batch_size=1)
    with pytest.raises(PoisonEvent, match=str(broken.id)) as poisoned:
        await projector.catch_up()
    assert isinstance(poisoned.value.__cause__, pydantic.ValidationError)
    assert poisoned.value.position == await event_store.last_position()
    assert await read_model.checkpoint() == good
    with pytest.raises(PoisonEvent):  # and it stays stopped there, never skipping
        await asyncio.wait_for(projector.run(), timeout=5)
    assert await read_model.checkpoint() == good
