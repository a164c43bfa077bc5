"""Redeploys on a real local Ray: a new generation of actors replaces the old, never beside it.

Detached actors keep the settings they were created with, so a redeploy that changes the host
count must retire the old hosts, and an old replica still running must neither reach them nor
bring them back. Checked through the hosts themselves (``info()``: the agents each one holds).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray
from ray.util import list_named_actors

from actors.agent_host import HostInfo
from actors.placement import (
    HOST_NAME_PREFIX,
    generation_of,
    host_index,
    host_name,
    projector_name,
    sweeper_name,
)
from actors.projector_actor import ProjectorClient
from actors.rollout import DeploymentRetired, roll_out
from actors.runtime import AgentRuntime
from actors.session_sweeper import sweeper_handle
from actors.settings import Settings
from application.dedup_window import command_event_ids
from domain.commands import GetOrCreateAgent, RecordMessages, StartSession
from domain.enums import AgentType
from domain.execution_state import LlmMessage
from domain.ids import stream_name
from eventstore.factory import open_event_store

from .conftest import kill_namespace, make_settings

AGENTS = 12


@pytest.fixture
def two_generations(ray_instance: None, tmp_path: Path) -> Iterator[tuple[Settings, Settings]]:
    old = make_settings(tmp_path, hosts=2)
    new = old.model_copy(update={"hosts": 3})
    assert old.generation != new.generation
    yield old, new
    kill_namespace(old.ray_namespace)


def message(agent_id: str, n: int) -> RecordMessages:
    return RecordMessages(agent_id=agent_id, messages=(LlmMessage(role="user", content=f"m{n}"),))


async def hosts_holding(namespace: str) -> dict[str, HostInfo]:
    """Every live host's ``info()``, by name, from one listing of the named actors."""
    names = [
        entry["name"]
        for entry in list_named_actors(all_namespaces=True)
        if entry["namespace"] == namespace and entry["name"].startswith(HOST_NAME_PREFIX)
    ]
    held: dict[str, HostInfo] = {}
    for name in names:
        with contextlib.suppress(ValueError, ray.exceptions.RayActorError, TimeoutError):
            handle: Any = ray.get_actor(name, namespace=namespace)
            held[name] = await asyncio.wait_for(handle.info.remote(), 5)
    return held


