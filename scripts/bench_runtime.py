"""Runtime benchmark: the write path through Ray actors, per placement, on the SQLite store.

    python -m scripts.bench_runtime [--commands 1000] [--agents 1000] [--memory-agents 10000]

Measures, for ``sharded`` and ``dedicated`` placement and for the same application run
in-process (an ``AgentApplication``, the baseline without Ray): warm command latency
(sequential, one agent), cold activation (first command to an agent not in memory; for
``dedicated`` this includes creating its actor process), throughput across many agents, and
memory: RSS growth of the sharded hosts for ``--memory-agents`` active agents (and for
``--full-window-agents`` whose dedup windows are full, the worst case), and RSS of one
dedicated actor (times the agent count: 10,000 processes do not fit on one machine). Writes
section ``bench_runtime`` of docs/reports/agent-perf.md.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory
from uuid import uuid4

import ray
from rich.console import Console
from rich.progress import Progress

from actors.agent_host import HostInfo
from actors.runtime import AgentRuntime, host_config
from actors.settings import Settings
from application.agent_repository import AgentRepository
from application.bootstrap import build_application
from application.dedup_window import DEDUP_WINDOW_SIZE
from application.use_case import UseCases
from application.use_cases import ReadAgentState
from domain.agent import Agent
from domain.commands import CreateAgent, RecordMessages, StartSession
from domain.enums import AgentType
from domain.execution_state import LlmMessage
from domain.ids import new_agent_id
from eventstore.factory import open_event_store
from scripts.bench_report import Percentiles, machine, write_section

MB = 1024 * 1024


def message(agent_id: str, n: int) -> RecordMessages:
    return RecordMessages(
        agent_id=agent_id, messages=(LlmMessage(role="assistant", content=f"message {n}"),)
    )


async def timed(call: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await call()
    return (time.perf_counter() - started) * 1000


async def create_agents(handler: UseCases, count: int, progress: Progress, label: str) -> list[str]:
    agents = [new_agent_id() for _ in range(count)]
    task = progress.add_task(f"{label}: creating {count} agents", total=count)

    async def create(agent_id: str) -> None:
        await handler.handle(
            CreateAgent(agent_id=agent_id, owner_user_id="bench", agent_type=AgentType.TUTOR)
        )
        await handler.handle(StartSession(agent_id=agent_id))
        progress.advance(task)

    await bounded(agents, create, 50)
    progress.remove_task(task)
    return agents


async def bounded(items: list[str], call: Callable[[str], Awaitable[None]], limit: int) -> None:
    gate = asyncio.Semaphore(limit)

    async def one(item: str) -> None:
        async with gate:
            await call(item)

    await asyncio.gather(*(one(item) for item in items))


async def measure(
    label: str, handler: UseCases, args: argparse.Namespace, progress: Progress
) -> dict[str, str]:
    rows: dict[str, str] = {}
    (warm_agent,) = await create_agents(handler, 1, progress, label)
    samples = []
    task = progress.add_task(f"{label}: warm latency", total=args.commands)
    for n in range(args.commands):
        samples.append(await timed(lambda n=n: handler.handle(message(warm_agent, n))))
        progress.advance(task)
    rows["command latency, warm agent (ms)"] = Percentiles.of(samples).cells()

    agents = await create_agents(handler, args.agents, progress, label)
    started = time.perf_counter()

    async def one_command(agent_id: str) -> None:
        await handler.handle(message(agent_id, 0))

    await bounded(agents, one_command, 200)
    elapsed = time.perf_counter() - started
    rows[f"throughput, {args.agents} agents (commands/s)"] = f"{args.agents / elapsed:.0f} | | | 1"
    return rows


async def cold_latency(
    handler: UseCases, agents: list[str], passivate: Callable[[], Awaitable[None]]
) -> str:
    await passivate()
    samples = [await timed(lambda a=a: handler.handle(message(a, 1))) for a in agents]
    return Percentiles.of(samples).cells()


async def bench_sharded(
    settings: Settings, args: argparse.Namespace, progress: Progress
) -> dict[str, str]:
    runtime = AgentRuntime(settings)
    hosts = runtime.sharded_hosts()

    async def infos() -> list[HostInfo]:
        return list(await asyncio.gather(*(h.info.remote() for h in hosts)))

    async def passivate() -> None:
        await asyncio.gather(*(h.passivate_idle.remote(0.0) for h in hosts))

    rows = await measure("sharded", runtime, args, progress)
    cold_agents = await create_agents(runtime, 200, progress, "sharded cold")
    rows["cold activation, first command (ms)"] = await cold_latency(
        runtime, cold_agents, passivate
    )

    await passivate()
    before = sum(i.rss_bytes for i in await infos())
    agents = await create_agents(runtime, args.memory_agents, progress, "sharded memory")
    after_infos = await infos()
    active = sum(i.activations for i in after_infos)
    grown = sum(i.rss_bytes for i in after_infos) - before
    rows[f"memory, {active} active agents"] = (
        f"{grown / MB:.0f} MB in {len(hosts)} hosts ({grown / max(active, 1) / 1024:.1f} KB "
        f"per agent; hosts total {sum(i.rss_bytes for i in after_infos) / MB:.0f} MB) | | | 1"
    )
    del agents
    await passivate()
    rows.update(await full_window_memory(settings, runtime, infos, args, progress))
    return rows


async def full_window_memory(
    settings: Settings,
    runtime: AgentRuntime,
    infos: Callable[[], Awaitable[list[HostInfo]]],
    args: argparse.Namespace,
    progress: Progress,
) -> dict[str, str]:
    """RSS per active agent whose dedup window is full (DEDUP_WINDOW_SIZE events or more in
    its stream): the worst case a host caps at ``max_activations``. The streams are written
    straight to the store (2,048 commands per agent through the hosts would take hours);
    each agent is then activated by one read. Preference updates: events that leave the
    state small, so the window is what is measured."""
    count, events = args.full_window_agents, DEDUP_WINDOW_SIZE + 1
    store = await open_event_store(settings.event_store_url)
    task = progress.add_task(f"full windows: writing {count} x {events} events", total=count)
    agents = []
    try:
        repository = AgentRepository(store)
        now = datetime.now(UTC)
        for _ in range(count):
            agent = Agent()
            agent.register(
                agent_id=new_agent_id(), owner_user_id="bench", agent_type=AgentType.TUTOR, now=now
            )
            for n in range(events - 1):
                agent.update_preferences({"bench_counter": n}, now=now)
            await repository.save(agent)
            agents.append(agent.id)
            progress.advance(task)
    finally:
        await store.close()
        progress.remove_task(task)
    before = sum(i.rss_bytes for i in await infos())
    await bounded(agents, lambda a: runtime.handle(ReadAgentState(agent_id=a)), 50)
    after = await infos()
    grown = sum(i.rss_bytes for i in after) - before
    per_agent = grown / max(count, 1)
    return {
        f"memory, {count} active agents with full dedup windows": (
            f"{grown / MB:.0f} MB ({per_agent / 1024:.1f} KB per agent; x 10,000 = "
            f"{per_agent * 10_000 / MB / 1024:.2f} GB, extrapolated) | | | 1"
        )
    }


async def bench_dedicated(
    settings: Settings, args: argparse.Namespace, progress: Progress
) -> dict[str, str]:
    runtime = AgentRuntime(settings)
    small = argparse.Namespace(**{**vars(args), "agents": args.dedicated_agents})
    rows = await measure("dedicated", runtime, small, progress)
    fresh = [new_agent_id() for _ in range(args.dedicated_cold)]
    samples = []
    for agent_id in fresh:  # a new agent = a new actor process
        command = CreateAgent(agent_id=agent_id, owner_user_id="bench", agent_type=AgentType.TUTOR)
        samples.append(await timed(lambda c=command: runtime.handle(c)))
    rows["cold activation incl. actor creation (ms)"] = Percentiles.of(samples).cells()
    info: HostInfo = await runtime.host_for(fresh[0]).info.remote()
    rows["memory, 10,000 active agents"] = (
        f"{info.rss_bytes / MB:.0f} MB per actor process x 10,000 = "
        f"{info.rss_bytes * 10_000 / MB / 1024:.0f} GB (extrapolated) | | | 1"
    )
    return rows


async def bench_in_process(
    settings: Settings, args: argparse.Namespace, progress: Progress
) -> dict[str, str]:
    app = build_application(host_config(settings))
    try:
        rows = await measure("in-process", app, args, progress)
        cold_agents = await create_agents(app, 200, progress, "in-process cold")

        async def passivate() -> None:
            app.passivate_idle(0.0)

        rows["cold activation, first command (ms)"] = await cold_latency(
            app, cold_agents, passivate
        )
        return rows
    finally:
        await app.close()


def settings_for(workdir: Path, placement: str) -> Settings:
    return Settings(
        event_store_url=f"sqlite:///{workdir / f'{placement}.db'}",
        placement=placement,  # type: ignore[arg-type]
        ray_namespace=f"bench-{uuid4().hex[:8]}",
        hosts=2,
    )


async def run(args: argparse.Namespace, console: Console) -> dict[str, dict[str, str]]:
    results: dict[str, dict[str, str]] = {}
    with TemporaryDirectory() as tmp, Progress(console=console, transient=True) as progress:
        workdir = Path(tmp)
        results["in-process (no Ray)"] = await bench_in_process(
            settings_for(workdir, "sharded"), args, progress
        )
        results["sharded (2 hosts)"] = await bench_sharded(
            settings_for(workdir, "sharded"), args, progress
        )
        results["dedicated"] = await bench_dedicated(
            settings_for(workdir, "dedicated"), args, progress
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=1000)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--memory-agents", type=int, default=10_000)
    parser.add_argument("--full-window-agents", type=int, default=1000)
    parser.add_argument("--dedicated-agents", type=int, default=20)
    parser.add_argument("--dedicated-cold", type=int, default=10)
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args()
    console = Console()
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    try:
        results = asyncio.run(run(args, console))
    finally:
        ray.shutdown()
    lines = ["| placement | measure | p50 | p95 | p99 | n |", "|---|---|---|---|---|---|"]
    for placement, rows in results.items():
        for measure_name, cells in rows.items():
            lines.append(f"| {placement} | {measure_name} | {cells} |")
            console.print(f"{placement:22} {measure_name:45} {cells}")
    command = (
        f"python -m scripts.bench_runtime --commands {args.commands} --agents {args.agents} "
        f"--memory-agents {args.memory_agents} --full-window-agents {args.full_window_agents} "
        f"--dedicated-agents {args.dedicated_agents} "
        f"--dedicated-cold {args.dedicated_cold}"
    )
    body = "\n".join(
        [
            "## Runtime: commands through Ray actors (scripts/bench_runtime.py)",
            "",
            f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}, SQLite event "
            "store (WAL, synchronous=FULL), local Ray with 2 CPUs.",
            f"Command: `{command}`.",
            "",
            "A command is `RecordMessages` (one event appended). *Warm*: the agent is in memory. "
            "*Cold*: the agent was passivated, so the command first rehydrates it from its "
            "stream; for dedicated placement, a new agent also needs a new actor process. "
            "Throughput: one command to each agent, 200 in flight.",
            "",
            *lines,
        ]
    )
    if not args.no_report:
        write_section("bench_runtime", body)
        console.print("written to docs/reports/agent-perf.md")


if __name__ == "__main__":
    main()
