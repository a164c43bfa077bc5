"""One agent's single-writer activation: its cached aggregate and its mailbox.

Commands for one agent run strictly one at a time (an asyncio lock is the mailbox), in the
order load -> decide -> append with expected version -> update memory -> acknowledge. If the
append fails the cached aggregate is dropped, so nothing half-applied survives in memory; the
next command reloads from the stream. No Ray here: the application owns activations, and a
Ray host actor owns the application.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from application.agent_repository import AgentRepository, LoadedAgent
from application.dedup_window import command_event_ids, same_request
from domain.commands import Command, CommandResult
from domain.errors import AgentNotFound, DomainError
from domain.session import Session
from domain.state import AgentState
from eventstore.port import AppendResult, EventStoreError, WrongExpectedVersion

log = logging.getLogger(__name__)

# A conflict means another activation of this agent wrote (a failover overlap): reload, and
# decide again against the fresh state, after a short jitter so two racers stop colliding.
CONFLICT_ATTEMPTS = 6


def utc_now() -> datetime:
    return datetime.now(UTC)


class AgentActivation:
    def __init__(
        self,
        agent_id: str,
        repository: AgentRepository,
        *,
        snapshot_every: int = 100,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.agent_id = agent_id
        self._repository = repository
        self._snapshot_every = snapshot_every
        self._clock = clock
        self._lock = asyncio.Lock()
        self._loaded: LoadedAgent | None = None
        self._in_flight = 0
        self.last_used = time.monotonic()

    @property
    def busy(self) -> bool:
        """Running or queued work: passivating now would split the mailbox in two."""
        return self._in_flight > 0

    async def execute(self, command: Command) -> CommandResult:
        if command.agent_id != self.agent_id:
            raise ValueError(f"command for {command.agent_id} sent to {self.agent_id}")
        async with self._turn():
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type(WrongExpectedVersion),
                stop=stop_after_attempt(CONFLICT_ATTEMPTS),
                wait=wait_random_exponential(multiplier=0.002, max=0.05),
                reraise=True,
            ):
                with attempt:
                    return await self._execute_once(command)
        raise AssertionError("unreachable: AsyncRetrying reraises")  # pragma: no cover

    async def state(self) -> AgentState | None:
        """The committed state (loading it if needed); None if the agent does not exist."""
        async with self._turn():
            agent = (await self._load()).agent
            return agent.state if agent.exists else None

    async def version(self) -> int:
        """The committed stream version (0 for an agent that does not exist)."""
        async with self._turn():
            return (await self._load()).agent.version

    @contextlib.asynccontextmanager
    async def _turn(self) -> AsyncIterator[None]:
        self._in_flight += 1
        try:
            async with self._lock:
                self.last_used = time.monotonic()
                yield
        finally:
            self._in_flight -= 1
            self.last_used = time.monotonic()

    async def _load(self) -> LoadedAgent:
        if self._loaded is None:
            self._loaded = await self._repository.load(self.agent_id)
        return self._loaded

    async def _execute_once(self, command: Command) -> CommandResult:
        loaded = await self._load()
        agent = loaded.agent
        command.authorize(agent)  # before the dedup answer: a retry is the caller's own
        # A retry is answered as the first time; the same id for another request is refused.
        applied = loaded.dedup.applied(command.command_id, command.request_fingerprint)
        if applied is not None:
            return self._result(command, loaded, applied, (), duplicate=True)
        if not agent.exists and not command.may_create:
            raise AgentNotFound(f"agent {self.agent_id} does not exist")
        try:
            command.decide(agent, self._clock())
        except DomainError:
            if agent.pending_events:  # a refusal must leave nothing behind
                self._loaded = None
            raise
        pending = agent.pending_events
        if not pending:
            return self._result(command, loaded, AppendResult(agent.version, 0), ())
        event_ids = command_event_ids(command.command_id, len(pending))
        expected_version = agent.version
        try:
            appended = await self._repository.save(
                agent, event_ids, request_fingerprint=command.request_fingerprint
            )
        except BaseException:
            self._loaded = None  # memory holds unpersisted events: forget it all
            raise
        if appended.replayed or appended.version != expected_version + len(pending):
            # The store already held this command's events: a retry this window had forgotten,
            # or another activation of this agent (a failover overlap) that ran the same step
            # first and may have decided it differently. What memory just decided was never
            # stored: answer from the stored state, as a duplicate, and keep nothing of ours.
            # Stored for another request, it is refused as the window would have refused it.
            self._loaded = None
            if command.request_fingerprint is not None:
                first = appended.version - len(pending) + 1
                stored = await self._repository.request_fingerprint_at(self.agent_id, first)
                same_request(stored, command.request_fingerprint)
            return self._result(command, await self._load(), appended, (), duplicate=True)
        loaded.dedup.add(event_ids, appended, command.request_fingerprint)
        await self._maybe_snapshot(loaded, expected_version, appended.version)
        return self._result(command, loaded, appended, tuple(e.event_type for e in pending))

    async def _maybe_snapshot(self, loaded: LoadedAgent, before: int, after: int) -> None:
        if after // self._snapshot_every == before // self._snapshot_every:
            return
        try:
            if not await self._repository.save_snapshot(loaded.agent, loaded.dedup):
                log.info("snapshot of agent %s at %d refused as stale", self.agent_id, after)
        except EventStoreError:
            # The events are committed; a missing snapshot only makes the next load slower.
            log.warning("snapshot of agent %s at %d failed", self.agent_id, after, exc_info=True)

    @staticmethod
    def _result(
        command: Command,
        loaded: LoadedAgent,
        at: AppendResult,
        event_types: tuple[str, ...],
        *,
        duplicate: bool = False,
    ) -> CommandResult:
        return CommandResult(
            agent_id=command.agent_id,
            command_id=command.command_id,
            version=at.version,
            position=at.position,
            event_types=event_types,
            duplicate=duplicate,
            session=_without_transcript(command.session_of(loaded.agent)),
        )


def _without_transcript(session: Session | None) -> Session | None:
    return session.model_copy(update={"transcript": ()}) if session is not None else None
