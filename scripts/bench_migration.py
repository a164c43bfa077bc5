"""Migration throughput (legacy sessions/s) on SQLite and PostgreSQL, direct and on Ray.

    python -m scripts.bench_migration [--stores sqlite,postgres] [--sessions 2000] [--ray]

Each store starts empty (a temp SQLite file, a fresh PostgreSQL schema), gets ``--sessions``
generated legacy sessions, then is migrated once (timed: the scan, planning and every append)
and once more (the idempotent re-run, which appends nothing). Results go into
docs/reports/agent-perf.md (section ``migration``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any
from uuid import uuid4

import psycopg
from psycopg import sql
from rich.console import Console

from scripts import generate_legacy_sessions, migrate_sessions
from scripts.bench_report import machine, write_section

POSTGRES_URL = os.environ.get(
    "AGENTHOST_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def _store_url(name: str, workdir: Path) -> tuple[str, Callable[[], Coroutine[Any, Any, None]]]:
    async def nothing() -> None:
        return None

    if name == "sqlite":
        return f"sqlite:///{workdir / f'{uuid4().hex[:8]}.db'}", nothing
    if name == "postgres":
        schema = f"bench_mig_{uuid4().hex[:10]}"

        async def drop() -> None:
            async with await psycopg.AsyncConnection.connect(POSTGRES_URL, autocommit=True) as c:
                await c.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))

        return f"{POSTGRES_URL}?schema={schema}", drop
    raise ValueError(f"unknown store {name!r}")


def _migrate(url: str, *extra: str) -> migrate_sessions.Summary:
    args = migrate_sessions.parse_args(["--url", url, "--json", *extra])
    with contextlib.redirect_stdout(io.StringIO()):  # the per-user progress lines
        summary, _ = migrate_sessions.migrate(args)
    if summary.conflicts or summary.sessions_migrated == 0:
        raise RuntimeError(f"migration of {url} did not succeed: {summary.as_dict()}")
    return summary


def bench_one(name: str, sessions: int, mode: str, workdir: Path) -> tuple[str, str]:
    url, cleanup = _store_url(name, workdir)
    extra = ("--ray",) if mode == "ray" else ()
    try:
        asyncio.run(generate_legacy_sessions.main(["--url", url, "--sessions", str(sessions)]))
        first = _migrate(url, *extra)
        again = _migrate(url, *extra)
    finally:
        asyncio.run(cleanup())
    if again.events_appended:
        raise RuntimeError(f"the re-run on {name} appended {again.events_appended} events")
    rate = first.sessions_seen / first.elapsed_s
    rerun = again.sessions_seen / again.elapsed_s
    row = (
        f"| {name} | {mode} | {first.sessions_seen:,} | {first.events_appended:,} | "
        f"{first.elapsed_s:.2f} | {rate:,.0f} | {rerun:,.0f} |"
    )
    line = f"{name:8} {mode:6} {rate:8,.0f} sessions/s (re-run {rerun:,.0f}/s, appends 0)"
    return row, line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--ray", action="store_true", help="also measure the --ray mode")
    parser.add_argument("--no-report", action="store_true", help="print only")
    args = parser.parse_args()
    console = Console()
    modes = ["direct", "ray"] if args.ray else ["direct"]
    rows: list[str] = []
    load_before = os.getloadavg()[0]
    if args.ray:
        import ray

        ray.init(log_to_driver=False)  # started before timing: runs measure migration only
    with TemporaryDirectory() as tmp:
        for name in args.stores.split(","):
            for mode in modes:
                row, line = bench_one(name, args.sessions, mode, Path(tmp))
                rows.append(row)
                console.print(line)
    load_after = os.getloadavg()[0]
    command = (
        f"python -m scripts.bench_migration --stores {args.stores} --sessions {args.sessions}"
        + (" --ray" if args.ray else "")
    )
    body = "\n".join(
        [
            "## Migration: legacy sessions -> agents (scripts/bench_migration.py)",
            "",
            f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}; 1-minute load "
            f"average {load_before:.2f} at start, {load_after:.2f} at end (other work running "
            "on the machine makes the figures pessimistic).",
            f"Command: `{command}`.",
            "",
            "Each run starts from an empty store holding only generated legacy sessions "
            "(scripts/generate_legacy_sessions.py, seed 7). Time covers the whole run: the scan "
            "of the log, reading each session stream, planning through the domain and one "
            "append per agent. `direct`: one process, 8 users in flight; `ray`: tasks on a local "
            "Ray instance started before timing, 25 users per task, 8 tasks in flight, each "
            "task with its own store connection. The re-run column is the idempotent second "
            "run (0 events appended).",
            "",
            "| store | mode | sessions | events appended | seconds | sessions/s "
            "| re-run sessions/s |",
            "|---|---|---|---|---|---|---|",
            *rows,
        ]
    )
    if not args.no_report:
        write_section("migration", body)
    console.print(body)


if __name__ == "__main__":
    main()
