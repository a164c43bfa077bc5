"""The activations one host keeps in memory: created on first use, passivated when idle.

A host's memory follows its working set, not every agent it has ever seen: activations idle
for longer than the timeout are dropped, and the least recently used ones beyond a cap; a
dropped agent rehydrates from its stream on its next command.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from application.activation import AgentActivation
from application.agent_repository import AgentRepository


class Activations:
    def __init__(
        self,
        repository: AgentRepository,
        *,
        snapshot_every: int,
        idle_timeout_s: float,
        max_activations: int,
        on_passivate: Callable[[str], None] = lambda _: None,
    ) -> None:
        self._repository = repository
        self._snapshot_every = snapshot_every
        self._idle_timeout_s = idle_timeout_s
        self._max = max_activations
        self._on_passivate = on_passivate
        self._active: OrderedDict[str, AgentActivation] = OrderedDict()

    def of(self, agent_id: str) -> AgentActivation:
        """The agent's one activation. Synchronous on purpose: with no await between lookup
        and insert, two first commands cannot each create one (two writers for one agent)."""
        activation = self._active.get(agent_id)
        if activation is None:
            activation = AgentActivation(
                agent_id, self._repository, snapshot_every=self._snapshot_every
            )
            self._active[agent_id] = activation
            self._evict_beyond_cap()
        else:
            self._active.move_to_end(agent_id)
        return activation

    def passivate_idle(self, idle_for_s: float | None = None) -> int:
        """Drop activations idle for longer than ``idle_for_s`` (default: the timeout)."""
        limit = self._idle_timeout_s if idle_for_s is None else idle_for_s
        now = time.monotonic()
        idle = [
            agent_id
            for agent_id, activation in self._active.items()
            if not activation.busy and now - activation.last_used >= limit
        ]
        for agent_id in idle:
            self._drop(agent_id)
        return len(idle)

    def agent_ids(self) -> tuple[str, ...]:
        return tuple(self._active)

    def _evict_beyond_cap(self) -> None:
        excess = len(self._active) - self._max
        for agent_id in [a for a, act in self._active.items() if not act.busy][:excess]:
            del self._active[agent_id]

    def _drop(self, agent_id: str) -> None:
        del self._active[agent_id]
        self._on_passivate(agent_id)
