"""Dedicated placement (one detached actor per agent) spends an actor only on an agent that
exists and that the caller may see, and lets the actor go for good once it idles."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from ray.util import list_named_actors

from actors.placement import dedicated_name
from actors.rollout import REGISTRY_NAME
from actors.runtime import AgentRuntime
from actors.settings import Settings
from application.bootstrap import HostConfig, build_application
from application.service import AgentApplication
from application.use_case import UseCase
from application.use_cases import (
    ReadAgentState,
    ReadCurrentSession,
    ReadLiveEvents,
    StartSession,
)
from domain.access import Caller
from domain.commands import Command, GetOrCreateAgent, UpdatePreferences
from domain.enums import AgentType
from domain.errors import AgentNotFound
from domain.ids import agent_id_for
from domain.state import AgentState

from .conftest import kill_namespace, make_settings

IDLE_S = 1.0
"""The idle timeout of the test that waits for an actor to leave."""


class Linger(UseCase[AgentState | None]):
    """Reads the agent, then holds its request open for longer than the idle timeout."""

    hold_s: float

    async def run(self, app: AgentApplication) -> AgentState | None:
        state = await app.agent_state(self.agent_id)
        await asyncio.sleep(self.hold_s)
        return state


@pytest.fixture
def dedicated(ray_instance: None, tmp_path: Path) -> Iterator[Settings]:
    """Dedicated placement whose actors do not idle out while a test runs."""
    settings = make_settings(tmp_path, placement="dedicated", idle_timeout_s=300.0)
    yield settings
    kill_namespace(settings.ray_namespace)


@pytest.fixture
def idling(ray_instance: None, tmp_path: Path) -> Iterator[Settings]:
    """Dedicated placement whose actors leave after ``IDLE_S`` without a request."""
    settings = make_settings(tmp_path, placement="dedicated", idle_timeout_s=IDLE_S)
    yield settings
    kill_namespace(settings.ray_namespace)


@contextlib.asynccontextmanager
async def runtimes(settings: Settings, count: int = 1) -> AsyncIterator[list[AgentRuntime]]:
    """``count`` runtimes (as many caller processes would hold), closed afterwards."""
    opened = [AgentRuntime(settings) for _ in range(count)]
    try:
        yield opened
    finally:
        for runtime in opened:
            await runtime.close()


def actors_in(namespace: str) -> list[str]:
    """The namespace's agent hosts (not the deployment registry the hosts consult)."""
    listed = list_named_actors(all_namespaces=True)
    return sorted(
        entry["name"]
        for entry in listed
        if entry["namespace"] == namespace and entry["name"] != REGISTRY_NAME
    )


