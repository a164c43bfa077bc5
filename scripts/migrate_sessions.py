"""Migrate legacy Session streams onto Agents: one agent per (user, agent type).

Runs directly (asyncio, bounded concurrency) or, with ``--ray``, spreads users over Ray tasks
with a bounded number in flight; both read and write the store at ``--url``:

    python -m scripts.migrate_sessions --url sqlite:///var/agenthost/events.db [--dry-run]
    ray job submit --working-dir . -- python -m scripts.migrate_sessions --url ... --ray

Idempotent and resumable: every event id is derived from the legacy data (scripts/legacy/plan.py),
so a re-run appends only what an earlier, interrupted run did not. Bad legacy streams are
reported one by one and skipped; the run goes on. See docs/migration.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from domain.state import DEFAULT_MAX_HISTORY_SIZE
from eventstore.factory import open_event_store
from eventstore.port import EventStore, EventStoreError, WrongExpectedVersion
from scripts.legacy.model import (
    CREATED,
    STREAM_PREFIX,
    LegacyDataError,
    LegacySession,
    read_session,
)
from scripts.legacy.plan import AgentPlan, StreamProblem, plan_user

SCAN_PAGE = 5000


@dataclass
class Inventory:
    """Which legacy streams each user owns, found by one pass over the global log."""

    users: dict[str, list[str]] = field(default_factory=dict)
    problems: list[StreamProblem] = field(default_factory=list)

    @property
    def sessions(self) -> int:
        return sum(len(streams) for streams in self.users.values()) + len(self.problems)


async def scan(store: EventStore) -> Inventory:
    owner: dict[str, str] = {}
    bad: dict[str, str] = {}
    position = 0
    while page := await store.read_all(position, SCAN_PAGE):
        for event in page:
            if event.version != 1 or not event.stream.startswith(STREAM_PREFIX):
                continue
            user = event.data.get("user_id")
            if event.type != CREATED:
                bad[event.stream] = f"no {CREATED}: the stream starts with {event.type}"
            elif not isinstance(user, str) or not user:
                bad[event.stream] = f"{CREATED} lacks a user_id"
            else:
                owner[event.stream] = user
        position = page[-1].position
    users: dict[str, list[str]] = defaultdict(list)
    for stream, user in sorted(owner.items()):
        users[user].append(stream)
    inventory = Inventory(
        users=dict(sorted(users.items())),
        problems=[StreamProblem(stream, reason) for stream, reason in sorted(bad.items())],
    )
    return inventory


@dataclass
class AgentOutcome:
    agent_id: str
    user_id: str
    agent_type: str
    status: str
    """created | resumed | up_to_date | conflict | planned (dry run)"""
    sessions: int
    events_planned: int
    events_appended: int
    dropped_from_history: list[str]
    rejected_responses: int
    detail: str = ""


@dataclass
class UserOutcome:
    user_id: str
    agents: list[AgentOutcome] = field(default_factory=list)
    problems: list[StreamProblem] = field(default_factory=list)
    sessions_seen: int = 0


async def apply_plan(store: EventStore, plan: AgentPlan, dry_run: bool) -> AgentOutcome:
    """Append what of the plan the agent's stream lacks; the stream must hold a prefix of it."""
    stored = [event.id for event in await store.read(plan.stream)]
    planned = [event.id for event in plan.events]

    def outcome(status: str, appended: int = 0, detail: str = "") -> AgentOutcome:
        return AgentOutcome(
            agent_id=plan.agent_id,
            user_id=plan.user_id,
            agent_type=plan.agent_type.value,
            status=status,
            sessions=len(plan.sessions),
            events_planned=len(planned),
            events_appended=appended,
            dropped_from_history=list(plan.dropped_from_history),
            rejected_responses=plan.rejected_responses,
            detail=detail,
        )

    if stored[: len(planned)] == planned:
        return outcome("up_to_date")
    if stored != planned[: len(stored)]:
        return outcome(
            "conflict", detail="the agent's stream holds events the migration did not write"
        )
    missing = plan.events[len(stored) :]
    if dry_run:
        return outcome("planned", len(missing))
    try:
        await store.append(plan.stream, missing, expected_version=len(stored))
    except WrongExpectedVersion as error:
        return outcome("conflict", detail=f"written concurrently: {error}")
    return outcome("resumed" if stored else "created", len(missing))


async def migrate_user(
    store: EventStore, user_id: str, streams: Sequence[str], options: Options
) -> UserOutcome:
    result = UserOutcome(user_id, sessions_seen=len(streams))
    sessions: list[LegacySession] = []
    problems: list[StreamProblem] = []
    for stream in streams:
        try:
            session = read_session(stream, await store.read(stream))
        except LegacyDataError as error:
            problems.append(StreamProblem(stream, str(error)))
            continue
        if session.user_id != user_id:
            problems.append(StreamProblem(stream, "user_id changed while migrating"))
            continue
        sessions.append(session)
    plan = plan_user(
        user_id, sessions, max_history_size=options.max_history_size, problems=problems
    )
    result.problems = plan.problems
    for agent_plan in plan.agents:
        result.agents.append(await apply_plan(store, agent_plan, options.dry_run))
    return result


