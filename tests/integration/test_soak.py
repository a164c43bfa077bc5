"""The fault soak's short variant (scripts/soak.py): one round of every fault over real HTTP.

The soak runs in its own process with its own Ray instance, whose workers it kills by pid:
the session's shared Ray instance is never touched. The long run (``--rounds 100``, SQLite and
PostgreSQL with its restarts) writes docs/reports/reliability.md; this variant, on SQLite to
keep the suite's time, checks that the audit passes and that every user was served again
after every fault (the PostgreSQL store's own faults are tests/integration/
test_postgres_liveness.py's).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
FAULTS = {"host_kill", "projector_kill", "replica_kill", "host_stop"}


def soak(store: str) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "scripts.soak",
        *("--store", store, "--rounds", "4", "--users", "4", "--interval", "0.5"),
        *("--stop-seconds", "1", "--settle-seconds", "30", "--no-report", "--json-summary"),
    ]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    lines = [line for line in done.stdout.splitlines() if line.startswith("SOAK_SUMMARY ")]
    assert lines, f"no summary (rc {done.returncode}): {done.stdout[-2000:]}{done.stderr[-2000:]}"
    summary: dict[str, Any] = json.loads(lines[-1].removeprefix("SOAK_SUMMARY "))
    assert done.returncode == 0, summary["problems"]
    return summary


def test_under_every_fault_nothing_acknowledged_is_lost_and_every_user_is_served_again() -> None:
    # Given users running sessions over HTTP, every write with an Idempotency-Key
    # When a host is killed, the projector is killed, a replica is killed, a host is frozen
    summary = soak("sqlite")

    # Then the store holds every acknowledged write once, the read model equals a replay,
    # fresh writes are served, and every user was served again after every fault
    assert summary["audit_ok"], summary["problems"]
    assert summary["faults"] == dict.fromkeys(FAULTS, 1)
    measured = {kind for kind, r in summary["recovery_s"].items() if r["n"] >= 1}
    assert measured == {*FAULTS, "none (baseline)"}
    assert summary["writes_acknowledged"] >= 4 * len(FAULTS)
