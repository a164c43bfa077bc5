"""API benchmark: the plan's four latency targets over real HTTP, through the Ray Serve proxy.

    python -m scripts.bench_api [--runs 200] [--stores sqlite,postgres] [--no-report]

For each store kind it starts a local Ray instance, the projector and the API exactly as
``make run`` does, then times sequential requests from an httpx client on a keep-alive
connection: aggregate load (cold and warm), session start, resume (answering a widget) and
SSE reconnect with ``Last-Event-ID``. The same use cases are then timed on an in-process
``AgentApplication`` (no Ray, no HTTP) on the same store kind, so the report shows what the Ray
and HTTP path costs. Writes section ``bench_api`` of docs/reports/agent-perf.md.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any, TypeVar
from uuid import uuid4

import httpx
import psycopg
import ray
from psycopg import sql
from pydantic import JsonValue, SecretStr
from ray import serve
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from actors.runtime import AgentRuntime, host_config
from actors.settings import Settings
from application import use_cases
from application.bootstrap import build_application
from application.replies import SessionReply
from domain.access import Caller
from domain.commands import GetOrCreateAgent, TerminateSession
from domain.enums import AgentType
from domain.ids import stream_name
from domain.session import Session, SessionConfig
from eventstore.factory import open_event_store
from execution.executor import Outcome
from execution.templates.loader import get_template
from execution.templates.model import SessionTemplate, right_answer
from scripts.bench_report import Percentiles, machine, write_section
from scripts.bench_store import POSTGRES_URL
from serve_app.auth import AuthSettings, mint_dev_token
from serve_app.deployment import deploy, settings_env
from serve_app.settings import ApiSettings

T = TypeVar("T")

TEMPLATE = "arithmetic-basics"
"""The tutor's default template: 8 items, each a choice or a typed number."""
HISTORY_SESSIONS = 3
"""Completed sessions per agent before measuring: ~103 events, so a snapshot plus a tail."""
SSE_MISSED = 3
"""How many durable events a reconnecting SSE client has missed."""
WARMUP = 3
"""Untimed runs at the start of every measure (first-call costs are not the steady state)."""
HOSTS = 2
SECRET = "bench-api-secret-" + "x" * 32
START_BODY: dict[str, JsonValue] = {"config": {"template_id": TEMPLATE}}


@dataclass(frozen=True)
class Measure:
    label: str
    target_ms: float | None
    """The plan's p99 target, or None for figures shown only for context."""


MEASURES = {
    "load_cold": Measure("aggregate load, cold", 100.0),
    "load_warm": Measure("aggregate load, warm", 100.0),
    "start": Measure("session start", 200.0),
    "respond": Measure("resume (respond)", 150.0),
    "respond_last": Measure("respond, last item", None),
    "sse": Measure("SSE reconnect", 500.0),
}
BASELINE = ("load_cold", "load_warm", "start", "respond")
"""The measures that have an in-process equivalent (a stream needs the HTTP front)."""

Samples = dict[str, list[float]]


# --------------------------------------------------------------------------- answers


def answer_key(template: SessionTemplate) -> dict[str, JsonValue]:
    """Every item's right answer, checked by the template's own scoring first: a template
    change must fail here, not quietly turn the bench into a wrong-answer path."""
    answers = {item.id: right_answer(item) for item in template.planned_items}
    for item in template.planned_items:
        if item.evaluate(answers[item.id]).correct is not True:
            raise RuntimeError(f"{template.id}/{item.id}: the bench's answer is not accepted")
    return answers


ANSWERS = answer_key(get_template(TEMPLATE))


# --------------------------------------------------------------------------- timing


async def timed(call: Callable[[], Awaitable[T]]) -> tuple[float, T]:
    started = time.perf_counter()
    result = await call()
    return (time.perf_counter() - started) * 1000, result


class Runs:
    """``runs`` timed iterations after WARMUP untimed ones, with a progress bar."""

    def __init__(self, progress: Progress, label: str, runs: int) -> None:
        self._progress, self._runs = progress, runs
        self._task = progress.add_task(label, total=runs + WARMUP)

    def __iter__(self) -> Iterator[tuple[int, bool]]:
        """(run number, whether this run counts)."""
        for n in range(self._runs + WARMUP):
            yield n, n >= WARMUP
            self._progress.advance(self._task)
        self._progress.remove_task(self._task)


