"""The Ray actor that hosts agent activations (many when sharded, one when dedicated).

Hosts are detached, named, restartable actors. A restarted host starts empty and rehydrates
each agent lazily from its stream on the agent's next command. Idle activations are
passivated (dropped from memory) after a timeout, and the least recently used ones beyond a
cap, so a host's memory follows its working set, not every agent it has ever seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import time
from collections import OrderedDict, deque
from uuid import UUID, uuid4

import psutil
import ray
from pydantic import BaseModel, ConfigDict, Field

from actors.activation import AgentActivation
from actors.agent_repository import AgentRepository
from domain.commands import Command, CommandResult, StartSession
from domain.errors import AgentNotFound
from domain.ids import stream_name
from domain.session import ClientResponse, Session
from domain.state import AgentState
from eventstore.factory import open_event_store
from eventstore.port import EventStore
from execution.agent_profiles import profile_of
from execution.executor import EphemeralEvent, Outcome, ProactiveAgentExecutor
from execution.llm.settings import LlmSettings, provider_from_settings
from execution.server_tools import ServerToolRegistry


class HostConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    event_store_url: str
    snapshot_every: int = 100
    idle_timeout_s: float = 300.0
    max_activations: int = 10_000
    llm: LlmSettings = Field(default_factory=lambda: LlmSettings(base_url=None))
    """The executor's LLM (no base URL: templated sessions only)."""


class HostInfo(BaseModel):
    pid: int
    node_id: str
    rss_bytes: int
    activations: int
    agent_ids: tuple[str, ...]


EPHEMERAL_BUFFER = 1000


class EphemeralBatch(BaseModel):
    """``epoch`` changes when the host restarts: a viewer then starts again from 0."""

    epoch: str
    events: tuple[tuple[int, EphemeralEvent], ...]


class Drive(BaseModel):
    """A command plus the drive it started, answered in one actor call: what the API returns
    after starting a session or answering a widget."""

    result: CommandResult
    outcome: Outcome
    session: Session | None
    position: int
    """Log position of the last event the command and its drive wrote."""