@dataclass(frozen=True)
class Options:
    dry_run: bool = False
    max_history_size: int = DEFAULT_MAX_HISTORY_SIZE
    concurrency: int = 8


@dataclass
class Summary:
    users: int = 0
    sessions_seen: int = 0
    sessions_migrated: int = 0
    sessions_skipped: int = 0
    agents: dict[str, int] = field(default_factory=dict)
    events_appended: int = 0
    events_planned: int = 0
    dropped_from_history: int = 0
    dropped_sessions: dict[str, list[str]] = field(default_factory=dict)
    """Per agent: finished sessions past max_history_size (in its log, not in its state)."""
    rejected_responses_not_migrated: int = 0
    problems: list[StreamProblem] = field(default_factory=list)
    conflicts: list[AgentOutcome] = field(default_factory=list)
    elapsed_s: float = 0.0

    def add(self, outcome: UserOutcome) -> None:
        self.users += 1
        self.sessions_seen += outcome.sessions_seen
        self.problems.extend(outcome.problems)
        self.sessions_skipped += len(outcome.problems)
        for agent in outcome.agents:
            self.agents[agent.status] = self.agents.get(agent.status, 0) + 1
            self.events_planned += agent.events_planned
            self.events_appended += agent.events_appended
            if agent.status == "conflict":
                self.conflicts.append(agent)
                self.sessions_skipped += agent.sessions
                continue
            self.sessions_migrated += agent.sessions
            self.dropped_from_history += len(agent.dropped_from_history)
            if agent.dropped_from_history:
                self.dropped_sessions[agent.agent_id] = agent.dropped_from_history
            self.rejected_responses_not_migrated += agent.rejected_responses

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["problems"] = [asdict(p) for p in self.problems]
        data["conflicts"] = [f"{c.agent_id}: {c.detail}" for c in self.conflicts]
        data["sessions_per_s"] = (
            round(self.sessions_seen / self.elapsed_s, 1) if self.elapsed_s else None
        )
        return data


class Reporter:
    """A progress bar on a terminal; structured JSON log lines anywhere else (a Ray job)."""

    def __init__(self, total_users: int, total_sessions: int, interactive: bool) -> None:
        self._total = total_users
        self._sessions = total_sessions
        self._done = 0
        self._started = time.perf_counter()
        self._next_log = 0
        self._bar: Any = None
        if interactive:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

            self._bar = Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task("migrating users", total=total_users)

    def advance(self, users: int, summary: Summary) -> None:
        self._done += users
        if self._bar is not None:
            self._bar.update(self._task, completed=self._done)
        elif self._done >= self._next_log or self._done == self._total:
            self._next_log = self._done + max(1, self._total // 20)
            log(
                "progress",
                users_done=self._done,
                users_total=self._total,
                sessions_done=summary.sessions_seen,
                sessions_total=self._sessions,
                events_appended=summary.events_appended,
                skipped=summary.sessions_skipped,
                elapsed_s=round(time.perf_counter() - self._started, 2),
            )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def log(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, "at": time.time(), **fields}), flush=True)


async def run_direct(
    url: str, options: Options, inventory: Inventory, report: Callable[[UserOutcome], None]
) -> None:
    store = await open_event_store(url)
    limit = asyncio.Semaphore(options.concurrency)

    async def one(user: str, streams: list[str]) -> None:
        async with limit:
            report(await _safe_migrate(store, user, streams, options))

    try:
        await asyncio.gather(*(one(u, s) for u, s in inventory.users.items()))
    finally:
        await store.close()


async def _safe_migrate(
    store: EventStore, user: str, streams: list[str], options: Options
) -> UserOutcome:
    """A failure of one user's migration is reported against their streams, not fatal."""
    try:
        return await migrate_user(store, user, streams, options)
    except (EventStoreError, ValueError) as error:
        failed = UserOutcome(user, sessions_seen=len(streams))
        failed.problems = [StreamProblem(s, f"not migrated: {error!r}") for s in streams]
        return failed


def _batches(users: dict[str, list[str]], size: int) -> Iterable[list[tuple[str, list[str]]]]:
    items = list(users.items())
    for start in range(0, len(items), size):
        yield items[start : start + size]


def migrate_batch(
    url: str, batch: list[tuple[str, list[str]]], options: Options
) -> list[UserOutcome]:
    """One Ray task: a batch of users on the task's own store connection."""

    async def run() -> list[UserOutcome]:
        store = await open_event_store(url)
        limit = asyncio.Semaphore(options.concurrency)

        async def one(user: str, streams: list[str]) -> UserOutcome:
            async with limit:
                return await _safe_migrate(store, user, streams, options)

        try:
            return list(await asyncio.gather(*(one(u, s) for u, s in batch)))
        finally:
            await store.close()

    return asyncio.run(run())


