"""Where an agent lives: actor names and the stable agent -> host mapping.

Every name carries the deployment's generation (``Settings.generation``, a digest of the
settings actors are created with): detached actors keep the settings they were created with,
so a redeploy that changes any of them must start new actors under new names, never reuse
old ones (``actors.rollout`` retires those).
"""

from __future__ import annotations

import hashlib

HOST_NAME_PREFIX = "agent-host-"
DEDICATED_NAME_PREFIX = "agent:"
PROJECTOR_NAME_PREFIX = "agent-projector-"
SWEEPER_NAME_PREFIX = "agent-sweeper-"
NAME_PREFIXES = (
    HOST_NAME_PREFIX,
    DEDICATED_NAME_PREFIX,
    PROJECTOR_NAME_PREFIX,
    SWEEPER_NAME_PREFIX,
)


def host_name(generation: str, index: int) -> str:
    return f"{HOST_NAME_PREFIX}{generation}-{index}"


def dedicated_name(generation: str, agent_id: str) -> str:
    return f"{DEDICATED_NAME_PREFIX}{generation}:{agent_id}"


def projector_name(generation: str) -> str:
    return f"{PROJECTOR_NAME_PREFIX}{generation}"


def sweeper_name(generation: str) -> str:
    return f"{SWEEPER_NAME_PREFIX}{generation}"


def generation_of(name: str) -> str | None:
    """The generation in one of our actor names; None for any other name."""
    for prefix in NAME_PREFIXES:
        if name.startswith(prefix):
            rest = name.removeprefix(prefix)
            separator = ":" if prefix == DEDICATED_NAME_PREFIX else "-"
            return rest.split(separator, 1)[0] if separator in rest else rest
    return None


def host_index(agent_id: str, hosts: int) -> int:
    """Rendezvous (highest-random-weight) hashing: stable across processes and restarts, and
    growing from N to N+1 hosts moves only ~1/(N+1) of the agents."""
    if hosts < 1:
        raise ValueError("need at least one host")
    return max(range(hosts), key=lambda index: _weight(agent_id, index))


def _weight(agent_id: str, index: int) -> int:
    digest = hashlib.blake2b(f"{index}\x1f{agent_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")
