"""Loads agents from their streams and persists their decisions before anyone is told.

Besides the aggregate, a load returns the ids of the stream's most recent events: with event
ids derived from command ids (``command_event_ids``), that is how a command retried after a
crash is recognised as already applied, in any process, without a separate dedup table.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from uuid import UUID, uuid5

from domain.agent import Agent
from domain.ids import stream_name
from domain.state import AgentState
from eventstore.codec import from_envelope, to_envelope
from eventstore.port import AppendResult, EventStore, RecordedEvent, Snapshot

# Bump when the snapshot payload or AgentState changes shape: older snapshots are then
# ignored and the stream replayed.
SNAPSHOT_SCHEMA = 2  # 2: AgentState gained score metrics
DEDUP_WINDOW_SIZE = 2048


def command_event_ids(command_id: UUID, count: int) -> list[UUID]:
    """Event ids of a command's events: a retry re-derives the same ids."""
    return [uuid5(command_id, str(index)) for index in range(count)]


@dataclass
class DedupWindow:
    """Recognises a retried command: the ids of a stream's last events with their versions and
    global positions, oldest first, bounded.

    An append reports the position of its batch's last event only, so every event of the
    batch is recorded with that one. ``applied`` answers from a command's last event, so what
    it returns is always that event's own position.
    """

    events: OrderedDict[UUID, AppendResult] = field(default_factory=OrderedDict)
    limit: int = DEDUP_WINDOW_SIZE

    def add(self, ids: Iterable[UUID], appended: AppendResult) -> None:
        """Events stored as one batch that ended at ``appended``."""
        ids = list(ids)
        for offset, event_id in enumerate(ids):
            version = appended.version - len(ids) + 1 + offset
            self.events[event_id] = AppendResult(version, appended.position)
        while len(self.events) > self.limit:
            self.events.popitem(last=False)

    def applied(self, command_id: UUID) -> AppendResult | None:
        """Stream version and global position after the command's events, if they are stored
        (the same as when the command was first applied); else None."""
        applied = None
        for event_id in _ids_of(command_id):
            found = self.events.get(event_id)
            if found is None:
                return applied
            applied = found
        return applied

    def to_json(self) -> list[list[str | int]]:
        return [[str(event_id), at.version, at.position] for event_id, at in self.events.items()]

    @classmethod
    def from_json(cls, data: Sequence[Sequence[str | int]]) -> DedupWindow:
        window = cls()
        for event_id, version, position in data:
            window.events[UUID(str(event_id))] = AppendResult(int(version), int(position))
        return window


def _ids_of(command_id: UUID) -> Iterable[UUID]:
    index = 0
    while True:
        yield uuid5(command_id, str(index))
        index += 1


@dataclass
class LoadedAgent:
    agent: Agent
    dedup: DedupWindow
    """Recognises commands already applied (see ``DedupWindow``)."""


class AgentRepository:
    def __init__(self, store: EventStore) -> None:
        self._store = store

    @property
    def store(self) -> EventStore:
        return self._store

    async def load(self, agent_id: str) -> LoadedAgent:
        """The agent as its stream says: snapshot (if current) plus the events after it.

        An absent stream gives an empty, uncreated Agent (the get-or-create path).
        """
        stream = stream_name(agent_id)
        snapshot = await self._store.load_snapshot(stream)
        if snapshot is None or snapshot.schema != SNAPSHOT_SCHEMA:
            recorded = await self._store.read(stream)
            return LoadedAgent(
                Agent.replay(from_envelope(r) for r in recorded), _dedup_window(recorded)
            )
        tail = await self._store.read(stream, from_version=snapshot.version + 1)
        agent = Agent.replay(
            (from_envelope(r) for r in tail),
            snapshot=AgentState.from_dict(snapshot.state["agent"]),
            snapshot_version=snapshot.version,
        )
        dedup = DedupWindow.from_json(snapshot.state["recent_event_ids"])
        for event in tail:
            dedup.add([event.id], AppendResult(event.version, event.position))
        return LoadedAgent(agent, dedup)

    async def save(self, agent: Agent, event_ids: Sequence[UUID] | None = None) -> AppendResult:
        """Append the agent's pending events at its version, then mark them committed; return
        the store's AppendResult (the stream version, and the position callers wait on).

        On any failure (WrongExpectedVersion, StoreUnavailable) the agent is left uncommitted
        and must be discarded by the caller: its in-memory state includes unpersisted events.
        """
        pending = agent.pending_events
        if event_ids is not None and len(event_ids) != len(pending):
            raise ValueError("one event id per pending event")
        envelopes = [
            to_envelope(event, event_ids[i] if event_ids is not None else None)
            for i, event in enumerate(pending)
        ]
        appended = await self._store.append(
            stream_name(agent.id), envelopes, expected_version=agent.version
        )
        agent.mark_committed()
        return appended

    async def save_snapshot(self, agent: Agent, dedup: DedupWindow | None = None) -> None:
        """Snapshot the committed state (never one with pending, unpersisted events)."""
        if agent.pending_events:
            raise ValueError("snapshot only committed state")
        await self._store.save_snapshot(
            Snapshot(
                stream=stream_name(agent.id),
                version=agent.version,
                state={
                    "agent": agent.state.to_dict(),
                    "recent_event_ids": (dedup or DedupWindow()).to_json(),
                },
                schema=SNAPSHOT_SCHEMA,
            )
        )


def _dedup_window(recorded: Sequence[RecordedEvent]) -> DedupWindow:
    window = DedupWindow()
    for event in recorded[-DEDUP_WINDOW_SIZE:]:
        window.add([event.id], AppendResult(event.version, event.position))
    return window
