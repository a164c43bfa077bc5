"""The caller's side of the write path: send each use case to its agent's host actor.

Used by Serve replicas, the sweeper, scripts and tests alike. Hosts are created on first use
(get-if-exists, detached, restarted forever). When a host dies mid-call the caller sends the
same request again, with the same command id, until the restarted host answers: the
activation recognises a command it already applied, so a retry never acts twice.

Sharded hosts are a fixed set. A dedicated host (one per agent) is a process spent on one
agent id, so it is started only for a request that may create its agent, or for one whose
agent is in the log and visible to its caller (checked here, against the log, before any
actor exists); anything else is the missing agent's ``AgentNotFound``. Idle dedicated hosts
exit for good, and the next request for their agent passes the same check again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

import ray
from ray.actor import ActorHandle
from ray.exceptions import RayActorError

from actors.agent_host import AgentHost, HostInfo
from actors.placement import dedicated_name, host_index, host_name
from actors.restarts import TASK_RETRIES_THROUGH_RESTARTS, call_through_restarts
from actors.rollout import fence
from actors.settings import Settings
from application.agent_repository import AgentRepository
from application.bootstrap import HostConfig
from application.use_case import UseCase
from domain.access import Caller, Permission, may
from domain.commands import Command, CommandResult
from domain.errors import AgentNotFound
from eventstore.factory import open_event_store
from eventstore.port import EventStore

R = TypeVar("R")
T = TypeVar("T")


class _NoLiveHost(AgentNotFound):
    """The agent has no running dedicated host, and this request has not been admitted to
    start one."""


def host_config(settings: Settings) -> HostConfig:
    return HostConfig(
        event_store_url=settings.event_store_url,
        snapshot_every=settings.snapshot_every,
        idle_timeout_s=settings.idle_timeout_s,
        max_activations=1 if settings.placement == "dedicated" else settings.max_activations,
        llm=settings.llm,
        exit_when_idle=settings.placement == "dedicated",
    )


def host_options(settings: Settings, name: str) -> dict[str, Any]:
    """How every host actor is created: named, detached, restarted forever, spread out.
    Sharded hosts have their calls resent by Ray across a restart; a dedicated host exits
    for good when idle (its own ``exit_if_idle`` call must not be resent), and its callers
    recreate it."""
    dedicated = settings.placement == "dedicated"
    return {
        "name": name,
        "namespace": settings.ray_namespace,
        "lifetime": "detached",
        "get_if_exists": True,
        "max_restarts": -1,
        "max_task_retries": 0 if dedicated else TASK_RETRIES_THROUGH_RESTARTS,
        "max_concurrency": 1000,
        "num_cpus": 0,
        "scheduling_strategy": "SPREAD",
    }


class AgentRuntime:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._config = host_config(settings)
        self._generation = settings.generation
        self._handles: dict[str, ActorHandle[Any]] = {}
        self._opening = asyncio.Lock()
        self._store: EventStore | None = None

    @overload
    async def handle(self, request: Command) -> CommandResult: ...

    @overload
    async def handle(self, request: UseCase[R]) -> R: ...

    async def handle(self, request: Command | UseCase[Any]) -> Any:
        """Answer ``request`` on its agent's host: the one call path of every use case."""
        if self._settings.placement == "dedicated":
            return await self._on_dedicated(
                request.agent_id,
                request.caller,
                lambda host: host.handle.remote(request),
                may_create=request.may_create,
            )
        return await call_through_restarts(
            lambda: self.host_for(request.agent_id),
            lambda host: host.handle.remote(request),
            timeout_s=self._settings.actor_retry_timeout_s,
            fence=self._fence,
        )

    async def host_info(self, agent_id: str) -> HostInfo:
        """Which process and node serve the agent now (retried while its host restarts)."""
        if self._settings.placement == "dedicated":
            dedicated: HostInfo = await self._on_dedicated(
                agent_id, None, lambda host: host.info.remote(), may_create=False
            )
            return dedicated
        info: HostInfo = await call_through_restarts(
            lambda: self.host_for(agent_id),
            lambda host: host.info.remote(),
            timeout_s=self._settings.actor_retry_timeout_s,
            fence=self._fence,
        )
        return info

    def host_for(self, agent_id: str) -> ActorHandle[Any]:
        """The agent's host; a dedicated one only while it runs (else ``AgentNotFound``:
        requests go through ``handle``, which checks before it starts one)."""
        if self._settings.placement == "dedicated":
            return self._dedicated_host(self._dedicated_name(agent_id), start=False)
        return self._host(host_name(self._generation, host_index(agent_id, self._settings.hosts)))

    def sharded_hosts(self) -> list[ActorHandle[Any]]:
        return [self._host(host_name(self._generation, i)) for i in range(self._settings.hosts)]

    async def close(self) -> None:
        """Close the log connection the dedicated-placement check opened, if it did."""
        if self._store is not None:
            await self._store.close()
            self._store = None

    def _host(self, name: str) -> ActorHandle[Any]:
        handle = self._handles.get(name)
        if handle is None:
            options = host_options(self._settings, name)
            handle = AgentHost.options(**options).remote(  # type: ignore[attr-defined]
                self._config, self._settings.ray_namespace, self._generation
            )
            self._handles[name] = handle
        return handle

    def _dedicated_name(self, agent_id: str) -> str:
        return dedicated_name(self._generation, agent_id)

    async def _fence(self) -> None:
        await fence(self._settings)

    # ------------------------------------------------------------- dedicated placement

    async def _on_dedicated(
        self,
        agent_id: str,
        caller: Caller | None,
        call: Callable[[ActorHandle[Any]], Awaitable[T]],
        *,
        may_create: bool,
    ) -> T:
        """``call`` on the agent's own host: the running one, else one started only once the
        request is admitted (it may create the agent, or the agent exists and the caller may
        see it). Checked again whenever the host has gone, so a cached handle to a host that
        exited admits nobody."""
        name = self._dedicated_name(agent_id)
        if not may_create:
            try:
                return await self._through_restarts(name, call, start=False)
            except _NoLiveHost:
                await self._admit(agent_id, caller)
        return await self._through_restarts(name, call, start=True)

    async def _through_restarts(
        self, name: str, call: Callable[[ActorHandle[Any]], Awaitable[T]], *, start: bool
    ) -> T:
        async def forgetting_a_dead_host(host: ActorHandle[Any]) -> T:
            try:
                return await call(host)
            except RayActorError:
                self._handles.pop(name, None)  # it may have exited for good: look again
                raise

        return await call_through_restarts(
            lambda: self._dedicated_host(name, start=start),
            forgetting_a_dead_host,
            timeout_s=self._settings.actor_retry_timeout_s,
            fence=self._fence,
        )

    def _dedicated_host(self, name: str, *, start: bool) -> ActorHandle[Any]:
        """The cached or running host named ``name``; if none runs, a new one when ``start``
        (the request was admitted), else ``_NoLiveHost``."""
        handle = self._handles.get(name)
        if handle is not None:
            return handle
        try:
            handle = ray.get_actor(name, namespace=self._settings.ray_namespace)
        except ValueError:  # no such actor: none running, or it exited
            if not start:
                raise _NoLiveHost(f"no running host {name}") from None
            return self._host(name)
        self._handles[name] = handle
        return handle

    async def _admit(self, agent_id: str, caller: Caller | None) -> None:
        """Refuse, as if it were missing, an agent not in the log or one ``caller`` may not
        see (the system, ``None``, sees every agent that exists)."""
        loaded = await AgentRepository(await self._log()).load(agent_id)
        agent = loaded.agent
        if not agent.exists or (
            caller is not None and not may(agent.state, caller, Permission.READ)
        ):
            raise AgentNotFound(f"agent {agent_id} does not exist")

    async def _log(self) -> EventStore:
        async with self._opening:
            if self._store is None:
                self._store = await open_event_store(self._settings.event_store_url)
            return self._store
