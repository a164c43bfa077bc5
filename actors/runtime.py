"""The caller's side of the write path: send each use case to its agent's host actor.

Used by Serve replicas, the sweeper, scripts and tests alike. Hosts are created on first use
(get-if-exists, detached, restarted forever). When a host dies mid-call the caller sends the
same request again, with the same command id, until the restarted host answers: the
activation recognises a command it already applied, so a retry never acts twice.
"""

from __future__ import annotations

from typing import Any, TypeVar, overload

from ray.actor import ActorHandle

from actors.agent_host import AgentHost, HostInfo
from actors.placement import dedicated_name, host_index, host_name
from actors.restarts import call_through_restarts
from actors.settings import Settings
from application.bootstrap import HostConfig
from application.use_case import UseCase
from domain.commands import Command, CommandResult

R = TypeVar("R")


def host_config(settings: Settings) -> HostConfig:
    return HostConfig(
        event_store_url=settings.event_store_url,
        snapshot_every=settings.snapshot_every,
        idle_timeout_s=settings.idle_timeout_s,
        max_activations=1 if settings.placement == "dedicated" else settings.max_activations,
        llm=settings.llm,
    )


def host_options(settings: Settings, name: str) -> dict[str, Any]:
    """How every host actor is created: named, detached, restarted forever, spread out."""
    return {
        "name": name,
        "namespace": settings.ray_namespace,
        "lifetime": "detached",
        "get_if_exists": True,
        "max_restarts": -1,
        "max_concurrency": 1000,
        "num_cpus": 0,
        "scheduling_strategy": "SPREAD",
    }


class AgentRuntime:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._config = host_config(settings)
        self._handles: dict[str, ActorHandle[Any]] = {}

    @overload
    async def handle(self, request: Command) -> CommandResult: ...

    @overload
    async def handle(self, request: UseCase[R]) -> R: ...

    async def handle(self, request: Command | UseCase[Any]) -> Any:
        """Answer ``request`` on its agent's host: the one call path of every use case."""
        return await call_through_restarts(
            lambda: self.host_for(request.agent_id),
            lambda host: host.handle.remote(request),
            timeout_s=self._settings.actor_retry_timeout_s,
        )

    async def host_info(self, agent_id: str) -> HostInfo:
        """Which process and node serve the agent now (retried while its host restarts)."""
        info: HostInfo = await call_through_restarts(
            lambda: self.host_for(agent_id),
            lambda host: host.info.remote(),
            timeout_s=self._settings.actor_retry_timeout_s,
        )
        return info

    def host_for(self, agent_id: str) -> ActorHandle[Any]:
        if self._settings.placement == "dedicated":
            return self._host(dedicated_name(agent_id))
        return self._host(host_name(host_index(agent_id, self._settings.hosts)))

    def sharded_hosts(self) -> list[ActorHandle[Any]]:
        return [self._host(host_name(index)) for index in range(self._settings.hosts)]

    def _host(self, name: str) -> ActorHandle[Any]:
        handle = self._handles.get(name)
        if handle is None:
            options = host_options(self._settings, name)
            handle = AgentHost.options(**options).remote(self._config)  # type: ignore[attr-defined]
            self._handles[name] = handle
        return handle
