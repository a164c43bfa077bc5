"""The write path on a real local Ray instance: hosts, placements, crashes, exactly-once."""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from uuid import uuid4

import pytest
import ray

from actors.runtime import AgentRuntime
from actors.settings import Settings
from application.use_cases import ReadAgentState
from domain.agent import Agent
from domain.commands import (
    CompleteSession,
    GetOrCreateAgent,
    RecordMessages,
    StartSession,
    SubmitResponse,
    SuspendExecution,
)
from domain.enums import AgentType
from domain.errors import SessionAlreadyActive
from domain.execution_state import ExecutionState, LlmMessage, PendingToolCall
from domain.ids import agent_id_for, stream_name
from domain.session import ClientAction, ClientResponse
from eventstore.codec import from_envelope
from eventstore.factory import open_event_store
from eventstore.port import EventStore

from .conftest import kill_namespace, make_settings


@pytest.fixture(params=["sharded", "dedicated"])
def placement_settings(
    request: pytest.FixtureRequest, ray_instance: None, tmp_path: Path
) -> Iterator[Settings]:
    settings = make_settings(tmp_path, placement=request.param)
    yield settings
    kill_namespace(settings.ray_namespace)


@pytest.fixture
async def store(ray_settings: Settings) -> AsyncIterator[EventStore]:
    opened = await open_event_store(ray_settings.event_store_url)
    yield opened
    await opened.close()


def message(agent_id: str, text: str) -> RecordMessages:
    return RecordMessages(agent_id=agent_id, messages=(LlmMessage(role="assistant", content=text),))


async def replay(store: EventStore, agent_id: str) -> Agent:
    return Agent.replay(from_envelope(r) for r in await store.read(stream_name(agent_id)))


async def new_agent_with_session(runtime: AgentRuntime, user: str = "user-1") -> str:
    created = await runtime.handle(GetOrCreateAgent.for_user(user, AgentType.TUTOR))
    await runtime.handle(StartSession(agent_id=created.agent_id))
    return created.agent_id


async def test_full_lifecycle_in_both_placements(placement_settings: Settings) -> None:
    runtime = AgentRuntime(placement_settings)
    agent_id = agent_id_for("user-1", AgentType.TUTOR)
    created = await runtime.handle(GetOrCreateAgent.for_user("user-1", AgentType.TUTOR))
    assert created.agent_id == agent_id
    start = StartSession(agent_id=agent_id)
    started = await runtime.handle(start)
    assert started.session is not None
    with pytest.raises(SessionAlreadyActive):
        await runtime.handle(StartSession(agent_id=agent_id))

    call = "call-1"
    execution = ExecutionState(
        conversation_snapshot=(LlmMessage(role="user", content="quiz me"),),
        pending_tool_call=PendingToolCall(call_id=call, tool_name="present_choices"),
    )
    widget = ClientAction(
        tool_call_id=call,
        tool_name="present_choices",
        widget_type="multiple_choice",
        props={"prompt": "2+2?", "options": ["3", "4"]},
    )
    await runtime.handle(
        SuspendExecution(agent_id=agent_id, execution_state=execution, action=widget)
    )
    state = await runtime.handle(ReadAgentState(agent_id=agent_id))
    assert state is not None
    assert state.execution_state == execution

    answer = ClientResponse(tool_call_id=call, response={"selection": "4", "index": 1})
    await runtime.handle(
        SubmitResponse(agent_id=agent_id, response=answer, evaluation={"correct": True})
    )
    done = await runtime.handle(CompleteSession(agent_id=agent_id, summary={"score": 1.0}))
    assert done.session is not None
    assert done.session.summary == {"score": 1.0}

    retried = await runtime.handle(start)
    assert retried.duplicate
    assert retried.version == started.version

    state = await runtime.handle(ReadAgentState(agent_id=agent_id))
    assert state is not None
    assert state.active_session is None
    assert [s.session_id for s in state.session_history] == [start.session_id]
    assert state.successful_completions == 1
    store = await open_event_store(placement_settings.event_store_url)
    try:
        assert (await replay(store, agent_id)).state == state
    finally:
        await store.close()


@ray.remote(num_cpus=0)
def send_commands(settings: Settings, commands: list[RecordMessages]) -> list[int]:
    """Another caller process, with its own runtime client."""

    async def send() -> list[int]:
        runtime = AgentRuntime(settings)
        results = await asyncio.gather(*(runtime.handle(c) for c in commands))
        return [r.version for r in results]

    return asyncio.run(send())


