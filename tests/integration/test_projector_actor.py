"""The detached projector actor on real Ray: killed mid-stream, the read model still converges."""

from __future__ import annotations

import asyncio
import os
import random
import signal
from collections.abc import AsyncIterator

import pytest
import ray

from actors.projector_actor import ProjectorClient
from actors.runtime import AgentRuntime
from actors.settings import Settings
from application.agent_repository import AgentRepository
from application.use_cases import ReadAgentState
from domain.commands import (
    Command,
    CompleteSession,
    GetOrCreateAgent,
    RecordMessages,
    StartSession,
    TerminateSession,
)
from domain.enums import AgentType
from domain.execution_state import LlmMessage
from eventstore.factory import open_event_store
from eventstore.port import EventStore, NewEvent
from projections.factory import open_read_model
from tests.projection_support import assert_matches_state

AGENTS = 8


@pytest.fixture
async def store(ray_settings: Settings) -> AsyncIterator[EventStore]:
    opened = await open_event_store(ray_settings.event_store_url)
    yield opened
    await opened.close()


def next_command(agent_id: str, active: bool, rng: random.Random) -> Command:
    if not active:
        return StartSession(agent_id=agent_id)
    roll = rng.random()
    if roll < 0.1:
        return CompleteSession(agent_id=agent_id, summary={"score": rng.randint(0, 10)})
    if roll < 0.15:
        return TerminateSession(agent_id=agent_id)
    text = LlmMessage(role="user", content=f"answer {rng.randint(0, 99)}")
    return RecordMessages(agent_id=agent_id, messages=(text,))


class Workload:
    """Sessions started, talked in, completed and terminated on every agent, concurrently,
    from ``start`` until ``stop`` (or ``rounds`` commands per agent)."""

    def __init__(self, runtime: AgentRuntime, agent_ids: list[str], seed: int) -> None:
        self.runtime, self.agent_ids, self.rng = runtime, agent_ids, random.Random(seed)
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def run(self, rounds: int | None = None) -> None:
        states = await asyncio.gather(
            *(self.runtime.handle(ReadAgentState(agent_id=a)) for a in self.agent_ids)
        )
        await asyncio.gather(
            *(self._one_agent(s.id, s.active_session is not None, rounds) for s in states if s)
        )

    def start(self) -> None:
        self._task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        self._stopping.set()
        assert self._task is not None
        await self._task

    async def _one_agent(self, agent_id: str, active: bool, rounds: int | None) -> None:
        done = 0
        while not self._stopping.is_set() and (rounds is None or done < rounds):
            command = next_command(agent_id, active, self.rng)
            await self.runtime.handle(command)
            active = isinstance(command, StartSession | RecordMessages)
            done += 1


@pytest.mark.parametrize("kill", ["ray.kill", "SIGKILL"])
async def test_a_killed_projector_converges_with_exact_counts(
    ray_settings: Settings, store: EventStore, kill: str
) -> None:
    runtime = AgentRuntime(ray_settings)
    agent_ids = [
        (await runtime.handle(GetOrCreateAgent.for_user(f"u{n}", AgentType.TUTOR))).agent_id
        for n in range(AGENTS)
    ]
    projector = ProjectorClient(ray_settings)
    workload = Workload(runtime, agent_ids, seed=7)
    workload.start()

    for _ in range(2):  # kill it twice while events keep arriving
        before = await projector.status()
        assert await projector.wait_for_position(before.checkpoint + 1, 30.0)
        now = await projector.status()
        if kill == "ray.kill":
            ray.kill(projector.handle, no_restart=False)
        else:
            os.kill(now.pid, signal.SIGKILL)
    await workload.stop()

    last = await store.last_position()
    assert await projector.wait_for_position(last, 60.0)
    final = await projector.status()
    assert (final.checkpoint, final.lag) == (last, 0)

    read_model = await open_read_model(ray_settings.read_model_url)
    repository = AgentRepository(store)
    try:
        for agent_id in agent_ids:
            state = (await repository.load(agent_id)).agent.state
            dto = await read_model.get_agent(agent_id)
            assert dto is not None
            views = await read_model.list_sessions(agent_id, limit=1000)
            # counts and metrics exact: no event lost or applied twice across the kills
            assert_matches_state(dto, {v.session_id: v for v in views}, state)
    finally:
        await read_model.close()


async def test_rebuild_through_the_actor_reproduces_the_read_model(
    ray_settings: Settings, store: EventStore
) -> None:
    runtime = AgentRuntime(ray_settings)
    agent_ids = [
        (await runtime.handle(GetOrCreateAgent.for_user(f"r{n}", AgentType.THOUGHT))).agent_id
        for n in range(3)
    ]
    await Workload(runtime, agent_ids, seed=3).run(rounds=20)
    projector = ProjectorClient(ray_settings)
    last = await store.last_position()
    assert await projector.wait_for_position(last, 30.0)
    assert await projector.rebuild() == last
    await Workload(runtime, agent_ids, seed=4).run(rounds=10)  # and it follows live again
    assert await projector.wait_for_position(await store.last_position(), 30.0)


async def test_a_poison_event_stops_the_actor_visibly_at_its_position(
    ray_settings: Settings, store: EventStore
) -> None:
    runtime = AgentRuntime(ray_settings)
    await runtime.handle(GetOrCreateAgent.for_user("p", AgentType.TUTOR))
    good = await store.last_position()
    broken = NewEvent(type="agent.created.v1", data={"agent_id": "x"}, subject="x")
    await store.append("agent-x", [broken], expected_version=0)

    projector = ProjectorClient(ray_settings)
    status = await projector.status()
    for _ in range(100):  # until following has stopped at the broken event
        if status.stopped_by is not None:
            break
        await asyncio.sleep(0.05)
        status = await projector.status()
    assert status.stopped_by is not None
    assert str(broken.id) in status.stopped_by
    assert status.checkpoint == good  # never skipped
    with pytest.raises(RuntimeError, match="the projector stopped"):
        await projector.wait_for_position(good + 1, 1.0)
