"""The Ray actor that hosts agent activations (many when sharded, one when dedicated).

Thin transport: it runs one ``AgentApplication`` and answers whatever use case it is sent.
Hosts are detached, named, restartable actors; a restarted host starts empty and rehydrates
each agent lazily from its stream on the agent's next command. A dedicated host (one agent's)
exits for good once its application is idle; the runtime recreates it on the agent's next
request.
"""

from __future__ import annotations

import os
from typing import Any, TypeVar, overload

import psutil
import ray
from pydantic import BaseModel
from ray import ObjectRef

from actors.rollout import refuse_if_retired
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

    async def __init__(self, config: HostConfig, namespace: str, generation: str) -> None:  # type: ignore[misc]
        # An old generation's host would hold agents the new generation's hosts hold too.
        await refuse_if_retired(namespace, generation)
        self._app = build_application(config)
        self._leaving: ObjectRef[None] | None = None
        if config.exit_when_idle:
            self._app.when_idle(self._exit_soon)

    @overload
    async def handle(self, request: Command) -> CommandResult: ...

    @overload
    async def handle(self, request: UseCase[R]) -> R: ...

    async def handle(self, request: Command | UseCase[Any]) -> Any:
        return await self._app.handle(request)

    async def passivate_idle(self, idle_for_s: float | None = None) -> int:
        return self._app.passivate_idle(idle_for_s)

    async def exit_if_idle(self) -> None:
        """Exit for good (no restart) unless a request came in since the application said it
        was idle: Ray lets running calls finish and fails queued ones with an actor error,
        which the runtime answers by finding or recreating the host."""
        if self._app.is_idle(0.0):
            ray.actor.exit_actor()  # type: ignore[no-untyped-call]
        self._leaving = None  # busy again: the next idle spell asks anew

    def _exit_soon(self) -> None:
        """``exit_actor`` works only inside an actor call, so the host calls itself, once:
        an exiting worker waits for the calls it has sent, so one sent every passivation
        round would keep it from ever finishing."""
        if self._leaving is None:
            self._leaving = ray.get_runtime_context().current_actor.exit_if_idle.remote()

    async def info(self) -> HostInfo:
        agent_ids = self._app.agent_ids()
        return HostInfo(
            pid=os.getpid(),
            node_id=ray.get_runtime_context().get_node_id(),
            rss_bytes=psutil.Process().memory_info().rss,
            activations=len(agent_ids),
            agent_ids=agent_ids,
        )
