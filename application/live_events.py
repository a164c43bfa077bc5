"""Live, never-stored events of the drives a host runs (token deltas, tool progress).

Viewers poll them by sequence number; a restarted host starts a new ``epoch`` and numbers from 1
again, which tells a viewer to start over instead of waiting for numbers it will never see.
"""

from __future__ import annotations

import itertools
from collections import deque
from uuid import uuid4

from pydantic import BaseModel

from execution.executor import EphemeralEvent

BUFFERED_PER_AGENT = 1000


class EphemeralBatch(BaseModel):
    """``epoch`` changes when the host restarts: a viewer then starts again from 0."""

    epoch: str
    events: tuple[tuple[int, EphemeralEvent], ...]


class LiveEvents:
    def __init__(self) -> None:
        self._epoch = uuid4().hex
        self._buffers: dict[str, deque[tuple[int, EphemeralEvent]]] = {}
        self._sequence = itertools.count(1)

    async def publish(self, event: EphemeralEvent) -> None:
        buffer = self._buffers.setdefault(event.agent_id, deque(maxlen=BUFFERED_PER_AGENT))
        buffer.append((next(self._sequence), event))

    def since(self, agent_id: str, after: int) -> EphemeralBatch:
        """The agent's events after sequence number ``after`` (0: all still buffered)."""
        buffered = self._buffers.get(agent_id, ())
        return EphemeralBatch(
            epoch=self._epoch, events=tuple((n, e) for n, e in buffered if n > after)
        )

    def forget(self, agent_id: str) -> None:
        self._buffers.pop(agent_id, None)