def run_ray(
    url: str,
    options: Options,
    inventory: Inventory,
    report: Callable[[UserOutcome], None],
    batch_users: int,
    max_in_flight: int,
) -> None:
    import ray

    ray.init(ignore_reinit_error=True, log_to_driver=False)
    remote = ray.remote(num_cpus=1, max_retries=3)(migrate_batch)
    in_flight: list[Any] = []
    tasks = 0
    for batch in _batches(inventory.users, batch_users):
        tasks += 1
        if len(in_flight) >= max_in_flight:
            done, in_flight = ray.wait(in_flight, num_returns=1)
            for outcome in ray.get(done[0]):
                report(outcome)
        in_flight.append(remote.remote(url, batch, options))
    while in_flight:
        done, in_flight = ray.wait(in_flight, num_returns=1)
        for outcome in ray.get(done[0]):
            report(outcome)
    log("ray", tasks=tasks, max_in_flight=max_in_flight)


def print_summary(summary: Summary, dry_run: bool, plan_lines: list[str]) -> None:
    if plan_lines:
        print("plan (agent, user, type, sessions, events to append, dropped from history):")
        print("\n".join(plan_lines))
    verb = "would append" if dry_run else "appended"
    print(
        f"{'DRY RUN: ' if dry_run else ''}{summary.users} users, {summary.sessions_seen} sessions:"
        f" {summary.sessions_migrated} migrated, {summary.sessions_skipped} skipped; agents "
        f"{dict(sorted(summary.agents.items()))}; {verb} {summary.events_appended} events "
        f"(of {summary.events_planned} planned); {summary.dropped_from_history} sessions kept "
        f"in the log but past max_history_size; {summary.rejected_responses_not_migrated} "
        f"rejected legacy submissions not carried over; {summary.elapsed_s:.2f} s"
    )
    for agent_id, dropped in sorted(summary.dropped_sessions.items()):
        print(f"  past the history bound of agent {agent_id}: {', '.join(dropped)}")
    for problem in summary.problems:
        print(f"  skipped {problem.stream}: {problem.reason}")
    for conflict in summary.conflicts:
        print(f"  conflict on agent {conflict.agent_id} ({conflict.user_id}): {conflict.detail}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="event store URL holding session-* streams")
    parser.add_argument("--dry-run", action="store_true", help="plan and count; write nothing")
    parser.add_argument("--max-history-size", type=int, default=DEFAULT_MAX_HISTORY_SIZE)
    parser.add_argument("--concurrency", type=int, default=8, help="users in flight per process")
    parser.add_argument("--only-users", type=int, default=None, help="migrate the first N users")
    parser.add_argument("--ray", action="store_true", help="spread users over Ray tasks")
    parser.add_argument("--batch-users", type=int, default=25, help="users per Ray task")
    parser.add_argument("--max-in-flight", type=int, default=8, help="Ray tasks in flight")
    parser.add_argument("--json", action="store_true", help="log lines and a JSON summary")
    return parser.parse_args(argv)


async def _scan(url: str) -> Inventory:
    store = await open_event_store(url)
    try:
        return await scan(store)
    finally:
        await store.close()


def migrate(args: argparse.Namespace) -> tuple[Summary, list[str]]:
    """One run as the command line describes it: the summary and (dry run) the plan lines."""
    options = Options(args.dry_run, args.max_history_size, args.concurrency)
    started = time.perf_counter()
    inventory = asyncio.run(_scan(args.url))
    if args.only_users is not None:
        inventory.users = dict(list(inventory.users.items())[: args.only_users])
    summary = Summary(problems=list(inventory.problems))
    summary.sessions_skipped = summary.sessions_seen = len(inventory.problems)
    interactive = sys.stderr.isatty() and not args.json
    reporter = Reporter(len(inventory.users), inventory.sessions, interactive)
    plan_lines: list[str] = []

    def report(outcome: UserOutcome) -> None:
        summary.add(outcome)
        if args.dry_run:
            plan_lines.extend(
                f"  {a.agent_id} {a.user_id} {a.agent_type} {a.sessions} "
                f"{a.events_appended} {len(a.dropped_from_history)}"
                for a in outcome.agents
            )
        reporter.advance(1, summary)

    try:
        if args.ray:
            run_ray(args.url, options, inventory, report, args.batch_users, args.max_in_flight)
        else:
            asyncio.run(run_direct(args.url, options, inventory, report))
    finally:
        reporter.close()
    summary.elapsed_s = time.perf_counter() - started
    return summary, sorted(plan_lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    summary, plan_lines = migrate(args)
    if args.json:
        log("summary", **summary.as_dict())
    else:
        print_summary(summary, args.dry_run, plan_lines)
    return 1 if summary.conflicts else 0


if __name__ == "__main__":
    sys.exit(main())