# --------------------------------------------------------------------------- over HTTP


@dataclass
class HttpAgent:
    agent_id: str
    headers: dict[str, str]
    pending: str | None = None
    """The tool call its active session waits on (None: no active session)."""


def check(response: httpx.Response, expected: int) -> dict[str, Any]:
    if response.status_code != expected:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path} -> "
            f"{response.status_code}: {response.text[:500]}"
        )
    body: dict[str, Any] = response.json()
    return body


def pending_call(state: dict[str, Any]) -> str | None:
    if state["outcome"] != Outcome.WAITING_FOR_USER:
        return None
    call: str = state["session"]["pending_action"]["tool_call_id"]
    return call


def scored_correct(state: dict[str, Any], call: str) -> bool:
    """Whether the session in a respond answer holds a correct evaluation of ``call``."""
    answered = [i for i in state["session"]["items"] if i["item_id"] == call]
    return bool(answered) and answered[-1]["evaluation"]["correct"] is True


async def http_start(http: httpx.AsyncClient, agent: HttpAgent) -> httpx.Response:
    return await http.post(
        f"/api/agents/{agent.agent_id}/sessions", json=START_BODY, headers=agent.headers
    )


async def http_respond(http: httpx.AsyncClient, agent: HttpAgent, call: str) -> httpx.Response:
    return await http.post(
        f"/api/agents/{agent.agent_id}/session/respond",
        json={"tool_call_id": call, "response": ANSWERS[call]},
        headers=agent.headers,
    )


async def http_agents(http: httpx.AsyncClient, count: int, progress: Progress) -> list[HttpAgent]:
    """``count`` tutors (one per user), each with HISTORY_SESSIONS completed sessions."""
    auth = AuthSettings(jwt_secret=SecretStr(SECRET))
    task = progress.add_task(f"creating {count} agents with history", total=count)

    async def one(n: int) -> HttpAgent:
        user = f"bench-{uuid4().hex[:8]}-{n}"
        headers = {"Authorization": f"Bearer {mint_dev_token(auth, user)}"}
        created = check(
            await http.post("/api/agents", json={"agent_type": "tutor"}, headers=headers), 201
        )
        agent = HttpAgent(str(created["id"]), headers)
        for _ in range(HISTORY_SESSIONS):
            call = pending_call(check(await http_start(http, agent), 201))
            while call is not None:
                call = pending_call(check(await http_respond(http, agent, call), 200))
        progress.advance(task)
        return agent

    agents = await asyncio.gather(*(one(n) for n in range(count)))
    progress.remove_task(task)
    return list(agents)


async def measure_http(
    url: str, settings: Settings, args: argparse.Namespace, progress: Progress
) -> Samples:
    samples: Samples = {key: [] for key in MEASURES}
    hosts = AgentRuntime(settings).sharded_hosts()

    async def passivate() -> None:
        dropped = await asyncio.gather(*(h.passivate_idle.remote(0.0) for h in hosts))
        if sum(dropped) == 0:
            raise RuntimeError("passivation dropped nothing: the load would not be cold")

    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        agents = await http_agents(http, args.agents, progress)

        def session_of(agent: HttpAgent) -> Callable[[], Awaitable[httpx.Response]]:
            return lambda: http.get(f"/api/agents/{agent.agent_id}/session", headers=agent.headers)

        for n, counts in Runs(progress, "aggregate load, cold", args.runs):
            agent = agents[n % len(agents)]
            await passivate()
            ms, response = await timed(session_of(agent))
            check(response, 200)
            if counts:
                samples["load_cold"].append(ms)

        for _, counts in Runs(progress, "aggregate load, warm", args.runs):
            ms, response = await timed(session_of(agents[0]))
            check(response, 200)
            if counts:
                samples["load_warm"].append(ms)

        for n, counts in Runs(progress, "session start", args.runs):
            agent = agents[n % len(agents)]
            ms, response = await timed(lambda a=agent: http_start(http, a))
            if pending_call(check(response, 201)) is None:
                raise RuntimeError("a started session came back without a widget")
            terminated = await http.delete(
                f"/api/agents/{agent.agent_id}/session", headers=agent.headers
            )
            check(terminated, 200)
            if counts:
                samples["start"].append(ms)

        await measure_http_respond(http, agents, args.runs, samples, progress)
        await measure_sse(http, agents, settings, args.runs, samples, progress)
    return samples


