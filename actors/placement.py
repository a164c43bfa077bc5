"""Where an agent lives: actor names and the stable agent -> host mapping."""

from __future__ import annotations

import hashlib

HOST_NAME_PREFIX = "agent-host-"
DEDICATED_NAME_PREFIX = "agent:"
PROJECTOR_NAME = "agent-projector"
SWEEPER_NAME = "agent-sweeper"


def host_name(index: int) -> str:
    return f"{HOST_NAME_PREFIX}{index}"


def dedicated_name(agent_id: str) -> str:
    return f"{DEDICATED_NAME_PREFIX}{agent_id}"


def host_index(agent_id: str, hosts: int) -> int:
    """Rendezvous (highest-random-weight) hashing: stable across processes and restarts, and
    growing from N to N+1 hosts moves only ~1/(N+1) of the agents."""
    if hosts < 1:
        raise ValueError("need at least one host")
    return max(range(hosts), key=lambda index: _weight(agent_id, index))


def _weight(agent_id: str, index: int) -> int:
    digest = hashlib.blake2b(f"{index}\x1f{agent_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")
