"""Memory of the activations' dedup windows: what 10,000 active agents cost a host for them.

    python -m scripts.bench_dedup [--agents 10000] [--window-class MODULE:CLASS] [--no-report]

Fills ``--agents`` default-size windows with two-event commands that carry a request
fingerprint (the worst case an Idempotency-Key client makes) and reports the RSS growth and
the Python heap growth (tracemalloc) per window. ``--window-class`` measures another
implementation with the same ``add`` signature (an older commit's), so a before/after pair is
the same script on two trees. Writes section ``bench_dedup`` of docs/reports/agent-perf.md.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import importlib
import tracemalloc
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4, uuid5

import psutil
from rich.console import Console

from eventstore.port import AppendResult
from scripts.bench_report import machine, write_section

KB = 1024
WINDOW_EVENTS = 2048
EVENTS_PER_COMMAND = 2


def window_class(spec: str) -> Any:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def filled(cls: Any) -> Any:
    window = cls()
    for version in range(EVENTS_PER_COMMAND, WINDOW_EVENTS + 1, EVENTS_PER_COMMAND):
        command: UUID = uuid4()
        ids = [uuid5(command, str(n)) for n in range(EVENTS_PER_COMMAND)]
        fingerprint = hashlib.sha256(command.bytes).hexdigest()
        window.add(ids, AppendResult(version, version * 7), fingerprint)
    return window


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--window-class", default="application.dedup_window:DedupWindow")
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args()
    cls = window_class(args.window_class)
    process = psutil.Process()
    gc.collect()
    rss_before = process.memory_info().rss
    tracemalloc.start()
    heap_before = tracemalloc.get_traced_memory()[0]
    windows = [filled(cls) for _ in range(args.agents)]
    gc.collect()
    heap = tracemalloc.get_traced_memory()[0] - heap_before
    tracemalloc.stop()
    rss = process.memory_info().rss - rss_before
    per_window_kb = heap / len(windows) / KB
    rss_mb = rss / KB / KB
    line = (
        f"| `{args.window_class}` | {args.agents} | {per_window_kb:.1f} KB | "
        f"{rss_mb:.0f} MB | {rss_mb / 1024 * 10_000 / args.agents:.2f} GB |"
    )
    Console().print(line)
    command = f"python -m scripts.bench_dedup --agents {args.agents}"
    body = "\n".join(
        [
            "## Dedup windows: memory per active agent (scripts/bench_dedup.py)",
            "",
            f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}. "
            f"Command: `{command}`. Each window holds its default {WINDOW_EVENTS} events "
            f"({EVENTS_PER_COMMAND}-event commands with a request fingerprint): what every "
            "active agent keeps to answer a retry without a store round trip.",
            "",
            "| window | windows | heap per window | RSS growth | at 10,000 agents |",
            "|---|---|---|---|---|",
            line,
        ]
    )
    if not args.no_report:
        write_section("bench_dedup", body)


if __name__ == "__main__":
    main()
