"""Loads agents from their streams and persists their decisions before anyone is told.

Besides the aggregate, a load returns the ids of the stream's most recent events: with event
ids derived from command ids (``command_event_ids``), that is how a command retried after a
crash is recognised as already applied, in any process, without a separate dedup table. A
command's first event also carries the fingerprint of the request it was sent for
(``REQUEST_DIGEST``), so the same command id sent for another request is told apart from a
retry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from application.dedup_window import DEDUP_WINDOW_SIZE, DedupWindow
from domain.agent import Agent
from domain.ids import stream_name
from domain.state import AgentState
from eventstore.codec import from_envelope, to_envelope
from eventstore.port import AppendResult, EventStore, RecordedEvent, Snapshot

# Bump when the snapshot payload or AgentState changes shape: older snapshots are then
# ignored and the stream replayed.
# 2: AgentState gained score metrics; 3: the window keeps fingerprints; 4: compact window
SNAPSHOT_SCHEMA = 4
REQUEST_DIGEST = "requestdigest"
"""The CloudEvents extension attribute, on a command's first event, holding the fingerprint of
the request the command was sent for (``Command.request_fingerprint``)."""


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
        dedup = DedupWindow.from_json(snapshot.state["dedup_window"])
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

    async def save_snapshot(self, agent: Agent, dedup: DedupWindow | None = None) -> bool:
        """Snapshot the committed state (never one with pending, unpersisted events); False
        when the store refused it as stale (the stream moved on, or holds a newer one)."""
        if agent.pending_events:
            raise ValueError("snapshot only committed state")
        return await self._store.save_snapshot(
            Snapshot(
                stream=stream_name(agent.id),
                version=agent.version,
                state={
                    "agent": agent.state.to_dict(),
                    "dedup_window": (dedup or DedupWindow()).to_json(),
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
