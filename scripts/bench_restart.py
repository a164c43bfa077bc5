"""How long a command sent to a just-killed host waits, on an otherwise idle local Ray.

    python -m scripts.bench_restart [--kills 10]

SIGKILLs the host of one agent, then sends a command at once, as a replica does
(``AgentRuntime.handle``), and times its answer: Ray's restart of the actor (a new worker
process, the host's imports and constructor) plus however long the caller takes to notice.
The fault soak (``scripts/soak.py``) measures the same under load; this is the floor without
it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time
from pathlib import Path
from tempfile import TemporaryDirectory
from uuid import uuid4

import ray
from rich.console import Console

from actors.rollout import roll_out
from actors.runtime import AgentRuntime
from actors.settings import Settings
from domain.commands import GetOrCreateAgent, RecordMessages, StartSession
from domain.enums import AgentType
from domain.execution_state import LlmMessage
from scripts.bench_report import Percentiles


async def kills(settings: Settings, count: int) -> list[float]:
    runtime = AgentRuntime(settings)
    agent_id = (await runtime.handle(GetOrCreateAgent.for_user("u", AgentType.TUTOR))).agent_id
    await runtime.handle(StartSession(agent_id=agent_id))
    waited = []
    for n in range(count):
        os.kill((await runtime.host_info(agent_id)).pid, signal.SIGKILL)
        killed = time.monotonic()
        message = LlmMessage(role="user", content=f"m{n}")
        await runtime.handle(RecordMessages(agent_id=agent_id, messages=(message,)))
        waited.append(time.monotonic() - killed)
        await asyncio.sleep(1.0)  # let the restarted host settle before the next kill
    return waited


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10)
    args = parser.parse_args()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with TemporaryDirectory() as tmp:
            settings = Settings(
                event_store_url=f"sqlite:///{Path(tmp) / 'events.db'}",
                read_model_url=f"sqlite:///{Path(tmp) / 'read_model.db'}",
                ray_namespace=f"bench-restart-{uuid4().hex[:8]}",
                hosts=1,
            )
            roll_out(settings)
            waited = asyncio.run(kills(settings, args.kills))
    finally:
        ray.shutdown()
    p = Percentiles.of(waited)
    Console().print(
        f"kill -> answered, {len(waited)} kills: p50 {p.p50:.2f} s, p99 {p.p99:.2f} s, "
        f"max {max(waited):.2f} s"
    )


if __name__ == "__main__":
    main()
