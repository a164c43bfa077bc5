"""Remove the node hosting an agent: it serves again from another node, nothing lost."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_agents_survive_the_loss_of_their_node(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "tests.integration.scenarios.node_failover", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["node_after"] != result["removed_node"]
    assert result["acknowledged"] >= 150
    assert result["stored_messages"] == result["acknowledged"]
    assert result["distinct_messages"] == result["acknowledged"]
    assert result["versions_contiguous"]
    assert result["state_equals_replay"]