async def measure_http_respond(
    http: httpx.AsyncClient,
    agents: list[HttpAgent],
    runs: int,
    samples: Samples,
    progress: Progress,
) -> None:
    """Correct answers round-robin over the agents; a session that ends is restarted
    (untimed), and answers that complete a session are kept apart (no next widget)."""
    for n, counts in Runs(progress, "resume (respond)", runs):
        agent = agents[n % len(agents)]
        if agent.pending is None:
            agent.pending = pending_call(check(await http_start(http, agent), 201))
        call = agent.pending
        assert call is not None
        ms, response = await timed(lambda a=agent, c=call: http_respond(http, a, c))
        state = check(response, 200)
        agent.pending = pending_call(state)
        if agent.pending is None and state["outcome"] != Outcome.COMPLETED:
            raise RuntimeError(f"answering {call} ended the session as {state['outcome']}")
        if agent.pending is not None and not scored_correct(state, call):
            raise RuntimeError(f"the answer to {call} was not scored correct: {state}")
        if counts:
            samples["respond" if agent.pending is not None else "respond_last"].append(ms)


async def measure_sse(
    http: httpx.AsyncClient,
    agents: list[HttpAgent],
    settings: Settings,
    runs: int,
    samples: Samples,
    progress: Progress,
) -> None:
    """Reconnect mid-session, SSE_MISSED events behind; time to the first missed event's data."""
    store = await open_event_store(settings.event_store_url)
    try:
        positions = {
            a.agent_id: [r.position for r in await store.read(stream_name(a.agent_id))]
            for a in agents
        }
    finally:
        await store.close()

    for n, counts in Runs(progress, "SSE reconnect", runs):
        agent = agents[n % len(agents)]
        stored = positions[agent.agent_id]
        last_seen, first_missed = stored[-SSE_MISSED - 1], stored[-SSE_MISSED]
        headers = {**agent.headers, "Last-Event-ID": str(last_seen)}
        event_id, ms = None, 0.0
        started = time.perf_counter()
        async with http.stream(
            "GET", f"/api/agents/{agent.agent_id}/stream", headers=headers
        ) as response:
            if response.status_code != 200:
                raise RuntimeError(f"stream -> {response.status_code}: {await response.aread()!r}")
            async for line in response.aiter_lines():
                if line.startswith("id:"):
                    event_id = line.removeprefix("id:").strip()
                elif line.startswith("data:"):
                    ms = (time.perf_counter() - started) * 1000
                    break
        if event_id != str(first_missed):
            raise RuntimeError(f"stream resumed at {event_id}, expected {first_missed}")
        if counts:
            samples["sse"].append(ms)


# --------------------------------------------------------------------------- in-process