async def until_no_actors(namespace: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while actors_in(namespace):
        assert time.monotonic() < deadline, f"still running: {actors_in(namespace)}"
        await asyncio.sleep(0.2)


async def created_without_an_actor(settings: Settings, owner: str) -> str:
    """The owner's agent, written to the log by an application in this process."""
    app = build_application(HostConfig(event_store_url=settings.event_store_url))
    try:
        command = GetOrCreateAgent.for_user(owner, AgentType.TUTOR, caller=Caller(user_id=owner))
        return (await app.execute(command)).agent_id
    finally:
        await app.close()


def requests_for(agent_id: str, caller: Caller | None) -> list[UseCase[Any] | Command]:
    return [
        ReadAgentState(agent_id=agent_id, caller=caller),
        ReadCurrentSession(agent_id=agent_id, caller=caller),
        StartSession(agent_id=agent_id, caller=caller),
        UpdatePreferences(agent_id=agent_id, caller=caller, changes={"language": "fr"}),
    ]


@pytest.fixture
async def runtime(dedicated: Settings) -> AsyncIterator[AgentRuntime]:
    async with runtimes(dedicated) as (opened,):
        yield opened


async def test_no_actor_for_a_missing_agent_or_one_the_caller_may_not_see(
    dedicated: Settings, runtime: AgentRuntime
) -> None:
    namespace = dedicated.ray_namespace
    mallory = Caller(user_id="mallory")
    for agent_id in (str(uuid4()), str(uuid4())):
        for request in [*requests_for(agent_id, mallory), *requests_for(agent_id, None)]:
            with pytest.raises(AgentNotFound):
                await runtime.handle(request)
        with pytest.raises(AgentNotFound):
            await runtime.handle(ReadLiveEvents(agent_id=agent_id))
        with pytest.raises(AgentNotFound):
            await runtime.host_info(agent_id)
    assert actors_in(namespace) == []

    victim = f"victim-{uuid4().hex[:6]}"
    agent_id = await created_without_an_actor(dedicated, victim)
    for request in requests_for(agent_id, mallory):
        with pytest.raises(AgentNotFound):
            await runtime.handle(request)
    assert actors_in(namespace) == []

    # Mallory's own get-or-create may create (her agent, not the victim's).
    mine = await runtime.handle(
        GetOrCreateAgent.for_user("mallory", AgentType.TUTOR, caller=mallory)
    )
    assert mine.agent_id == agent_id_for("mallory", AgentType.TUTOR)
    assert actors_in(namespace) == [dedicated_name(dedicated.generation, mine.agent_id)]

    state = await runtime.handle(ReadAgentState(agent_id=agent_id, caller=Caller(user_id=victim)))
    assert state is not None
    assert state.owner_user_id == victim
    assert actors_in(namespace) == sorted(
        [
            dedicated_name(dedicated.generation, mine.agent_id),
            dedicated_name(dedicated.generation, agent_id),
        ]
    )
    admin = Caller(user_id="root", is_admin=True)
    assert await runtime.handle(ReadAgentState(agent_id=agent_id, caller=admin)) == state


@pytest.fixture
async def two_runtimes(idling: Settings) -> AsyncIterator[list[AgentRuntime]]:
    async with runtimes(idling, 2) as opened:
        yield opened


async def test_an_idle_actor_exits_and_the_next_request_recreates_it(
    idling: Settings, two_runtimes: list[AgentRuntime]
) -> None:
    runtime, other = two_runtimes
    namespace = idling.ray_namespace
    owner = Caller(user_id=f"owner-{uuid4().hex[:6]}")
    created = await runtime.handle(
        GetOrCreateAgent.for_user(owner.user_id, AgentType.TUTOR, caller=owner)
    )
    agent_id = created.agent_id
    await runtime.handle(StartSession(agent_id=agent_id, caller=owner, then_drive=False))
    before = await runtime.handle(ReadAgentState(agent_id=agent_id, caller=owner))
    assert before is not None
    assert before.active_session is not None
    first_pid = (await runtime.host_info(agent_id)).pid
    assert actors_in(namespace) == [dedicated_name(idling.generation, agent_id)]

    # A request held open past the idle timeout keeps its host (the same process answers
    # meanwhile) and is answered; the actor leaves only after it.
    held = asyncio.create_task(
        runtime.handle(Linger(agent_id=agent_id, caller=owner, hold_s=4 * IDLE_S))
    )
    await asyncio.sleep(2.5 * IDLE_S)
    assert (await runtime.host_info(agent_id)).pid == first_pid
    assert await held == before
    await until_no_actors(namespace)

    # The runtime still holds the old handle: a stranger's request neither reaches a host nor
    # brings the actor back.
    with pytest.raises(AgentNotFound):
        await runtime.handle(ReadAgentState(agent_id=agent_id, caller=Caller(user_id="mallory")))
    assert actors_in(namespace) == []

    after = await runtime.handle(ReadAgentState(agent_id=agent_id, caller=owner))
    assert after == before
    assert actors_in(namespace) == [dedicated_name(idling.generation, agent_id)]
    assert (await runtime.host_info(agent_id)).pid != first_pid

    # Another caller's runtime finds the live actor and uses it.
    assert await other.handle(ReadAgentState(agent_id=agent_id, caller=owner)) == before
    assert actors_in(namespace) == [dedicated_name(idling.generation, agent_id)]


async def test_the_application_is_idle_only_with_nothing_held_or_in_flight(
    tmp_path: Path,
) -> None:
    app = build_application(
        HostConfig(event_store_url=f"sqlite:///{tmp_path / 'events.db'}", idle_timeout_s=0.2)
    )
    signalled: list[float] = []
    app.when_idle(lambda: signalled.append(time.monotonic()))
    try:
        owner = Caller(user_id="owner")
        created = await app.handle(
            GetOrCreateAgent.for_user("owner", AgentType.TUTOR, caller=owner)
        )
        assert not app.is_idle(0.0)  # its activation is held
        lingering = asyncio.create_task(
            app.handle(Linger(agent_id=created.agent_id, caller=owner, hold_s=1.0))
        )
        await asyncio.sleep(0.8)
        assert app.agent_ids() == ()  # passivated while the request still runs...
        assert not app.is_idle(0.0)
        assert signalled == []  # ...which keeps the host
        await lingering
        done = time.monotonic()
        await asyncio.sleep(0.6)
        assert signalled
        assert signalled[0] - done >= 0.15  # not before the idle timeout has passed again
        assert app.is_idle(0.0)
    finally:
        await app.close()
