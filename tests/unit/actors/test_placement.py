"""Agent -> host mapping: stable, balanced, and moving few agents when hosts are added."""

from __future__ import annotations

from collections import Counter
from uuid import uuid4

import pytest
from pydantic import SecretStr

from actors.placement import (
    dedicated_name,
    generation_of,
    host_index,
    host_name,
    projector_name,
    sweeper_name,
)
from actors.settings import Settings
from execution.llm.settings import LlmSettings

AGENTS = [str(uuid4()) for _ in range(4000)]


def test_mapping_is_stable_and_in_range() -> None:
    for agent_id in AGENTS[:200]:
        index = host_index(agent_id, 7)
        assert 0 <= index < 7
        assert host_index(agent_id, 7) == index


def test_mapping_is_reproducible_across_processes() -> None:
    # Pinned values: a salted hash() would differ between processes (and hosts would
    # disagree on where an agent lives); changing the hash moves every agent.
    assert [host_index(f"agent-{n}", 4) for n in range(12)] == [3, 1, 2, 0, 1, 0, 3, 1, 1, 2, 3, 0]
    assert host_index("6f1c2b1e-0000-4000-8000-000000000000", 1) == 0


def test_agents_spread_evenly() -> None:
    counts = Counter(host_index(agent_id, 4) for agent_id in AGENTS)
    assert set(counts) == {0, 1, 2, 3}
    assert max(counts.values()) < 1.15 * len(AGENTS) / 4


def test_adding_a_host_moves_only_its_share() -> None:
    moved = sum(host_index(a, 4) != host_index(a, 5) for a in AGENTS)
    assert moved < 1.3 * len(AGENTS) / 5
    assert all(host_index(a, 5) == 4 for a in AGENTS if host_index(a, 4) != host_index(a, 5))


def test_names_carry_the_generation_and_bad_counts_are_refused() -> None:
    names = [
        host_name("g1", 3),
        dedicated_name("g1", "abc"),
        projector_name("g1"),
        sweeper_name("g1"),
    ]
    assert names == ["agent-host-g1-3", "agent:g1:abc", "agent-projector-g1", "agent-sweeper-g1"]
    assert {generation_of(name) for name in names} == {"g1"}
    assert generation_of("agent-deployment") is None
    assert generation_of("SERVE_CONTROLLER_ACTOR") is None
    with pytest.raises(ValueError, match="at least one"):
        host_index("a", 0)


def test_the_generation_follows_every_setting_actors_are_created_with() -> None:
    base = Settings(hosts=2)
    assert Settings(hosts=2).generation == base.generation
    assert base.model_copy(update={"ray_namespace": "other"}).generation == base.generation
    changed = [
        base.model_copy(update={"hosts": 3}),
        base.model_copy(update={"event_store_url": "postgresql://db/x"}),
        base.model_copy(update={"snapshot_every": 7}),
        base.model_copy(update={"llm": LlmSettings(api_key=SecretStr("rotated"))}),
    ]
    generations = {settings.generation for settings in changed}
    assert len(generations) == len(changed)
    assert base.generation not in generations
    assert "rotated" not in str(generations)
