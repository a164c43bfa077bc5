"""The application one host runs: it answers every use case, one agent at a time per agent.

Commands go to the agent's single-writer activation (``application.activation``); use cases
(``application.use_cases``) compose commands, the stateless executor's drives and queries. No
Ray here: a Ray host actor wraps one application, and tests or benchmarks run it in-process.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

from application.activations import Activations
from application.agent_repository import AgentRepository
from application.drives import Drives
from application.live_events import LiveEvents
from application.replies import SessionReply
from application.use_case import UseCase
from domain.commands import Command, CommandResult
from domain.ids import stream_name
from domain.state import AgentState
from eventstore.port import EventStore
from execution.executor import Outcome, ProactiveAgentExecutor
from execution.llm.port import LlmProvider
from execution.server_tools import ServerToolRegistry

R = TypeVar("R")


class AgentApplication:
    def __init__(
        self,
        open_store: Callable[[], Awaitable[EventStore]],
        *,
        snapshot_every: int = 100,
        idle_timeout_s: float = 300.0,
        max_activations: int = 10_000,
        llm: LlmProvider | None = None,
        tools: ServerToolRegistry | None = None,
    ) -> None:
        self._open_store = open_store
        self._snapshot_every = snapshot_every
        self._idle_timeout_s = idle_timeout_s
        self._max_activations = max_activations
        self._opening = asyncio.Lock()
        self._store: EventStore | None = None
        self._activations: Activations | None = None
        self._passivator: asyncio.Task[None] | None = None
        self.live = LiveEvents()
        self.drives = Drives()
        self.executor = ProactiveAgentExecutor(
            self, llm=llm, tools=tools or ServerToolRegistry(), publish=self.live.publish
        )

    @overload
    async def handle(self, request: Command) -> CommandResult: ...

    @overload
    async def handle(self, request: UseCase[R]) -> R: ...

    async def handle(self, request: Command | UseCase[Any]) -> Any:
        if isinstance(request, Command):
            return await self.execute(request)
        return await request.run(self)

    # ------------------------------------------------------------- what use cases build on

    async def execute(self, command: Command) -> CommandResult:
        """Decide ``command`` in its agent's activation: persisted before it answers."""
        activations = await self._opened()
        return await activations.of(command.agent_id).execute(command)

    async def agent_state(self, agent_id: str) -> AgentState | None:
        """The committed state, strongly consistent; None if the agent does not exist."""
        activations = await self._opened()
        return await activations.of(agent_id).state()

    async def drive(self, agent_id: str) -> Outcome:
        """Drive the agent's session until it rests; one drive per agent at a time here."""
        return await self.drives.run(agent_id, lambda: self.executor.advance(agent_id))

    async def drive_after(self, result: CommandResult, *, drive: bool = True) -> SessionReply:
        """Drive the session ``result`` moved, and answer where it came to rest (with no
        ``drive``: where the command left it)."""
        if not drive:
            return SessionReply(
                result=result, outcome=None, session=result.session, position=result.position
            )
        outcome = await self.drive(result.agent_id)
        state = await self.agent_state(result.agent_id)
        store = await self.store()
        later = await store.read(stream_name(result.agent_id), from_version=result.version + 1)
        return SessionReply(
            result=result,
            outcome=outcome,
            session=state.active_session if state is not None else None,
            position=later[-1].position if later else result.position,
        )

    async def store(self) -> EventStore:
        await self._opened()
        assert self._store is not None
        return self._store

    # ------------------------------------------------------------- the host's housekeeping

    def passivate_idle(self, idle_for_s: float | None = None) -> int:
        return self._activations.passivate_idle(idle_for_s) if self._activations else 0

    def agent_ids(self) -> tuple[str, ...]:
        return self._activations.agent_ids() if self._activations else ()

    async def close(self) -> None:
        if self._passivator is not None:
            self._passivator.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._passivator
        if self._store is not None:
            await self._store.close()

    async def _opened(self) -> Activations:
        if self._activations is not None:
            return self._activations
        async with self._opening:
            if self._activations is None:
                self._store = await self._open_store()
                self._activations = Activations(
                    AgentRepository(self._store),
                    snapshot_every=self._snapshot_every,
                    idle_timeout_s=self._idle_timeout_s,
                    max_activations=self._max_activations,
                    on_passivate=self._forget,
                )
                self._passivator = asyncio.create_task(self._passivate_forever())
            return self._activations

    def _forget(self, agent_id: str) -> None:
        self.live.forget(agent_id)
        self.drives.forget(agent_id)

    async def _passivate_forever(self) -> None:
        interval = max(self._idle_timeout_s / 4, 0.05)
        while True:
            await asyncio.sleep(interval)
            self.passivate_idle()
