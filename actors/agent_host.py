"""The Ray actor that hosts agent activations (many when sharded, one when dedicated).

Thin transport: it runs one ``AgentApplication`` and answers whatever use case it is sent.
Hosts are detached, named, restartable actors; a restarted host starts empty and rehydrates
each agent lazily from its stream on the agent's next command.
"""

from __future__ import annotations

import os
from typing import Any, TypeVar, overload

import psutil
import ray
from pydantic import BaseModel

from application.bootstrap import HostConfig, build_application
from application.use_case import UseCase
from domain.commands import Command, CommandResult

R = TypeVar("R")


class HostInfo(BaseModel):
    pid: int
    node_id: str
    rss_bytes: int
    activations: int
    agent_ids: tuple[str, ...]


@ray.remote
class AgentHost:
    """An async actor, so different agents run concurrently (each one strictly in turn)."""

    def __init__(self, config: HostConfig) -> None:
        self._app = build_application(config)

    @overload
    async def handle(self, request: Command) -> CommandResult: ...

    @overload
    async def handle(self, request: UseCase[R]) -> R: ...

    async def handle(self, request: Command | UseCase[Any]) -> Any:
        return await self._app.handle(request)

    async def passivate_idle(self, idle_for_s: float | None = None) -> int:
        return self._app.passivate_idle(idle_for_s)

    async def info(self) -> HostInfo:
        agent_ids = self._app.agent_ids()
        return HostInfo(
            pid=os.getpid(),
            node_id=ray.get_runtime_context().get_node_id(),
            rss_bytes=psutil.Process().memory_info().rss,
            activations=len(agent_ids),
            agent_ids=agent_ids,
        )
