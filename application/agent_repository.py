"""Loads agents from their streams and persists their decisions before anyone is told.

Besides the aggregate, a load returns the ids of the stream's most recent events: with event
ids derived from command ids (``command_event_ids``), that is how a command retried after a
crash is recognised as already applied, in any process, without a separate dedup table. A
command's first event also carries the fingerprint of the request it was sent for
(``REQUEST_DIGEST``), so the same command id sent for another request is told apart from a
retry.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid5

from application.errors import IdempotencyKeyReused
from domain.agent import Agent
from domain.ids import stream_name
from domain.state import AgentState
from eventstore.codec import from_envelope, to_envelope
from eventstore.port import AppendResult, EventStore, RecordedEvent, Snapshot

# Bump when the snapshot payload or AgentState changes shape: older snapshots are then
# ignored and the stream replayed.
SNAPSHOT_SCHEMA = 3  # 2: AgentState gained score metrics; 3: the window keeps fingerprints
DEDUP_WINDOW_SIZE = 2048
REQUEST_DIGEST = "requestdigest"
"""The CloudEvents extension attribute, on a command's first event, holding the fingerprint of
the request the command was sent for (``Command.request_fingerprint``)."""


def command_event_ids(command_id: UUID, count: int) -> list[UUID]:
    """Event ids of a command's events: a retry re-derives the same ids."""
    return [uuid5(command_id, str(index)) for index in range(count)]


def same_request(stored: str | None, sent: str | None) -> None:
    """Refuse a command already applied for one request and now sent for another. Where either
    side has no fingerprint (a system command, an event stored before fingerprints) there is
    nothing to compare, and the command is taken as the retry it claims to be."""
    if stored is not None and sent is not None and stored != sent:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was already used on this agent for another request"
            " (another body or route); send a new key for a new request"
        )


@dataclass
class DedupWindow:
    """Recognises a retried command: the ids of a stream's last events with their versions and
    global positions, oldest first, bounded.

    An append reports the position of its batch's last event only, so every event of the
    batch is recorded with that one. ``applied`` answers from a command's last event, so what
    it returns is always that event's own position. ``fingerprints`` holds, by the id of a
    command's first event, the fingerprint of the request it was sent for (if any), as long as
    that event is in the window.
    """

    events: OrderedDict[UUID, AppendResult] = field(default_factory=OrderedDict)
    fingerprints: dict[UUID, str] = field(default_factory=dict)
    limit: int = DEDUP_WINDOW_SIZE

    def add(
        self, ids: Iterable[UUID], appended: AppendResult, fingerprint: str | None = None
    ) -> None:
        """Events stored as one batch that ended at ``appended``; ``fingerprint`` is what the
        first of them carries."""
        ids = list(ids)
        for offset, event_id in enumerate(ids):
            version = appended.version - len(ids) + 1 + offset
            self.events[event_id] = AppendResult(version, appended.position)
        if ids and fingerprint is not None:
            self.fingerprints[ids[0]] = fingerprint
        while len(self.events) > self.limit:
            evicted, _ = self.events.popitem(last=False)
            self.fingerprints.pop(evicted, None)

    def applied(self, command_id: UUID, fingerprint: str | None = None) -> AppendResult | None:
        """Stream version and global position after the command's events, if they are stored
        (the same as when the command was first applied); else None. Raises
        IdempotencyKeyReused if they were stored for a request other than ``fingerprint``."""
        applied = None
        for event_id in _ids_of(command_id):
            found = self.events.get(event_id)
            if found is None:
                break
            applied = found
        if applied is not None:
            first = command_event_ids(command_id, 1)[0]
            same_request(self.fingerprints.get(first), fingerprint)
        return applied

    def to_json(self) -> list[list[str | int | None]]:
        return [
            [str(event_id), at.version, at.position, self.fingerprints.get(event_id)]
            for event_id, at in self.events.items()
        ]

    @classmethod
    def from_json(cls, data: Sequence[Sequence[Any]]) -> DedupWindow:
        window = cls()
        for event_id, version, position, fingerprint in data:
            at = AppendResult(int(version), int(position))
            window.add([UUID(str(event_id))], at, None if fingerprint is None else str(fingerprint))
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
            _remember(dedup, event)
        return LoadedAgent(agent, dedup)

    async def save(
        self,
        agent: Agent,
        event_ids: Sequence[UUID] | None = None,
        *,
        request_fingerprint: str | None = None,
    ) -> AppendResult:
        """Append the agent's pending events at its version, then mark them committed; return
        the store's AppendResult (the stream version, and the position callers wait on). The
        first event carries ``request_fingerprint`` (``REQUEST_DIGEST``), if given.

        On any failure (WrongExpectedVersion, StoreUnavailable) the agent is left uncommitted
        and must be discarded by the caller: its in-memory state includes unpersisted events.
        """
        pending = agent.pending_events
        if event_ids is not None and len(event_ids) != len(pending):
            raise ValueError("one event id per pending event")
        digest = {REQUEST_DIGEST: request_fingerprint} if request_fingerprint is not None else {}
        envelopes = [
            to_envelope(
                event,
                event_ids[i] if event_ids is not None else None,
                extensions=digest if i == 0 else None,
            )
            for i, event in enumerate(pending)
        ]
        appended = await self._store.append(
            stream_name(agent.id), envelopes, expected_version=agent.version
        )
        agent.mark_committed()
        return appended

    async def request_fingerprint_at(self, agent_id: str, version: int) -> str | None:
        """The request fingerprint the agent's event at ``version`` carries, if any."""
        found = await self._store.read(stream_name(agent_id), from_version=version, limit=1)
        return found[0].extensions.get(REQUEST_DIGEST) if found else None

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
        _remember(window, event)
    return window


def _remember(window: DedupWindow, event: RecordedEvent) -> None:
    at = AppendResult(event.version, event.position)
    window.add([event.id], at, event.extensions.get(REQUEST_DIGEST))
