"""Drives sessions that nobody is driving, and enforces template time limits.

A session moves when a caller asks (start, respond). If a host dies mid-drive and its caller
dies too, nothing would move the session again until the user's next request; and a session
left on a widget past its template's time limit must still expire. The detached sweeper
pages through the agents with an active session every ``sweep_interval_s`` and asks each one
to ``advance``: idempotent, so a session that is already resting just answers where it rests.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

import ray
from pydantic import BaseModel
from ray.actor import ActorHandle

from actors.placement import sweeper_name
from actors.rollout import refuse_if_retired
from actors.runtime import AgentRuntime
from actors.settings import Settings
from application.use_cases import DriveSession
from execution.executor import Outcome
from projections.factory import open_read_model
from projections.store import ReadModelStore

log = logging.getLogger(__name__)

PAGE = 200
CONCURRENCY = 8
FAILED = "failed"


class SweepReport(BaseModel):
    """How many agents were visited and where their sessions came to rest."""

    agents: int
    outcomes: dict[str, int]


async def sweep_sessions(read_model: ReadModelStore, runtime: AgentRuntime) -> SweepReport:
    """Advance every agent with an active session once (bounded concurrency)."""
    counts: Counter[str] = Counter()
    limit = asyncio.Semaphore(CONCURRENCY)

    async def advance(agent_id: str) -> None:
        async with limit:
            try:
                outcome: Outcome | str = await runtime.handle(DriveSession(agent_id=agent_id))
            except Exception:  # one agent's failure must not stop the sweep
                log.warning("sweep: agent %s could not advance", agent_id, exc_info=True)
                outcome = FAILED
            counts[str(outcome)] += 1

    after = ""
    while page := await read_model.agents_with_active_session(after_id=after, limit=PAGE):
        await asyncio.gather(*(advance(agent.id) for agent in page))
        after = page[-1].id
    return SweepReport(agents=sum(counts.values()), outcomes=dict(counts))


@ray.remote
class SessionSweeper:
    async def __init__(self, settings: Settings) -> None:  # type: ignore[misc]
        # An old generation's sweeper would route drives by the old host count.
        await refuse_if_retired(settings.ray_namespace, settings.generation)
        # Ray runs an async actor's __init__ on its event loop: tasks can start here.
        self._settings = settings
        self._runtime = AgentRuntime(settings)
        self._read_model = await open_read_model(settings.read_model_url)
        self._loop = asyncio.create_task(self._sweep_forever())

    async def sweep_once(self) -> SweepReport:
        return await sweep_sessions(self._read_model, self._runtime)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._settings.sweep_interval_s)
            try:
                report = await self.sweep_once()
            except Exception:  # the read model may be down: try again next round
                log.warning("session sweep failed", exc_info=True)
                continue
            if report.agents:
                log.info("session sweep: %s", report.outcomes)


def sweeper_handle(settings: Settings) -> ActorHandle[Any]:
    """Get (or start) the one detached sweeper of this namespace."""
    handle: ActorHandle[Any] = SessionSweeper.options(  # type: ignore[attr-defined]
        name=sweeper_name(settings.generation),
        namespace=settings.ray_namespace,
        lifetime="detached",
        get_if_exists=True,
        max_restarts=-1,
        num_cpus=0,
    ).remote(settings)
    return handle
