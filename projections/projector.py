"""The projector: folds the global log into the read model, batch by batch.

It always resumes from the read model's own checkpoint, and the read model stores each batch's
documents with the batch's last position, so stopping it anywhere (cancel, crash, kill) and
starting another loses and repeats nothing. One projector writes one read model at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Sequence

from domain.events import AGENT_EVENTS
from eventstore.codec import from_envelope
from eventstore.port import EventStore, RecordedEvent
from projections.documents import AgentDocument, SessionDocument
from projections.handlers import project, session_id_of
from projections.store import DocumentRefused, ReadModelStore

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 200
DEFAULT_LINGER_S = 0.01


class PoisonEvent(Exception):
    """An event the projection cannot decode or apply, or whose documents the read model
    refuses to hold: retrying cannot help, so following stops at it (never skipping it) until
    an operator fixes the code or the event. Its message (for the log) names the event; what
    callers may show is ``position`` and ``event_type``, never the event's data."""

    def __init__(self, recorded: RecordedEvent) -> None:
        super().__init__(
            f"cannot project event {recorded.id} of type {recorded.type} "
            f"at position {recorded.position} (stream {recorded.stream})"
        )
        self.position = recorded.position
        self.event_type = recorded.type


class Projector:
    def __init__(
        self,
        event_store: EventStore,
        read_model: ReadModelStore,
        batch_size: int = DEFAULT_BATCH_SIZE,
        *,
        linger: float = DEFAULT_LINGER_S,
    ) -> None:
        """``linger``: how long a live batch waits for one more event before it is written."""
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.event_store = event_store
        self.read_model = read_model
        self.batch_size = batch_size
        self.linger = linger

    async def run(self) -> None:
        """Follow the log from the checkpoint forever (until cancelled, a store fails, or a
        PoisonEvent)."""
        checkpoint = await self.read_model.checkpoint()
        log.info("projector following the log after position %d", checkpoint)
        events = self.event_store.subscribe_all(checkpoint)
        pending: asyncio.Task[RecordedEvent] | None = None
        try:
            while True:
                if pending is None:
                    pending = asyncio.create_task(_next(events))
                batch = [await pending]
                pending = None
                # Take whatever else is ready: a backlog fills whole batches, while a live
                # event waits at most ``linger`` before it becomes visible. An event still
                # awaited when the batch closes opens the next one.
                while len(batch) < self.batch_size:
                    pending = asyncio.create_task(_next(events))
                    await asyncio.wait({pending}, timeout=self.linger)
                    if not pending.done():
                        break
                    batch.append(pending.result())
                    pending = None
                await self._apply(batch)
        finally:
            if pending is not None:
                pending.cancel()
                await asyncio.wait({pending})  # the subscription must unwind before closing
            if isinstance(events, AsyncGenerator):
                await events.aclose()

    async def catch_up(self) -> int:
        """Project everything up to the log's current end; returns the new checkpoint."""
        target = await self.event_store.last_position()
        checkpoint = await self.read_model.checkpoint()
        while checkpoint < target:
            batch = await self.event_store.read_all(checkpoint, self.batch_size)
            if not batch:
                break
            await self._apply(batch)
            checkpoint = batch[-1].position
        return await self.read_model.checkpoint()

    async def rebuild(self) -> int:
        """Drop the read model and project the whole log again; returns the new checkpoint."""
        await self.read_model.reset()
        return await self.catch_up()

    async def lag(self) -> int:
        """How many positions the read model is behind the log."""
        return await self.event_store.last_position() - await self.read_model.checkpoint()

    async def _apply(self, batch: Sequence[RecordedEvent]) -> None:
        """Project one batch of consecutive events and store it at its last position; on a
        PoisonEvent, store the events before it first, so following stops exactly there.

        A batch the store refuses for what its documents hold is applied again one event at a
        time, each stored at its own position: the event that brings the refused data in is
        the poison one, everything before it is stored, nothing after it is.
        """
        try:
            await self._apply_all(batch)
        except PoisonEvent as poison:
            before = [recorded for recorded in batch if recorded.position < poison.position]
            if before:
                await self._apply(before)  # may find an earlier poison among them
            raise
        except DocumentRefused as refused:
            if len(batch) == 1:
                raise PoisonEvent(batch[0]) from refused
            for recorded in batch:
                await self._apply([recorded])

    async def _apply_all(self, batch: Sequence[RecordedEvent]) -> None:
        agents: dict[str, AgentDocument | None] = {}
        sessions: dict[str, SessionDocument | None] = {}
        # Positions of the documents as the store had them: only documents past them are written.
        stored_agents: dict[str, int] = {}
        stored_sessions: dict[str, int] = {}
        for recorded in batch:
            if recorded.type not in AGENT_EVENTS.types:
                continue  # another aggregate's event: only the checkpoint moves past it
            with _reported(recorded):
                event = from_envelope(recorded)
            agent_id = event.agent_id
            if agent_id not in agents:
                agents[agent_id] = await self.read_model.get_agent(agent_id)
                stored_agents[agent_id] = _position(agents[agent_id])
            session_id = session_id_of(event)
            if session_id is not None and session_id not in sessions:
                sessions[session_id] = await self.read_model.get_session(session_id)
                stored_sessions[session_id] = _position(sessions[session_id])
            with _reported(recorded):
                projected = project(
                    event,
                    recorded.position,
                    agents[agent_id],
                    sessions[session_id] if session_id is not None else None,
                )
            agents[agent_id] = projected.agent
            if session_id is not None:
                sessions[session_id] = projected.session
        await self.read_model.apply(
            batch[-1].position,
            [a for a in agents.values() if a is not None and a.position > stored_agents[a.id]],
            [
                s
                for s in sessions.values()
                if s is not None and s.position > stored_sessions[s.session_id]
            ],
        )


def _position(document: AgentDocument | SessionDocument | None) -> int:
    return document.position if document is not None else 0


async def _next(events: AsyncIterator[RecordedEvent]) -> RecordedEvent:
    return await anext(events)


@contextlib.contextmanager
def _reported(recorded: RecordedEvent) -> Iterator[None]:
    """Turn a decoding or projection failure into a PoisonEvent naming the event."""
    try:
        yield
    except Exception as error:
        raise PoisonEvent(recorded) from error