async def measure_in_process(
    settings: Settings, args: argparse.Namespace, progress: Progress
) -> Samples:
    """The use case each route sends, as the agent's owner, to an AgentApplication in this
    process: ``ReadCurrentSession`` (load), ``StartSession`` and ``AnswerWidget`` (each the
    access check, the command, the drive and the reply's state read, in one call); so the
    difference to the HTTP figures is the Ray, Serve and HTTP path alone."""
    samples: Samples = {key: [] for key in MEASURES}
    app = build_application(host_config(settings))
    config = SessionConfig(template_id=TEMPLATE)
    owners: dict[str, Caller] = {}

    async def start(agent_id: str) -> str | None:
        reply = await app.handle(
            use_cases.StartSession(agent_id=agent_id, caller=owners[agent_id], config=config)
        )
        return pending_in_process(reply)

    async def respond(agent_id: str, call: str) -> str | None:
        reply = await app.handle(
            use_cases.AnswerWidget(
                agent_id=agent_id,
                caller=owners[agent_id],
                tool_call_id=call,
                response=ANSWERS[call],
            )
        )
        return pending_in_process(reply)

    def pending_in_process(reply: SessionReply) -> str | None:
        if reply.outcome is not Outcome.WAITING_FOR_USER:
            return None
        assert reply.session is not None
        assert reply.session.pending_action is not None
        return reply.session.pending_action.tool_call_id

    def load(agent_id: str) -> Callable[[], Awaitable[Session | None]]:
        query = use_cases.ReadCurrentSession(agent_id=agent_id, caller=owners[agent_id])
        return lambda: app.handle(query)

    try:
        task = progress.add_task("in-process: agents with history", total=args.agents)
        agents: list[str] = []
        for n in range(args.agents):
            user = f"inproc-{uuid4().hex[:8]}-{n}"
            created = await app.handle(GetOrCreateAgent.for_user(user, AgentType.TUTOR))
            owners[created.agent_id] = Caller(user_id=user)
            for _ in range(HISTORY_SESSIONS):
                call = await start(created.agent_id)
                while call is not None:
                    call = await respond(created.agent_id, call)
            agents.append(created.agent_id)
            progress.advance(task)
        progress.remove_task(task)

        for n, counts in Runs(progress, "in-process: load, cold", args.runs):
            app.passivate_idle(0.0)
            ms, _ = await timed(load(agents[n % len(agents)]))
            if counts:
                samples["load_cold"].append(ms)
        for _, counts in Runs(progress, "in-process: load, warm", args.runs):
            ms, _ = await timed(load(agents[0]))
            if counts:
                samples["load_warm"].append(ms)
        for n, counts in Runs(progress, "in-process: session start", args.runs):
            agent_id = agents[n % len(agents)]
            ms, call = await timed(lambda a=agent_id: start(a))
            if call is None:
                raise RuntimeError("a started session came back without a widget")
            await app.handle(TerminateSession(agent_id=agent_id, reason="bench"))
            if counts:
                samples["start"].append(ms)
        pending: dict[str, str | None] = {}
        for n, counts in Runs(progress, "in-process: respond", args.runs):
            agent_id = agents[n % len(agents)]
            call = pending.get(agent_id) or await start(agent_id)
            assert call is not None
            ms, pending[agent_id] = await timed(lambda a=agent_id, c=call: respond(a, c))
            if counts:
                samples["respond" if pending[agent_id] is not None else "respond_last"].append(ms)
    finally:
        await app.close()
    return samples


# --------------------------------------------------------------------------- one store


@dataclass
class StoreRun:
    name: str
    http: Samples = field(default_factory=dict)
    in_process: Samples = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def store_urls(name: str, workdir: Path) -> Iterator[tuple[str, str]]:
    """(event store URL, read model URL) for a fresh store of this kind, removed afterwards."""
    if name == "sqlite":
        yield f"sqlite:///{workdir / 'events.db'}", f"sqlite:///{workdir / 'read_model.db'}"
        return
    if name != "postgres":
        raise ValueError(f"unknown store {name!r} (sqlite or postgres)")
    schema = f"bench_{uuid4().hex[:12]}"
    try:
        yield f"{POSTGRES_URL}?schema={schema}", f"{POSTGRES_URL}?schema={schema}_read"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
            for name_ in (schema, f"{schema}_read"):
                connection.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name_))
                )


def postgres_unreachable() -> str | None:
    """Why PostgreSQL cannot be used here, or None when it can."""
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3):
            return None
    except psycopg.Error as error:
        return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


@contextmanager
def serving_api(settings: Settings, env: dict[str, str]) -> Iterator[str]:
    """A fresh local Ray instance with the projector and the API, as `make run` starts them;
    yields the API's URL."""
    ray.init(
        address="local",  # a fresh instance, never a running cluster
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level="ERROR",
    )
    try:
        yield deploy(ApiSettings(port=free_port()), settings, env)
    finally:
        serve.shutdown()
        ray.shutdown()


