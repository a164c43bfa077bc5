"""What every attack test checks afterwards: the projector caught up and not stopped, nothing
written, and the victim's agent and session read back exactly as they were."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from tests.support.inprocess_api import InProcessApi


async def settled(api: InProcessApi) -> int:
    """Wait until the projector has applied the whole log; the log's last position."""
    for _ in range(250):
        status = await api.services.projector.status()
        assert status.stopped_by is None, status.stopped_by
        if status.lag == 0:
            return status.last_position
        await asyncio.sleep(0.02)
    raise AssertionError(f"the projector did not catch up: {status}")


@dataclass(frozen=True)
class AgentAsItWas:
    position: int
    agent: dict[str, Any]
    session: dict[str, Any]


async def as_it_is(api: InProcessApi, url: str, headers: dict[str, str]) -> AgentAsItWas:
    """The log's end, the agent at ``url`` and its session, read by its owner."""
    position = await settled(api)
    agent = await api.http.get(url, headers=headers)
    session = await api.http.get(f"{url}/session", headers=headers)
    assert (agent.status_code, session.status_code) == (200, 200), (agent.text, session.text)
    return AgentAsItWas(position, agent.json(), session.json())


async def assert_as_it_was(
    api: InProcessApi, url: str, headers: dict[str, str], was: AgentAsItWas
) -> None:
    now = await as_it_is(api, url, headers)
    assert now.position == was.position, "the refused request wrote to the log"
    assert now == was
