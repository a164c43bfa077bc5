"""One drive per agent at a time on a host, and answers that wait their turn.

A drive (the executor taking steps until the session rests) may run for many seconds of LLM
time. A second request to drive the same agent waits for the running one, then drives again
from the stored state: it may come from a command the running drive has not seen. Answers an
agent's ``queue`` policy holds back go in arrival order (asyncio locks serve waiters FIFO).
A drive that found its session stuck is remembered with the agent's version, so a sweep does
not try it again (an LLM call, a warning) every round until something moves the agent.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from execution.executor import Outcome

MAX_STUCK_REMEMBERED = 10_000


class Drives:
    def __init__(self) -> None:
        self._running: dict[str, asyncio.Task[Outcome]] = {}
        self._answer_queues: dict[str, asyncio.Lock] = {}
        self._stuck: OrderedDict[str, int] = OrderedDict()

    def is_running(self, agent_id: str) -> bool:
        return agent_id in self._running

    async def run(self, agent_id: str, drive: Callable[[], Awaitable[Outcome]]) -> Outcome:
        await self.until_idle(agent_id)
        task = asyncio.ensure_future(drive())
        self._running[agent_id] = task
        try:
            return await task
        finally:
            del self._running[agent_id]

    async def until_idle(self, agent_id: str) -> None:
        while (running := self._running.get(agent_id)) is not None:
            await asyncio.wait({running})

    def answer_queue(self, agent_id: str) -> asyncio.Lock:
        return self._answer_queues.setdefault(agent_id, asyncio.Lock())

    def stuck_at(self, agent_id: str) -> int | None:
        """The agent version a drive last found stuck, if any."""
        return self._stuck.get(agent_id)

    def mark_stuck(self, agent_id: str, version: int) -> None:
        self._stuck[agent_id] = version
        self._stuck.move_to_end(agent_id)
        while len(self._stuck) > MAX_STUCK_REMEMBERED:
            self._stuck.popitem(last=False)

    def forget(self, agent_id: str) -> None:
        self._answer_queues.pop(agent_id, None)
        self._stuck.pop(agent_id, None)
