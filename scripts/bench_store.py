"""Event-store benchmark: append latency and aggregate load time, per adapter.

    python -m scripts.bench_store [--stores sqlite,postgres,kurrentdb] [--appends 1000]

Appends are single-event, sequential, with an exact expected version: the write path of one
agent command. Load is the whole aggregate load (read + decode + replay) of a realistic
1,000-event agent stream (125 sessions of 8 events), without and with a snapshot. Results go
into docs/reports/agent-perf.md (section ``bench_store``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from uuid import uuid4

import psycopg
from psycopg import sql
from rich.console import Console
from rich.progress import Progress

from application.agent_repository import AgentRepository
from domain.agent import Agent
from domain.enums import AgentType
from domain.execution_state import ExecutionState, LlmMessage, PendingToolCall
from domain.ids import new_agent_id, stream_name
from domain.session import ClientAction, ClientResponse
from eventstore.codec import to_envelope
from eventstore.factory import open_event_store
from eventstore.port import EventStore
from scripts.bench_report import Percentiles, machine, write_section

POSTGRES_URL = os.environ.get(
    "AGENTHOST_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
LOAD_TARGET_MS = 100.0
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def build_agent_events(sessions: int = 125) -> Agent:
    """An agent whose pending events are a realistic history: 8 events per session."""
    agent = Agent.create(
        agent_id=new_agent_id(), owner_user_id="bench", agent_type=AgentType.TUTOR, now=T0
    )
    for n in range(sessions):
        now = T0 + timedelta(minutes=n)
        call = f"call-{n}"
        agent.start_session(session_id=f"s-{n}", conversation_id=f"c-{n}", now=now)
        agent.record_messages(
            [LlmMessage(role="assistant", content=f"Question {n}: what is {n} x 7?")], now=now
        )
        execution = ExecutionState(
            conversation_snapshot=(LlmMessage(role="user", content="quiz me"),),
            pending_tool_call=PendingToolCall(call_id=call, tool_name="request_free_text"),
        )
        action = ClientAction(
            tool_call_id=call,
            tool_name="request_free_text",
            widget_type="free_text",
            props={"prompt": f"{n} x 7 = ?"},
        )
        agent.suspend_execution(execution, action, now=now)
        response = ClientResponse(tool_call_id=call, response={"text": str(n * 7)})
        agent.resume_execution(response, now=now, evaluation={"correct": True, "score": 1})
        agent.record_messages([LlmMessage(role="assistant", content="Correct!")], now=now)
        agent.complete_session(now=now, summary={"score": 1.0})
    return agent


async def _timed(samples: list[float], call: Callable[[], Awaitable[object]]) -> None:
    started = time.perf_counter()
    await call()
    samples.append((time.perf_counter() - started) * 1000)


async def bench_one(
    name: str, store: EventStore, appends: int, loads: int, progress: Progress
) -> dict[str, Percentiles]:
    results: dict[str, Percentiles] = {}

    template = build_agent_events(sessions=1)
    message_event = template.pending_events[2]
    stream = f"bench-{uuid4()}"
    append_ms: list[float] = []
    task = progress.add_task(f"{name}: appends", total=appends)
    for version in range(appends):
        envelope = to_envelope(message_event)
        await _timed(append_ms, lambda v=version, e=envelope: store.append(stream, [e], v))
        progress.advance(task)
    results["append (1 event)"] = Percentiles.of(append_ms)

    agent = build_agent_events()
    repository = AgentRepository(store)
    agent_stream = stream_name(agent.id)
    task = progress.add_task(f"{name}: writing 1,000-event stream", total=None)
    events = list(agent.pending_events)
    for start in range(0, len(events), 8):
        batch = [to_envelope(e) for e in events[start : start + 8]]
        await store.append(agent_stream, batch, start)
    agent.mark_committed()
    progress.remove_task(task)

    async def measure_loads(label: str) -> Percentiles:
        load_ms: list[float] = []
        task = progress.add_task(f"{name}: {label}", total=loads)
        for _ in range(loads):
            await _timed(load_ms, lambda: repository.load(agent.id))
            progress.advance(task)
        loaded = (await repository.load(agent.id)).agent
        if loaded.state != agent.state or loaded.version != len(events):
            raise RuntimeError(f"{name}: loaded state differs from the written one")
        return Percentiles.of(load_ms)

    results["load 1,000 events, no snapshot"] = await measure_loads("load, no snapshot")
    await repository.save_snapshot(agent)
    results["load 1,000 events, snapshot"] = await measure_loads("load, snapshot")
    return results


async def _open(name: str, workdir: Path) -> tuple[EventStore, Callable[[], Awaitable[None]]]:
    async def nothing() -> None:
        return None

    if name == "sqlite":
        return await open_event_store(f"sqlite:///{workdir / 'bench.db'}"), nothing
    if name == "postgres":
        schema = f"bench_{uuid4().hex[:12]}"
        store = await open_event_store(f"{POSTGRES_URL}?schema={schema}")

        async def drop() -> None:
            async with await psycopg.AsyncConnection.connect(POSTGRES_URL, autocommit=True) as c:
                await c.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))

        return store, drop
    if name == "kurrentdb":
        return await open_event_store(os.environ["EVENTSTORE_URL"]), nothing
    raise ValueError(f"unknown store {name!r}")


def default_stores() -> list[str]:
    return ["sqlite", "postgres"] + (["kurrentdb"] if os.environ.get("EVENTSTORE_URL") else [])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", default=",".join(default_stores()))
    parser.add_argument("--appends", type=int, default=1000)
    parser.add_argument("--loads", type=int, default=200)
    parser.add_argument("--no-report", action="store_true", help="print only")
    args = parser.parse_args()
    console = Console()
    rows: list[str] = []
    with TemporaryDirectory() as tmp, Progress(console=console, transient=True) as progress:
        for name in args.stores.split(","):
            store, cleanup = await _open(name, Path(tmp))
            try:
                results = await bench_one(name, store, args.appends, args.loads, progress)
            finally:
                await store.close()
                await cleanup()
            for label, p in results.items():
                rows.append(f"| {name} | {label} | {p.cells()} |")
                console.print(
                    f"{name:9} {label:34} p50 {p.p50:7.2f}  p95 {p.p95:7.2f}  p99 {p.p99:7.2f} ms"
                )
    command = (
        f"python -m scripts.bench_store --stores {args.stores} --appends {args.appends} "
        f"--loads {args.loads}"
    )
    body = "\n".join(
        [
            "## Event store: append latency and aggregate load (scripts/bench_store.py)",
            "",
            f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}.",
            f"Command: `{command}` (what `make bench` runs with the defaults).",
            "",
            "Append: one event, sequential, exact expected version (one command's write). "
            "Load: `AgentRepository.load` of a 1,000-event agent stream: read + decode + "
            "replay (plan target: aggregate load < "
            f"{LOAD_TARGET_MS:.0f} ms; aim: single-digit ms).",
            "",
            "| store | operation | p50 | p95 | p99 | n |",
            "|---|---|---|---|---|---|",
            *rows,
            *(
                []
                if "kurrentdb" in args.stores
                else [
                    "",
                    "KurrentDB: not measured (no server here); set `EVENTSTORE_URL` and the "
                    "default `--stores` includes it.",
                ]
            ),
            "",
            "Snapshots are taken every `AGENTHOST_SNAPSHOT_EVERY` (100) events, so a real "
            "load replays at most 99 events after its snapshot: the snapshot rows are the "
            "figures that matter against the target.",
        ]
    )
    if not args.no_report:
        write_section("bench_store", body)
        console.print("written to docs/reports/agent-perf.md")


if __name__ == "__main__":
    asyncio.run(main())