def bench_store(name: str, args: argparse.Namespace, console: Console, workdir: Path) -> StoreRun:
    run = StoreRun(name)
    workdir.mkdir(parents=True, exist_ok=True)
    with store_urls(name, workdir) as (events_url, read_model_url):
        settings = Settings(
            event_store_url=events_url,
            read_model_url=read_model_url,
            ray_namespace=f"bench-api-{uuid4().hex[:8]}",
            hosts=HOSTS,
        )
        env = {**settings_env(settings), "AGENTHOST_AUTH_JWT_SECRET": SECRET}
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"{name}: starting Ray, the projector and the API", total=None)
            with serving_api(settings, env) as url:
                progress.remove_task(task)
                run.http = asyncio.run(measure_http(url, settings, args, progress))
            run.in_process = asyncio.run(measure_in_process(settings, args, progress))
    return run


# --------------------------------------------------------------------------- report


def under_target(p: Percentiles, target_ms: float | None) -> tuple[str, str]:
    if target_ms is None:
        return "", ""
    ratio = target_ms / p.p99
    return f"< {target_ms:.0f}", f"{ratio:.1f}x" if ratio >= 1 else f"{ratio:.2f}x (missed)"


def target_rows(runs: list[StoreRun]) -> list[tuple[str, ...]]:
    rows = []
    for run in runs:
        for key, measure in MEASURES.items():
            if len(run.http[key]) < 2:
                continue
            p = Percentiles.of(run.http[key])
            target, ratio = under_target(p, measure.target_ms)
            rows.append((run.name, measure.label, *_cells(p), target, ratio))
    return rows


def overhead_rows(runs: list[StoreRun]) -> list[tuple[str, ...]]:
    rows = []
    for run in runs:
        for key in BASELINE:
            if len(run.http[key]) < 2 or len(run.in_process[key]) < 2:
                continue
            over, base = Percentiles.of(run.http[key]), Percentiles.of(run.in_process[key])
            label = MEASURES[key].label
            rows += [
                (run.name, label, "HTTP via Serve + Ray", *_cells(over)),
                (run.name, label, "in-process", *_cells(base)),
                (
                    run.name,
                    label,
                    "Ray path overhead",
                    f"{over.p50 - base.p50:+.2f}",
                    f"{over.p95 - base.p95:+.2f}",
                    f"{over.p99 - base.p99:+.2f}",
                    "",
                ),
            ]
    return rows


def _cells(p: Percentiles) -> tuple[str, ...]:
    return (f"{p.p50:.2f}", f"{p.p95:.2f}", f"{p.p99:.2f}", str(p.n))