async def test_a_redeploy_with_more_hosts_never_leaves_an_agent_on_two_hosts(
    two_generations: tuple[Settings, Settings],
) -> None:
    # Given agents with sessions, written through the first deployment (two hosts)
    old, new = two_generations
    namespace = old.ray_namespace
    await asyncio.to_thread(roll_out, old)
    old_replica, new_replica = AgentRuntime(old), AgentRuntime(new)
    agent_ids = []
    for n in range(AGENTS):
        created = await old_replica.handle(GetOrCreateAgent.for_user(f"u{n}", AgentType.TUTOR))
        await old_replica.handle(StartSession(agent_id=created.agent_id))
        agent_ids.append(created.agent_id)
    acknowledged: Counter[str] = Counter()
    retired_answers: list[float] = []
    numbers = itertools.count()
    rolled_out = asyncio.Event()
    stop = asyncio.Event()

    async def writer(runtime: AgentRuntime) -> None:
        """A replica's traffic: an old one keeps sending after the rollout, as Serve's
        rolling update lets it; each refusal must be a quick retryable answer."""
        while not stop.is_set():
            command = message(agent_ids[next(numbers) % AGENTS], next(numbers))
            started = time.monotonic()
            try:
                await runtime.handle(command)
            except DeploymentRetired:
                retired_answers.append(time.monotonic() - started)
                await asyncio.sleep(0.02)
                continue
            (event_id,) = command_event_ids(command.command_id, 1)
            acknowledged[str(event_id)] += 1

    overlaps: list[dict[str, list[str]]] = []

    async def sampler() -> None:
        while not stop.is_set():
            holders: dict[str, list[str]] = {}
            for name, info in (await hosts_holding(namespace)).items():
                for agent_id in info.agent_ids:
                    holders.setdefault(agent_id, []).append(name)
            if shared := {a: names for a, names in holders.items() if len(names) > 1}:
                overlaps.append(shared)
            await asyncio.sleep(0.05)

    tasks = [asyncio.create_task(writer(old_replica)) for _ in range(4)]
    tasks.append(asyncio.create_task(sampler()))
    await asyncio.sleep(1.5)

    # When the second deployment (three hosts) rolls out while the old replica keeps writing
    retired = await asyncio.to_thread(roll_out, new)
    rolled_out.set()
    tasks += [asyncio.create_task(writer(new_replica)) for _ in range(4)]
    await asyncio.sleep(3)
    stop.set()
    await asyncio.gather(*tasks)

    # Then the old hosts were retired, and no sample ever found an agent on two hosts
    assert sorted(retired) == [host_name(old.generation, i) for i in range(2)]
    assert overlaps == []
    # and the old replica was answered "retired" at once, never by an old host brought back
    assert retired_answers, "the old replica sent nothing after the rollout"
    assert max(retired_answers) < 5.0
    held = await hosts_holding(namespace)
    assert {generation_of(name) for name in held} == {new.generation}
    # and each agent the new hosts hold is on the one host the new count assigns it
    for name, info in held.items():
        for agent_id in info.agent_ids:
            assert name == host_name(new.generation, host_index(agent_id, new.hosts))
    # and every acknowledged write is stored exactly once
    store = await open_event_store(old.event_store_url)
    try:
        stored: Counter[str] = Counter()
        for agent_id in agent_ids:
            events = await store.read(stream_name(agent_id))
            stored.update(str(event.id) for event in events)
    finally:
        await store.close()
    assert acknowledged
    assert all(stored[event_id] == 1 for event_id in acknowledged)


async def test_an_old_replica_with_no_host_yet_cannot_start_one_after_a_rollout(
    two_generations: tuple[Settings, Settings],
) -> None:
    # Given the second deployment rolled out
    old, new = two_generations
    await asyncio.to_thread(roll_out, new)
    # When a replica of the first one, which has reached no host yet, gets a request
    with pytest.raises(DeploymentRetired):
        await AgentRuntime(old).handle(GetOrCreateAgent.for_user("late", AgentType.TUTOR))
    # Then no host of the old generation runs: the one it asked for refused to start
    assert {generation_of(name) for name in await hosts_holding(old.ray_namespace)} <= {
        new.generation
    }


async def test_a_rollout_retires_the_old_projector_and_sweeper_and_old_callers_cannot_restart_them(
    two_generations: tuple[Settings, Settings],
) -> None:
    # Given the first deployment's projector and sweeper running
    old, new = two_generations
    await asyncio.to_thread(roll_out, old)
    await ProjectorClient(old).status()
    await sweeper_handle(old).sweep_once.remote()

    # When the second deployment rolls out
    retired = await asyncio.to_thread(roll_out, new)

    # Then both were retired with the old hosts
    assert {projector_name(old.generation), sweeper_name(old.generation)} <= set(retired)
    # and an old replica's first call neither starts the old projector again nor waits
    with pytest.raises(DeploymentRetired):
        await ProjectorClient(old).status()
    # and an old deployment starting its sweeper gets one that refused to run
    with pytest.raises(ray.exceptions.RayActorError):
        await sweeper_handle(old).sweep_once.remote()
    running = {entry["name"] for entry in list_named_actors(all_namespaces=True)}
    assert not running & {projector_name(old.generation), sweeper_name(old.generation)}
    # and the new generation's projector follows the writes made through the new hosts
    created = await AgentRuntime(new).handle(GetOrCreateAgent.for_user("after", AgentType.TUTOR))
    assert await ProjectorClient(new).wait_for_position(created.position, 30.0)
