"""The caller's side of the write path: route each command to its agent's host actor.

Used by Serve replicas, scripts and tests alike. Hosts are created on first use
(get-if-exists, detached, restarted forever). When a host dies mid-call the caller retries the
same command, with the same command id, until the restarted host answers: the activation
recognises a command it already applied, so a retry never acts twice.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from ray.actor import ActorHandle

from actors.agent_host import AgentHost, Drive, EphemeralBatch, HostConfig, HostInfo
from actors.placement import dedicated_name, host_index, host_name
from actors.restarts import call_through_restarts
from actors.settings import Settings
from domain.commands import Command, CommandResult, StartSession
from domain.session import ClientResponse
from domain.state import AgentState
from execution.executor import Outcome


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

    async def execute(self, command: Command) -> CommandResult:
        result: CommandResult = await self._call(command.agent_id, "execute", command)
        return result

    async def agent_state(self, agent_id: str) -> AgentState | None:
        """Strongly consistent read through the agent's activation (not the read model)."""
        state: AgentState | None = await self._call(agent_id, "agent_state", agent_id)
        return state

    async def start_session(self, command: StartSession) -> CommandResult:
        """Start a session the executor can drive (a default template when no LLM is set)."""
        result: CommandResult = await self._call(command.agent_id, "start_session", command)
        return result

    async def start_and_drive(self, command: StartSession) -> Drive:
        """Start a session and drive it to rest, in one actor call (the API's hot path)."""
        drive: Drive = await self._call(command.agent_id, "start_and_drive", command)
        return drive

    async def respond_and_drive(
        self, agent_id: str, response: ClientResponse, command_id: UUID | None = None
    ) -> Drive:
        """Answer the widget and drive the session to rest, in one actor call."""
        drive: Drive = await self._call(
            agent_id, "respond_and_drive", agent_id, response, command_id or uuid4()
        )
        return drive

    async def advance(self, agent_id: str) -> Outcome:
        """Drive the agent's session until it rests (waits on the user or ends)."""
        outcome: Outcome = await self._call(agent_id, "advance", agent_id)
        return outcome

    async def respond(
        self, agent_id: str, response: ClientResponse, command_id: UUID | None = None
    ) -> CommandResult:
        """Record the user's answer; the id is fixed before the first attempt, so a retry
        through a host restart is recognised, not applied twice."""
        result: CommandResult = await self._call(
            agent_id, "respond", agent_id, response, command_id or uuid4()
        )
        return result

    async def ephemeral_since(self, agent_id: str, after: int) -> EphemeralBatch:
        """Token deltas and tool progress of the agent's current drive, after ``after``."""
        batch: EphemeralBatch = await self._call(agent_id, "ephemeral_since", agent_id, after)
        return batch

    async def host_info(self, agent_id: str) -> HostInfo:
        """Which process and node serve the agent now (retried while its host restarts)."""
        info: HostInfo = await self._call(agent_id, "info")
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

    async def _call(self, agent_id: str, method: str, *args: Any) -> Any:
        return await call_through_restarts(
            lambda: self.host_for(agent_id),
            method,
            *args,
            timeout_s=self._settings.actor_retry_timeout_s,
        )
