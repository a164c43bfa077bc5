"""Scenario run in its own process (it needs its own multi-node Ray cluster).

    python -m tests.integration.scenarios.node_failover WORKDIR

A host actor lives on one of two worker nodes; commands flow; its node is removed mid-load.
Prints one JSON line with what it observed; tests/integration/test_node_failover.py asserts.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import ray
from ray.cluster_utils import Cluster

from actors.agent_host import AgentHost, HostInfo
from actors.placement import host_name
from actors.runtime import AgentRuntime, host_config, host_options
from actors.settings import Settings
from application.use_cases import ReadAgentState
from domain.agent import Agent
from domain.commands import GetOrCreateAgent, RecordMessages, StartSession
from domain.enums import AgentType
from domain.execution_state import LlmMessage
from domain.ids import stream_name
from eventstore.codec import from_envelope
from eventstore.factory import open_event_store

HOST_RESOURCE = "agent_host"


def message(agent_id: str, n: int) -> RecordMessages:
    return RecordMessages(agent_id=agent_id, messages=(LlmMessage(role="user", content=f"m{n}"),))


async def scenario(settings: Settings, remove_node: Callable[[str], None]) -> dict[str, object]:
    # The host may only run on worker nodes (they alone offer HOST_RESOURCE), so wherever it
    # lands, removing that node leaves another worker for it to restart on.
    options = host_options(settings, host_name(settings.generation, 0))
    options["resources"] = {HOST_RESOURCE: 0.01}
    AgentHost.options(**options).remote(  # type: ignore[attr-defined]
        host_config(settings), settings.ray_namespace, settings.generation
    )

    runtime = AgentRuntime(settings)
    agent_id = (await runtime.handle(GetOrCreateAgent.for_user("u", AgentType.TUTOR))).agent_id
    await runtime.handle(StartSession(agent_id=agent_id))
    before = await runtime.host_info(agent_id)
    doomed_node = before.node_id

    # Four callers keep commands in flight until the host answers from another node.
    acknowledged: list[str] = []
    moved = asyncio.Event()
    warmed_up = asyncio.Event()
    numbers = itertools.count()

    async def caller() -> None:
        while not moved.is_set():
            command = message(agent_id, next(numbers))
            await runtime.handle(command)
            acknowledged.append(command.command_id)
            if len(acknowledged) >= 100:
                warmed_up.set()

    callers = [asyncio.create_task(caller()) for _ in range(4)]
    await warmed_up.wait()
    remove_node(doomed_node)
    after = await _wait_for_move(runtime, agent_id, doomed_node)
    moved.set()
    await asyncio.gather(*callers)
    for _ in range(50):  # and the agent keeps serving from its new node
        command = message(agent_id, next(numbers))
        await runtime.handle(command)
        acknowledged.append(command.command_id)

    store = await open_event_store(settings.event_store_url)
    recorded = await store.read(stream_name(agent_id))
    await store.close()
    agent = Agent.replay(from_envelope(r) for r in recorded)
    texts = Counter(m.content for m in agent.state.active_session.transcript)  # type: ignore[union-attr]
    served = await runtime.handle(ReadAgentState(agent_id=agent_id))
    return {
        "node_before": before.node_id,
        "node_after": after.node_id,
        "removed_node": doomed_node,
        "acknowledged": len(acknowledged),
        "stored_messages": sum(texts.values()),
        "distinct_messages": len(texts),
        "versions_contiguous": [r.version for r in recorded] == list(range(1, len(recorded) + 1)),
        "state_equals_replay": served == agent.state,
    }


async def _wait_for_move(
    runtime: AgentRuntime, agent_id: str, old_node: str, timeout_s: float = 90.0
) -> HostInfo:
    """The host's info once it runs on another node (the runtime retries while it restarts)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        info = await runtime.host_info(agent_id)
        if info.node_id != old_node:
            return info
        await asyncio.sleep(0.1)
    raise TimeoutError("the host never restarted on another node")


def main(workdir: Path) -> None:
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    workers = {}
    for _ in range(2):
        node = cluster.add_node(num_cpus=1, resources={HOST_RESOURCE: 1})
        workers[node.node_id] = node
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, logging_level="ERROR", log_to_driver=False)
    settings = Settings(
        event_store_url=f"sqlite:///{workdir / 'events.db'}",
        ray_namespace="failover",
        hosts=1,
    )
    try:
        result = asyncio.run(
            scenario(settings, lambda node_id: cluster.remove_node(workers[node_id], False))
        )
    finally:
        ray.shutdown()
        cluster.shutdown()
    print(json.dumps(result))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