class AgentHostCore:
    """The host's logic, separate from Ray so the in-process baseline can run it too."""

    def __init__(self, config: HostConfig) -> None:
        self._config = config
        self._epoch = uuid4().hex
        self._activations: OrderedDict[str, AgentActivation] = OrderedDict()
        self._store: EventStore | None = None
        self._opening = asyncio.Lock()
        self._passivator: asyncio.Task[None] | None = None
        self._executor = ProactiveAgentExecutor(
            self,
            llm=provider_from_settings(config.llm),
            tools=ServerToolRegistry.with_installed(),
            publish=self._publish,
        )
        # Ephemeral events (token deltas, tool progress) of recent drives, per agent, for live
        # viewers to poll; never stored: a restarted host starts a new sequence.
        self._ephemeral: dict[str, deque[tuple[int, EphemeralEvent]]] = {}
        self._ephemeral_seq = itertools.count(1)
        self._driving: dict[str, asyncio.Task[Outcome]] = {}
        self._answer_queues: dict[str, asyncio.Lock] = {}  # asyncio locks serve in FIFO order

    async def execute(self, command: Command) -> CommandResult:
        activation = await self._activation(command.agent_id)
        return await activation.execute(command)

    async def agent_state(self, agent_id: str) -> AgentState | None:
        activation = await self._activation(agent_id)
        return await activation.state()

    async def start_session(self, command: StartSession) -> CommandResult:
        """Start a session with the config the executor can drive (see its session_config)."""
        state = await self.agent_state(command.agent_id)
        if state is None:
            raise AgentNotFound(f"agent {command.agent_id} does not exist")
        config = self._executor.session_config(state, command.config)
        return await self.execute(command.model_copy(update={"config": config}))

    async def start_and_drive(self, command: StartSession) -> Drive:
        return await self._drive_after(await self.start_session(command))

    async def respond_and_drive(
        self, agent_id: str, response: ClientResponse, command_id: UUID | None = None
    ) -> Drive:
        return await self._drive_after(await self.respond(agent_id, response, command_id))

    async def _drive_after(self, result: CommandResult) -> Drive:
        outcome = await self.advance(result.agent_id)
        state = await self.agent_state(result.agent_id)
        store = await self._open_store()
        later = await store.read(stream_name(result.agent_id), from_version=result.version + 1)
        return Drive(
            result=result,
            outcome=outcome,
            session=state.active_session if state is not None else None,
            position=later[-1].position if later else result.position,
        )

    async def advance(self, agent_id: str) -> Outcome:
        """Drive the agent's session until it rests; one drive per agent at a time here.

        A call that arrives while a drive runs waits for it, then drives again from the
        stored state: the call may come from a command the running drive has not seen.
        """
        await self._until_no_drive(agent_id)
        drive = asyncio.create_task(self._executor.advance(agent_id))
        self._driving[agent_id] = drive
        try:
            return await drive
        finally:
            del self._driving[agent_id]

    async def respond(
        self, agent_id: str, response: ClientResponse, command_id: UUID | None = None
    ) -> CommandResult:
        """Validate and record the user's answer to the pending widget.

        While a drive of this agent runs, the agent's ``response_policy`` decides: ``reject``
        goes ahead at once (the aggregate refuses an answer nothing waits for: 409), ``queue``
        waits for the drive to rest first; queued answers then go in arrival order.
        """
        if agent_id in self._driving and await self._queues_responses(agent_id):
            async with self._answer_queue(agent_id):
                await self._until_no_drive(agent_id)
                return await self._executor.respond(agent_id, response, command_id=command_id)
        return await self._executor.respond(agent_id, response, command_id=command_id)

    async def _until_no_drive(self, agent_id: str) -> None:
        while (running := self._driving.get(agent_id)) is not None:
            await asyncio.wait({running})

    async def _queues_responses(self, agent_id: str) -> bool:
        state = await self.agent_state(agent_id)
        if state is None:
            return False
        return profile_of(state).response_policy == "queue"

    def _answer_queue(self, agent_id: str) -> asyncio.Lock:
        return self._answer_queues.setdefault(agent_id, asyncio.Lock())

    def ephemeral_since(self, agent_id: str, after: int) -> EphemeralBatch:
        """Ephemeral events after sequence number ``after`` (0: all still buffered)."""
        buffered = self._ephemeral.get(agent_id, ())
        return EphemeralBatch(
            epoch=self._epoch, events=tuple((n, e) for n, e in buffered if n > after)
        )

    async def _publish(self, event: EphemeralEvent) -> None:
        buffer = self._ephemeral.setdefault(event.agent_id, deque(maxlen=EPHEMERAL_BUFFER))
        buffer.append((next(self._ephemeral_seq), event))

    def passivate_idle(self, idle_for_s: float | None = None) -> int:
        """Drop activations idle for longer than ``idle_for_s`` (default: the timeout)."""
        limit = self._config.idle_timeout_s if idle_for_s is None else idle_for_s
        now = time.monotonic()
        idle = [
            agent_id
            for agent_id, activation in self._activations.items()
            if not activation.busy and now - activation.last_used >= limit
        ]
        for agent_id in idle:
            del self._activations[agent_id]
            self._ephemeral.pop(agent_id, None)
            self._answer_queues.pop(agent_id, None)
        return len(idle)

    def agent_ids(self) -> tuple[str, ...]:
        return tuple(self._activations)

    async def close(self) -> None:
        if self._passivator is not None:
            self._passivator.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._passivator
        if self._store is not None:
            await self._store.close()

    async def _activation(self, agent_id: str) -> AgentActivation:
        store = await self._open_store()
        # No await from here on: lookup and insert must be atomic, or concurrent first
        # commands would each create an activation, i.e. two writers for one agent.
        activation = self._activations.get(agent_id)
        if activation is None:
            repository = AgentRepository(store)
            activation = AgentActivation(
                agent_id, repository, snapshot_every=self._config.snapshot_every
            )
            self._activations[agent_id] = activation
            self._evict_beyond_cap()
        else:
            self._activations.move_to_end(agent_id)
        return activation

    def _evict_beyond_cap(self) -> None:
        excess = len(self._activations) - self._config.max_activations
        for agent_id in [a for a, act in self._activations.items() if not act.busy][:excess]:
            del self._activations[agent_id]

    async def _open_store(self) -> EventStore:
        async with self._opening:
            if self._store is None:
                self._store = await open_event_store(self._config.event_store_url)
                self._passivator = asyncio.create_task(self._passivate_forever())
            return self._store

    async def _passivate_forever(self) -> None:
        interval = max(self._config.idle_timeout_s / 4, 0.05)
        while True:
            await asyncio.sleep(interval)
            self.passivate_idle()


@ray.remote
class AgentHost:
    """Ray face of ``AgentHostCore``: an async actor, so agents run concurrently."""

    def __init__(self, config: HostConfig) -> None:
        self._core = AgentHostCore(config)

    async def execute(self, command: Command) -> CommandResult:
        return await self._core.execute(command)

    async def agent_state(self, agent_id: str) -> AgentState | None:
        return await self._core.agent_state(agent_id)

    async def start_session(self, command: StartSession) -> CommandResult:
        return await self._core.start_session(command)

    async def advance(self, agent_id: str) -> Outcome:
        return await self._core.advance(agent_id)

    async def start_and_drive(self, command: StartSession) -> Drive:
        return await self._core.start_and_drive(command)

    async def respond_and_drive(
        self, agent_id: str, response: ClientResponse, command_id: UUID | None = None
    ) -> Drive:
        return await self._core.respond_and_drive(agent_id, response, command_id)

    async def respond(
        self, agent_id: str, response: ClientResponse, command_id: UUID | None = None
    ) -> CommandResult:
        return await self._core.respond(agent_id, response, command_id)

    async def passivate_idle(self, idle_for_s: float | None = None) -> int:
        return self._core.passivate_idle(idle_for_s)

    async def ephemeral_since(self, agent_id: str, after: int) -> EphemeralBatch:
        return self._core.ephemeral_since(agent_id, after)

    async def info(self) -> HostInfo:
        agent_ids = self._core.agent_ids()
        return HostInfo(
            pid=os.getpid(),
            node_id=ray.get_runtime_context().get_node_id(),
            rss_bytes=psutil.Process().memory_info().rss,
            activations=len(agent_ids),
            agent_ids=agent_ids,
        )
