"""Shared by the benchmarks: percentiles, and rewriting one section of agent-perf.md."""

from __future__ import annotations

import os
import platform
import re
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

REPORT = Path(__file__).resolve().parents[1] / "docs" / "reports" / "agent-perf.md"
HEADER = (
    "# Agent Host performance report\n\n"
    "Each section is written by the benchmark named in it; rerun the command shown to refresh "
    "it. Figures are milliseconds unless stated.\n"
)


@dataclass(frozen=True)
class Percentiles:
    p50: float
    p95: float
    p99: float
    n: int

    @classmethod
    def of(cls, samples_ms: list[float]) -> Percentiles:
        if len(samples_ms) < 2:
            raise ValueError("need at least two samples")
        cuts = statistics.quantiles(samples_ms, n=100, method="inclusive")
        return cls(p50=cuts[49], p95=cuts[94], p99=cuts[98], n=len(samples_ms))

    def cells(self) -> str:
        return f"{self.p50:.2f} | {self.p95:.2f} | {self.p99:.2f} | {self.n}"


def machine() -> str:
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
        f"{platform.system()} {platform.release()}"
    )


def write_section(name: str, body: str, report: Path = REPORT) -> None:
    """Replace (or add) the section between this benchmark's markers, leaving others intact."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.rstrip()}\n{end}\n"
    text = report.read_text() if report.exists() else HEADER
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end) + r"\n?", re.DOTALL)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else f"{text}\n{block}"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(text)
