"""Fault soak over real HTTP: users keep running sessions while the script kills the service.

    python -m scripts.soak [--store sqlite] [--store postgres [--restart-postgres]] [--rounds 20]

Concurrent users run templated sessions end to end (start, answer every widget, start again),
every write with an ``Idempotency-Key``, retrying 503s and the Serve proxy's own failures with
the same key. Meanwhile, each round applies the next fault of a rotation: SIGKILL a host
actor, SIGKILL the projector, SIGKILL a Serve replica, SIGSTOP a host for a few seconds (and
with ``--restart-postgres``, restart the PostgreSQL server: never from the test suite). Then
the event store itself is audited: versions contiguous, every acknowledged write stored once,
no widget answered twice, the read model equal to a replay, fresh writes served. Writes
docs/reports/reliability.md (unless ``--no-report``); exits non-zero if the audit fails.

Recovery time of a fault: how long after it every user had a write acknowledged again (for a
SIGSTOP, counted from the SIGCONT). The next fault waits until every user was served, so no
fault's recovery is charged to the next.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import time
from bisect import bisect_right
from collections import Counter, defaultdict
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any
from uuid import uuid4

import httpx
import psutil
from pydantic import JsonValue, SecretStr
from rich.console import Console
from rich.table import Table

from actors.projector_actor import ProjectorClient
from actors.settings import Settings
from domain.agent import Agent
from domain.ids import stream_name
from eventstore.codec import from_envelope
from eventstore.factory import open_event_store
from projections.factory import open_read_model
from scripts.bench_api import (
    ANSWERS,
    SECRET,
    START_BODY,
    pending_call,
    postgres_unreachable,
    serving_api,
    store_urls,
)
from scripts.bench_report import Percentiles, machine
from serve_app.auth import AuthSettings, mint_dev_token
from serve_app.deployment import settings_env

REPORT = Path("docs/reports/reliability.md")
FAULTS = ("host_kill", "projector_kill", "replica_kill", "host_stop")
PROCESS_TITLES = {
    "host": "ray::AgentHost",
    "projector": "ray::ProjectorActor",
    "replica": "ray::ServeReplica:agenthost:AgentApi",
}
PG_RESTART = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main restart"
MAX_RETRY_WAIT_S = 1.0
RESPONSE_EVENT = "agent.client.response.received.v1"
STARTED_EVENT = "agent.session.started.v1"


@dataclass
class Write:
    """One acknowledged write: what the audit must find stored exactly once."""

    agent_id: str
    kind: str
    tool_call_id: str | None
    session_id: str | None


@dataclass
class Soak:
    acknowledged: list[Write] = field(default_factory=list)
    retries: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    acknowledged_at: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    """Per agent (one per user), when each of its writes was acknowledged."""
    recovery: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    unserved: Counter[str] = field(default_factory=Counter)
    """Per fault kind, rounds after which some user was not served within the settle time."""
    faults: Counter[str] = field(default_factory=Counter)
    acknowledgement: asyncio.Event = field(default_factory=asyncio.Event)
    """Set at every acknowledgement, for whoever waits until every user was served."""
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def served_again(self, since: float) -> float | None:
        """Seconds from ``since`` until every user had a write acknowledged after it (None
        while some user has not)."""
        firsts = []
        for times in self.acknowledged_at.values():
            first = bisect_right(times, since)
            if first == len(times):
                return None
            firsts.append(times[first])
        return max(firsts) - since if firsts else None


async def write(
    soak: Soak,
    http: httpx.AsyncClient,
    agent_id: str,
    path: str,
    body: dict[str, JsonValue],
    headers: dict[str, str],
) -> dict[str, Any]:
    """POST until acknowledged, always with the same Idempotency-Key: 503s after their
    Retry-After, the proxy's 500s and dropped connections (a replica killed mid-request) at
    once. Anything else is a defect, recorded."""
    key = str(uuid4())
    while True:
        try:
            response = await http.post(path, json=body, headers={**headers, "Idempotency-Key": key})
        except httpx.TransportError as error:
            soak.retries[f"connection: {type(error).__name__}"] += 1
            await asyncio.sleep(0.1)
            continue
        if response.status_code < 300:
            soak.acknowledged_at[agent_id].append(time.monotonic())
            soak.acknowledgement.set()
            answered: dict[str, Any] = response.json()
            return answered
        if response.status_code == 503:
            soak.retries[f"503 {response.json().get('code')}"] += 1
            wait = float(response.headers.get("retry-after", "1"))
            await asyncio.sleep(min(wait, MAX_RETRY_WAIT_S))
            continue
        if response.status_code >= 500 and "problem+json" not in response.headers.get(
            "content-type", ""
        ):
            soak.retries[f"{response.status_code} from the Serve proxy"] += 1
            await asyncio.sleep(0.1)
            continue
        raise RuntimeError(f"{path} -> {response.status_code}: {response.text[:300]}")


async def user(soak: Soak, http: httpx.AsyncClient, agent_id: str, headers: dict[str, str]) -> None:
    """Sessions end to end until the soak stops (a session in progress is finished)."""
    while not soak.stop.is_set():
        try:
            state = await write(
                soak, http, agent_id, f"/api/agents/{agent_id}/sessions", START_BODY, headers
            )
            session_id = state["session"]["session_id"]
            soak.acknowledged.append(Write(agent_id, "start", None, session_id))
            call = pending_call(state)
            while call is not None:
                body: dict[str, JsonValue] = {"tool_call_id": call, "response": ANSWERS[call]}
                path = f"/api/agents/{agent_id}/session/respond"
                state = await write(soak, http, agent_id, path, body, headers)
                soak.acknowledged.append(Write(agent_id, "answer", call, session_id))
                call = pending_call(state)
        except RuntimeError as error:
            soak.unexpected.append(str(error))
            await asyncio.sleep(0.5)


def pids(role: str) -> list[int]:
    """This soak's processes of a role, by the title Ray gives its workers. The soak started
    its own Ray instance, so its workers descend from this process: another instance's
    workers (a test suite's, say) are not ours to kill."""
    title = PROCESS_TITLES[role]
    found = []
    for process in psutil.Process().children(recursive=True):
        with suppress(psutil.Error):
            cmdline = process.cmdline()
            if cmdline and cmdline[0].startswith(title):
                found.append(process.pid)
    return sorted(found)


async def apply_fault(kind: str, args: argparse.Namespace, round_number: int) -> float | None:
    """Apply one fault; when recovery counts from (after the SIGCONT for a stop), or None when
    its target is not running (nothing done)."""
    if kind == "pg_restart":
        await asyncio.to_thread(subprocess.run, PG_RESTART, shell=True, check=True)
        return time.monotonic()
    role = {"host_kill": "host", "host_stop": "host", "projector_kill": "projector"}.get(
        kind, "replica"
    )
    targets = pids(role)
    if not targets:
        return None
    pid = targets[round_number % len(targets)]
    if kind == "host_stop":
        os.kill(pid, signal.SIGSTOP)
        await asyncio.sleep(args.stop_seconds)
        os.kill(pid, signal.SIGCONT)
    else:
        os.kill(pid, signal.SIGKILL)
    return time.monotonic()


BASELINE = "none (baseline)"
"""The same measure from a moment with no fault: what serving every user once costs anyway."""


async def faults(soak: Soak, args: argparse.Namespace, store: str) -> None:
    """The rotation of faults; after each, wait until every user was served again (at most
    ``settle_seconds``), then ``interval`` more before the next. Each round also takes the
    measure once with no fault (``BASELINE``), for comparison."""
    restart_postgres = args.restart_postgres and store == "postgres"
    rotation = [*FAULTS, *(("pg_restart",) if restart_postgres else ())]
    await asyncio.sleep(args.interval)
    for n in range(args.rounds):
        await record_recovery(soak, BASELINE, time.monotonic(), args.settle_seconds)
        kind = rotation[n % len(rotation)]
        since = await apply_fault(kind, args, n // len(rotation))
        if since is None:
            continue
        soak.faults[kind] += 1
        await record_recovery(soak, kind, since, args.settle_seconds)
        await asyncio.sleep(args.interval)


async def record_recovery(soak: Soak, kind: str, since: float, settle_seconds: float) -> None:
    """Wait until every user had a write acknowledged after ``since``; record how long."""
    deadline = since + settle_seconds
    while (recovered := soak.served_again(since)) is None and time.monotonic() < deadline:
        soak.acknowledgement.clear()
        with suppress(TimeoutError):
            await asyncio.wait_for(soak.acknowledgement.wait(), deadline - time.monotonic())
    if recovered is None:
        soak.unserved[kind] += 1
    else:
        soak.recovery[kind].append(recovered)


async def audit(soak: Soak, settings: Settings, agent_ids: list[str]) -> list[str]:
    """What the store and the read model say, against what the users were told."""
    problems: list[str] = []
    store = await open_event_store(settings.event_store_url)
    read_model = await open_read_model(settings.read_model_url)
    try:
        head = await store.last_position()
        if not await ProjectorClient(settings).wait_for_position(head, 60.0):
            problems.append(f"the projector did not reach position {head} in 60 s")
        acked_answers = Counter(
            (w.agent_id, w.session_id, w.tool_call_id)
            for w in soak.acknowledged
            if w.kind == "answer"
        )
        acked_starts = Counter(w.agent_id for w in soak.acknowledged if w.kind == "start")
        for agent_id in agent_ids:
            events = await store.read(stream_name(agent_id))
            if [e.version for e in events] != list(range(1, len(events) + 1)):
                problems.append(f"{agent_id}: versions not contiguous")
            domain = [from_envelope(e) for e in events]
            answers = Counter(
                (agent_id, getattr(e, "session_id", None), e.response.tool_call_id)  # type: ignore[attr-defined]
                for e in domain
                if e.event_type == RESPONSE_EVENT
            )
            if any(count > 1 for count in answers.values()):
                problems.append(f"{agent_id}: a widget answered twice")
            for key in acked_answers:
                if key[0] == agent_id and answers[key] != 1:
                    problems.append(
                        f"{agent_id}: acknowledged answer {key[2]} stored {answers[key]}x"
                    )
            starts = sum(1 for e in domain if e.event_type == STARTED_EVENT)
            if not acked_starts[agent_id] <= starts <= acked_starts[agent_id] + 1:
                problems.append(
                    f"{agent_id}: {acked_starts[agent_id]} starts acknowledged, {starts} stored"
                )
            replayed = Agent.replay(domain).state
            document = await read_model.get_agent(agent_id)
            if document is None or (
                document.total_sessions,
                document.active_session_id,
            ) != (
                replayed.total_sessions,
                replayed.active_session.session_id if replayed.active_session else None,
            ):
                problems.append(f"{agent_id}: read model differs from the replay")
    finally:
        await read_model.close()
        await store.close()
    return problems


async def fresh_writes(http: httpx.AsyncClient, agents: list[tuple[str, dict[str, str]]]) -> int:
    """Writes after the soak, each answered at the first try: how many failed."""
    failed = 0
    for agent_id, headers in agents:
        key = {"Idempotency-Key": str(uuid4())}
        response = await http.get(f"/api/agents/{agent_id}/session", headers=headers)
        state = response.json() if response.status_code == 200 else {}
        session = state.get("session") or {}
        call = (session.get("pending_action") or {}).get("tool_call_id")
        if call is None:
            response = await http.post(
                f"/api/agents/{agent_id}/sessions", json=START_BODY, headers={**headers, **key}
            )
        else:
            body = {"tool_call_id": call, "response": ANSWERS[call]}
            response = await http.post(
                f"/api/agents/{agent_id}/session/respond", json=body, headers={**headers, **key}
            )
        failed += response.status_code >= 300
    return failed


async def soak_run(
    url: str, settings: Settings, store: str, args: argparse.Namespace
) -> dict[str, Any]:
    soak = Soak()
    auth = AuthSettings(jwt_secret=SecretStr(SECRET))
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        agents = []
        for n in range(args.users):
            headers = {"Authorization": f"Bearer {mint_dev_token(auth, f'soak-{n}')}"}
            created = await http.post("/api/agents", json={"agent_type": "tutor"}, headers=headers)
            created.raise_for_status()
            agents.append((str(created.json()["id"]), headers))
        started = time.monotonic()
        users = [asyncio.create_task(user(soak, http, a, h)) for a, h in agents]
        try:
            await asyncio.wait_for(faults(soak, args, store), args.max_seconds)
        finally:
            soak.stop.set()
            await asyncio.gather(*users)
        elapsed = time.monotonic() - started
        problems = await audit(soak, settings, [a for a, _ in agents])
        failed_fresh = await fresh_writes(http, agents)
    if failed_fresh:
        problems.append(f"{failed_fresh} fresh writes after the soak failed")
    problems += [
        f"after {count} {kind} fault(s) some user was not served within {args.settle_seconds} s"
        for kind, count in sorted(soak.unserved.items())
    ]
    problems += [f"unexpected answer: {text}" for text in soak.unexpected[:10]]
    return {
        "store": store,
        "users": args.users,
        "rounds": args.rounds,
        "seconds": round(elapsed),
        "writes_acknowledged": len(soak.acknowledged),
        "faults": dict(soak.faults),
        "retried": dict(soak.retries),
        "recovery_s": {
            kind: _percentiles(samples) for kind, samples in sorted(soak.recovery.items())
        },
        "problems": problems,
        "audit_ok": not problems,
    }


def _percentiles(samples: list[float]) -> dict[str, float]:
    p = Percentiles.of(samples * 2 if len(samples) == 1 else samples or [0.0, 0.0])
    return {
        "p50": round(p.p50, 2),
        "p99": round(p.p99, 2),
        "max": round(max(samples, default=0.0), 2),
        "n": len(samples),
    }


def report(summaries: list[dict[str, Any]], command: str) -> str:
    lines = [
        "# Reliability: fault soak over HTTP (scripts/soak.py)",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}, local Ray with 2 CPUs "
        "(the users, Ray and the stores share them), 2 API replicas, 2 hosts.",
        f"Command: `{command}`.",
        "",
        "Recovery: per fault, the seconds until every user had a write acknowledged again "
        "(for a SIGSTOP, from the SIGCONT); the next fault waits for it, so no fault is charged "
        "with another's. Users answer back to back, so it includes the ordinary latency of a "
        f"write under this load: the `{BASELINE}` row is the same measure taken once per round "
        "at a moment with no fault.",
        "",
        "Where a host kill's time goes (Ray starting a new worker process for the actor, then "
        "its imports and constructor, on cores the load keeps busy) and what would shorten it: "
        "docs/decisions/0006-host-restarts.md.",
    ]
    for summary in summaries:
        lines += [
            "",
            f"## {summary['store']}",
            "",
            f"{summary['users']} users ran templated sessions for {summary['seconds']} s, every "
            "write with an Idempotency-Key, retrying with the same key; "
            f"**{summary['writes_acknowledged']} writes acknowledged**. Faults applied: "
            + ", ".join(f"{kind} x{count}" for kind, count in sorted(summary["faults"].items()))
            + ".",
            "",
            "| fault | p50 (s) | p99 (s) | max (s) | n |",
            "|---|---|---|---|---|",
            *(
                f"| {kind} | {r['p50']} | {r['p99']} | {r['max']} | {r['n']} |"
                for kind, r in summary["recovery_s"].items()
            ),
            "",
            "Retried answers, by kind (each retried with the same key):",
            "",
            *(f"- {kind}: {count}" for kind, count in sorted(summary["retried"].items())),
            "",
            "Audit of the event store and the read model: "
            + (
                "**passed** (versions contiguous, every acknowledged write stored once, no widget "
                "answered twice, read model equal to a replay, fresh writes served)."
                if summary["audit_ok"]
                else "**failed**: " + "; ".join(summary["problems"])
            ),
        ]
    return "\n".join(lines) + "\n"


def soak_store(store: str, args: argparse.Namespace) -> dict[str, Any]:
    """One soak on fresh stores of a kind, in a fresh local Ray instance."""
    with TemporaryDirectory() as tmp, store_urls(store, Path(tmp)) as (events, read_model):
        settings = Settings(
            event_store_url=events,
            read_model_url=read_model,
            ray_namespace=f"soak-{uuid4().hex[:8]}",
            hosts=2,
            actor_retry_timeout_s=60.0,
        )
        env = {**settings_env(settings), "AGENTHOST_AUTH_JWT_SECRET": SECRET}
        with serving_api(settings, env) as url:
            return asyncio.run(soak_run(url, settings, store, args))


def show(console: Console, summary: dict[str, Any]) -> None:
    table = Table(
        "fault", "p50 s", "p99 s", "max s", "n", title=f"{summary['store']}: recovery per fault"
    )
    for kind, r in summary["recovery_s"].items():
        table.add_row(kind, str(r["p50"]), str(r["p99"]), str(r["max"]), str(r["n"]))
    console.print(table)
    console.print(
        f"writes acknowledged: {summary['writes_acknowledged']}; retried: {summary['retried']}"
    )
    console.print(
        "audit: " + ("passed" if summary["audit_ok"] else f"FAILED {summary['problems']}")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--store",
        choices=["sqlite", "postgres"],
        action="append",
        help="repeat for one soak per store (default: sqlite)",
    )
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between faults")
    parser.add_argument("--stop-seconds", type=float, default=3.0)
    parser.add_argument(
        "--settle-seconds",
        type=float,
        default=60.0,
        help="longest wait for every user after a fault",
    )
    parser.add_argument(
        "--restart-postgres", action="store_true", help="also restart PostgreSQL (postgres soak)"
    )
    parser.add_argument("--max-seconds", type=float, default=1800.0)
    parser.add_argument("--report", type=Path, default=REPORT)
    parser.add_argument("--no-report", action="store_true")
    parser.add_argument("--json-summary", action="store_true", help="print each summary as JSON")
    args = parser.parse_args()
    stores: list[str] = args.store or ["sqlite"]
    if "postgres" in stores and (reason := postgres_unreachable()):
        raise SystemExit(f"PostgreSQL unavailable: {reason}")
    if args.restart_postgres and "postgres" not in stores:
        raise SystemExit("--restart-postgres needs --store postgres")
    console = Console()
    summaries = []
    for store in stores:
        summary = soak_store(store, args)
        show(console, summary)
        if args.json_summary:
            print("SOAK_SUMMARY " + json.dumps(summary), flush=True)
        summaries.append(summary)
    command = (
        "python -m scripts.soak "
        + " ".join(f"--store {store}" for store in stores)
        + f" --users {args.users} --rounds {args.rounds} --interval {args.interval}"
        + (" --restart-postgres" if args.restart_postgres else "")
    )
    if not args.no_report:
        args.report.write_text(report(summaries, command))
        console.print(f"written to {args.report}")
    if not all(summary["audit_ok"] for summary in summaries):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
