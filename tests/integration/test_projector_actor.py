"""The detached projector actor on real Ray: killed mid-stream, the read model still converges."""

from __future__ import annotations

import asyncio
import os
import random
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import pytest
import ray

from actors.projector_actor import ProjectionStatus, ProjectorClient
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
from tests.postgres_support import POSTGRES_URL, drop_schema, require_postgres
from tests.projection_support import assert_matches_state

from .conftest import kill_namespace, make_settings

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
    status = await stopped_status(projector)
    assert status.stopped_by == "poison_event"
    assert (status.stopped_at, status.stopped_event_type) == (good + 1, "agent.created.v1")
    assert status.checkpoint == good  # never skipped
    with pytest.raises(RuntimeError, match="the projector stopped"):
        await projector.wait_for_position(good + 1, 1.0)


async def stopped_status(projector: ProjectorClient) -> ProjectionStatus:
    """The actor's status once following has stopped (it fails the test if it does not)."""
    status = await projector.status()
    for _ in range(200):
        if status.stopped_by is not None:
            return status
        await asyncio.sleep(0.05)
        status = await projector.status()
    raise AssertionError(f"the projector did not stop: {status}")


@pytest.mark.postgres
async def test_a_nul_the_postgres_read_model_refuses_stops_the_actor_instead_of_looping(
    ray_instance: None, tmp_path: Path
) -> None:
    """Before the read models told refused data from outages, this batch was retried forever
    while every tenant's reads went stale; now the actor stops at the event, visibly."""
    require_postgres()
    schema = f"test_{uuid4().hex[:12]}"
    settings = make_settings(tmp_path, read_model_url=f"{POSTGRES_URL}?schema={schema}")
    store = await open_event_store(settings.event_store_url)
    try:
        runtime = AgentRuntime(settings)
        created = await runtime.handle(GetOrCreateAgent.for_user("p", AgentType.TUTOR))
        stream = f"agent-{created.agent_id}"
        nul = NewEvent(
            type="agent.preferences.updated.v1",
            subject=created.agent_id,
            data={
                "agent_id": created.agent_id,
                "occurred_at": "2026-11-25T09:00:00+00:00",
                "preferences": {"note": "secret\x00"},
            },
        )
        at = (await store.append(stream, [nul], expected_version=created.version)).position
        other = await runtime.handle(GetOrCreateAgent.for_user("q", AgentType.TUTOR))

        status = await stopped_status(ProjectorClient(settings))
        assert (status.stopped_by, status.stopped_at) == ("poison_event", at)
        assert status.checkpoint == at - 1
        assert status.last_position == other.position  # the later write waits, unapplied
        assert "secret" not in status.model_dump_json()
    finally:
        kill_namespace(settings.ray_namespace)
        await store.close()
        await drop_schema(schema)