def markdown(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def print_table(
    console: Console, title: str, header: tuple[str, ...], rows: list[tuple[str, ...]]
) -> None:
    table = Table(title=title)
    for n, column in enumerate(header):
        table.add_column(column, justify="left" if n < 3 else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)


TARGET_HEADER = ("store", "measure", "p50", "p95", "p99", "n", "target (p99)", "x under target")
OVERHEAD_HEADER = ("store", "operation", "path", "p50", "p95", "p99", "n")


def report(
    runs: list[StoreRun],
    args: argparse.Namespace,
    skipped: dict[str, str],
    loads: tuple[float, float],
) -> str:
    command = f"python -m scripts.bench_api --runs {args.runs} --stores {args.stores}"
    if args.agents != 10:
        command += f" --agents {args.agents}"
    busy = (
        f" 1-minute load average at start and end: {loads[0]:.2f} and {loads[1]:.2f} on "
        f"{os.cpu_count()} cores"
        + (" (other work was running: figures are pessimistic)." if max(loads) > 1 else ".")
    )
    return "\n".join(
        [
            "## API: the plan's latency targets over HTTP (scripts/bench_api.py)",
            "",
            f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}: local Ray with 2 "
            f"CPUs, 1 API replica, {HOSTS} sharded hosts, snapshots every "
            f"{Settings().snapshot_every} events, JWT checked on every request.{busy}",
            f"Command: `{command}` (`make bench` runs it with the defaults).",
            "",
            "Every request is sent alone, over real HTTP through the Ray Serve proxy, from an "
            "httpx client on a keep-alive connection, and timed from sending until the whole "
            f"answer is read. {args.agents} tutor agents (one user each) first complete "
            f"{HISTORY_SESSIONS} sessions of the `{TEMPLATE}` template (~103 events each: one "
            "snapshot plus a tail); measures go round-robin over them. The first "
            f"{WARMUP} runs of every measure are not counted. *x under target* is the target "
            "divided by the p99.",
            "",
            "- **Aggregate load, cold**: `GET /api/agents/{id}/session`, the strongly "
            "consistent read through the agent's host, for an agent not in memory: just "
            "before (not timed) every sharded host drops all its activations "
            "(`passivate_idle(0)`), so the host loads the snapshot and the tail from the "
            "store. *Warm*: the same read, agent in memory.",
            "- **Session start**: `POST /api/agents/{id}/sessions` (templated) on an agent "
            "without an active session; the answer includes the first widget. The session is "
            "terminated (`DELETE`, not timed) after each run.",
            "- **Resume**: `POST /api/agents/{id}/session/respond` with a correct answer; the "
            "answer includes the evaluation and the next widget. Answers to a session's last "
            "item, which complete it instead, are shown apart (no target).",
            f"- **SSE reconnect**: from sending `GET /api/agents/{{id}}/stream` with "
            f"`Last-Event-ID` {SSE_MISSED} events behind the end of the agent's stream "
            "(mid-session) until the `data:` line of the first missed event has arrived "
            "(a new connection each time).",
            "",
            *markdown(TARGET_HEADER, target_rows(runs)),
            "",
            "### Overhead of the Ray path against an in-process baseline",
            "",
            "The baseline sends the use case each route sends, as the agent's owner, to an "
            "`AgentApplication` in the benchmark's process (no Ray, no Serve, no HTTP, no "
            "JWT), on the same store kind: load = `ReadCurrentSession` (cold: after "
            "`passivate_idle(0)`); start = `StartSession` (the access check, the command, the "
            "drive to the first widget and the state read the answer is built from, in one "
            "call); respond = `AnswerWidget`, the same to the next widget. The overhead row is "
            "HTTP minus in-process, percentile by percentile.",
            "",
            *markdown(OVERHEAD_HEADER, overhead_rows(runs)),
            *([""] if skipped else []),
            *(f"{name}: not measured ({why})." for name, why in skipped.items()),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="timed runs per measure")
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--agents", type=int, default=10, help="agents with history")
    parser.add_argument("--no-report", action="store_true", help="print only")
    args = parser.parse_args()
    if args.runs < 2:
        parser.error("--runs must be at least 2")
    stores = args.stores.split(",")
    if unknown := set(stores) - {"sqlite", "postgres"}:
        parser.error(f"unknown stores {sorted(unknown)}: use sqlite and/or postgres")
    console = Console()
    logging.getLogger("ray.serve").setLevel(logging.WARNING)
    load_at_start = os.getloadavg()[0]
    runs: list[StoreRun] = []
    skipped: dict[str, str] = {}
    with TemporaryDirectory() as tmp:
        for name in stores:
            if name == "postgres" and (why := postgres_unreachable()) is not None:
                skipped[name] = f"PostgreSQL unreachable at {POSTGRES_URL}: {why}"
                console.print(f"[yellow]skipping postgres[/]: {skipped[name]}")
                continue
            started = time.perf_counter()
            runs.append(bench_store(name, args, console, Path(tmp) / name))
            console.print(f"{name}: done in {time.perf_counter() - started:.0f} s")
    print_table(console, "Targets (ms)", TARGET_HEADER, target_rows(runs))
    print_table(console, "Ray path vs in-process (ms)", OVERHEAD_HEADER, overhead_rows(runs))
    if not args.no_report:
        loads = (load_at_start, os.getloadavg()[0])
        write_section("bench_api", report(runs, args, skipped, loads))
        console.print("written to docs/reports/agent-perf.md")


if __name__ == "__main__":
    main()
