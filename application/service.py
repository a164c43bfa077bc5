"""The application one host runs: it answers every use case, one agent at a time per agent.

Commands go to the agent's single-writer activation (``application.activation``); use cases
(``application.use_cases``) compose commands, the stateless executor's drives and queries. No
Ray here: a Ray host actor wraps one application, and tests or benchmarks run it in-process.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

from application.activations import Activations
from application.agent_repository import AgentRepository
from application.drives import Drives
from application.live_events import LiveEvents
from application.replies import SessionReply
from application.use_case import UseCase
from domain.commands import Command, CommandResult
from domain.enums import SessionStatus
from domain.errors import SessionStuck
from domain.ids import stream_name
from domain.session import Session
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
        self._on_idle: Callable[[], None] | None = None
        self._in_flight = 0
        self._last_request = time.monotonic()
        self.live = LiveEvents()
        self.drives = Drives()
        self._tools = tools or ServerToolRegistry()
        self.executor = ProactiveAgentExecutor(
            self, llm=llm, tools=self._tools, publish=self.live.publish
        )

    @overload
    async def handle(self, request: Command) -> CommandResult: ...

    @overload
    async def handle(self, request: UseCase[R]) -> R: ...

    async def handle(self, request: Command | UseCase[Any]) -> Any:
        self._start_passivator()
        self._in_flight += 1
        try:
            if isinstance(request, Command):
                return await self.execute(request)
            return await request.run(self)
        finally:
            self._in_flight -= 1
            self._last_request = time.monotonic()

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
        """Drive the agent's session until it rests; one drive per agent at a time here.

        Raises SessionStuck at once, without a step, while the agent is at the version a
        drive last found stuck.
        """
        return await self.drives.run(agent_id, lambda: self._advance(agent_id))

    async def _advance(self, agent_id: str) -> Outcome:
        activation = (await self._opened()).of(agent_id)
        if (stuck_at := self.drives.stuck_at(agent_id)) == await activation.version():
            raise SessionStuck(f"agent {agent_id}: its session is stuck at version {stuck_at}")
        try:
            return await self.executor.advance(agent_id)
        except SessionStuck:
            self.drives.mark_stuck(agent_id, await activation.version())
            raise

    async def drive_after(self, result: CommandResult, *, drive: bool = True) -> SessionReply:
        """Drive the session ``result`` moved, and answer where it came to rest (with no
        ``drive``: where the command left it)."""
        if not drive:
            return SessionReply(
                result=result, outcome=None, session=result.session, position=result.position
            )
        try:
            outcome = await self.drive(result.agent_id)
        except SessionStuck:  # the command is stored: the reply says where it rests
            outcome = Outcome.STUCK
        if result.duplicate and outcome is Outcome.NO_ACTIVE_SESSION:
            outcome = _how_it_ended(result.session) or outcome
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
        """Drop activations idle for ``idle_for_s`` (default: the timeout); then, if that left
        the application holding nothing, tell the ``when_idle`` callback."""
        dropped = self._activations.passivate_idle(idle_for_s) if self._activations else 0
        if self._on_idle is not None and self.is_idle(idle_for_s):
            self._on_idle()
        return dropped

    def is_idle(self, for_s: float | None = None) -> bool:
        """No activation held, no request in flight, and none for ``for_s`` (default: the
        idle timeout): stopping now would cut nothing."""
        quiet_s = self._idle_timeout_s if for_s is None else for_s
        return (
            not self.agent_ids()
            and self._in_flight == 0
            and time.monotonic() - self._last_request >= quiet_s
        )

    def when_idle(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` whenever passivation leaves the application idle (``is_idle``): a
        host of one agent stops then, so idle agents keep no process (the host, not this
        Ray-free application, knows how to stop)."""
        self._on_idle = callback

    def agent_ids(self) -> tuple[str, ...]:
        return self._activations.agent_ids() if self._activations else ()

    async def close(self) -> None:
        await self._tools.close()  # the server tools' worker processes
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
                self._start_passivator()
            return self._activations

    def _start_passivator(self) -> None:
        """Once, on first use (a host may be sent requests that never load an agent)."""
        if self._passivator is None:
            self._passivator = asyncio.create_task(self._passivate_forever())

    def _forget(self, agent_id: str) -> None:
        self.live.forget(agent_id)
        self.drives.forget(agent_id)

    async def _passivate_forever(self) -> None:
        interval = max(self._idle_timeout_s / 4, 0.05)
        while True:
            await asyncio.sleep(interval)
            self.passivate_idle()


def _how_it_ended(session: Session | None) -> Outcome | None:
    """A retried command whose first drive ended its session is answered as that drive was:
    the session is over now, but it was the retried command that ended it."""
    if session is None:
        return None
    return {SessionStatus.COMPLETED: Outcome.COMPLETED, SessionStatus.EXPIRED: Outcome.EXPIRED}.get(
        session.status
    )