async def test_1000_concurrent_commands_on_one_agent_are_serialised(
    ray_settings: Settings, store: EventStore
) -> None:
    runtime = AgentRuntime(ray_settings)
    agent_id = await new_agent_with_session(runtime)
    commands = [message(agent_id, f"m{n}") for n in range(1000)]
    # Half from this process, half from four other caller processes, all at once.
    remote = [send_commands.remote(ray_settings, commands[n::8]) for n in range(4)]
    local = [c for n in range(4, 8) for c in commands[n::8]]
    local_versions = await asyncio.gather(*(runtime.handle(c) for c in local))
    remote_versions = [v for batch in await asyncio.gather(*remote) for v in batch]

    acknowledged = sorted([r.version for r in local_versions] + remote_versions)
    assert acknowledged == list(range(3, 1003))  # each command its own version
    recorded = await store.read(stream_name(agent_id))
    assert [r.version for r in recorded] == list(range(1, 1003))
    agent = await replay(store, agent_id)
    texts = Counter(m.content for m in agent.state.active_session.transcript)  # type: ignore[union-attr]
    assert texts == Counter(f"m{n}" for n in range(1000))


async def test_a_call_to_a_host_just_killed_waits_for_its_restart_instead_of_failing(
    ray_settings: Settings,
) -> None:
    # Given an agent's host, SIGKILLed
    runtime = AgentRuntime(ray_settings)
    agent_id = await new_agent_with_session(runtime, user=f"user-{uuid4().hex[:6]}")
    host = runtime.host_for(agent_id)
    killed = (await host.info.remote()).pid
    os.kill(killed, signal.SIGKILL)

    # When a command is sent on the raw handle, with no retry of the caller's own
    reply = await host.handle.remote(message(agent_id, "after the kill"))

    # Then Ray held it until the restarted host took it (no actor error to retry after Ray's
    # unavailability timeout), and the restarted host is a new process
    assert not reply.duplicate
    assert (await host.info.remote()).pid != killed


@pytest.mark.parametrize("kill", ["ray.kill", "SIGKILL"])
async def test_killing_the_host_mid_load_loses_and_repeats_nothing(
    ray_settings: Settings, store: EventStore, kill: str
) -> None:
    runtime = AgentRuntime(ray_settings)
    agent_id = await new_agent_with_session(runtime, user=f"user-{uuid4().hex[:6]}")
    commands = [message(agent_id, f"m{n}") for n in range(300)]
    in_flight = [asyncio.create_task(runtime.handle(c)) for c in commands]
    for acknowledged, finished in enumerate(asyncio.as_completed(in_flight), start=1):
        await finished
        if acknowledged == 30:  # kill while the other 270 are queued or running
            break

    host = runtime.host_for(agent_id)
    if kill == "ray.kill":
        ray.kill(host, no_restart=False)
    else:
        info = await host.info.remote()
        os.kill(info.pid, signal.SIGKILL)

    results = await asyncio.gather(*in_flight)  # callers retry through the restart
    assert len(results) == 300
    recorded = await store.read(stream_name(agent_id))
    assert [r.version for r in recorded] == list(range(1, len(recorded) + 1))
    agent = await replay(store, agent_id)
    texts = Counter(m.content for m in agent.state.active_session.transcript)  # type: ignore[union-attr]
    assert texts == Counter(f"m{n}" for n in range(300))  # every ack stored, exactly once
    # the restarted host = replay
    assert await runtime.handle(ReadAgentState(agent_id=agent_id)) == agent.state

    # Clients that never saw their answers retry everything: nothing acts twice.
    retried = await asyncio.gather(*(runtime.handle(c) for c in commands))
    assert all(r.duplicate for r in retried)
    assert sorted(r.version for r in retried) == sorted(r.version for r in results)
    assert len(await store.read(stream_name(agent_id))) == len(recorded)


async def test_idle_activations_are_passivated_and_rehydrate(
    ray_instance: None, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, hosts=1, idle_timeout_s=0.3, max_activations=3)
    try:
        runtime = AgentRuntime(settings)
        agents = [await new_agent_with_session(runtime, user=f"u{n}") for n in range(6)]
        (host,) = runtime.sharded_hosts()
        assert (await host.info.remote()).activations <= 3  # LRU cap
        await asyncio.sleep(1.0)
        assert (await host.info.remote()).activations == 0  # idle timeout
        result = await runtime.handle(message(agents[0], "after passivation"))
        assert result.version == 3
        assert (await host.info.remote()).agent_ids == (agents[0],)
    finally:
        kill_namespace(settings.ray_namespace)
