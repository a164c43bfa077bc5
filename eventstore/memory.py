"""In-memory event store: the port with no file and no server, for fast route and application
tests. Nothing survives the process.

The backing store is a ``MemoryLog``: every instance opened on one log sees the others' writes
and wakes their subscribers, as instances in separate processes do on one SQLite file. Like
every adapter it keeps only what JSON carries (``canonical_json``'s rule) and parses a fresh
copy on every read, so a caller mutating a dict it appended or read cannot change the log, and
data another adapter would refuse (NaN, naive times) is refused here too.

A log belongs to one thread, but not to one event loop: a named log outlives pytest's
per-test loops, so subscribers wait on futures of their own loop rather than on one shared
asyncio primitive, which would bind to the first loop that used it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from eventstore import canonical_json
from eventstore.port import (
    AppendResult,
    DuplicateEventId,
    EventStore,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    Snapshot,
    StoreUnavailable,
    check_expected_version,
    stored_batch_end,
)

_PAGE = 500


@dataclass(frozen=True, slots=True)
class _Row:
    """A stored event as the SQLite adapter stores it: data, time and extensions as text."""

    id: UUID
    type: str
    data: str
    subject: str
    source: str
    time: str
    stream: str
    version: int
    position: int
    extensions: str

    def recorded(self) -> RecordedEvent:
        return RecordedEvent(
            id=self.id,
            type=self.type,
            data=json.loads(self.data),
            subject=self.subject,
            source=self.source,
            time=datetime.fromisoformat(self.time),
            stream=self.stream,
            version=self.version,
            position=self.position,
            extensions=json.loads(self.extensions),
        )


class MemoryLog:
    """The backing store that instances share; positions are 1-based indexes into ``events``."""

    def __init__(self) -> None:
        self.events: list[_Row] = []
        self.streams: dict[str, list[_Row]] = {}
        self.by_id: dict[UUID, _Row] = {}
        self.snapshots: dict[str, tuple[int, int, str]] = {}
        """stream -> (version, schema, state as JSON text)"""
        self._waiters: set[asyncio.Future[None]] = set()

    def add(self, rows: Sequence[_Row]) -> None:
        """Store a checked batch and wake every subscriber of every instance."""
        self.events.extend(rows)
        self.streams.setdefault(rows[0].stream, []).extend(rows)
        self.by_id.update((row.id, row) for row in rows)
        self.wake()

    def wake(self) -> None:
        for waiter in self._waiters:
            # A subscriber whose loop was closed under it is gone: resolving its future
            # would schedule a callback on that closed loop, which raises.
            if not waiter.done() and not waiter.get_loop().is_closed():
                waiter.set_result(None)
        self._waiters.clear()

    async def changed(self, after_position: int) -> None:
        """Return once the log is past ``after_position``, or on a wake-up (which may be spurious).

        Awaiting the future directly, with no timeout, lets a cancellation through even when it
        lands with the wake-up (asyncio.wait_for on Python 3.11 could drop it).
        """
        if len(self.events) > after_position:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        try:
            await waiter
        finally:
            self._waiters.discard(waiter)


_NAMED_LOGS: dict[str, MemoryLog] = {}


def named_log(name: str) -> MemoryLog:
    """The process-wide log called ``name``, created on first use (what ``memory://name`` opens)."""
    log = _NAMED_LOGS.get(name)
    if log is None:
        log = _NAMED_LOGS[name] = MemoryLog()
    return log


class InMemoryEventStore(EventStore):
    """The port on a ``MemoryLog``.

    Every call yields to the event loop once before it acts, as a real store's round trip
    would, so callers' races (read a version, then append at it) happen here too instead of
    being hidden by calls that never suspend. What follows the yield is atomic.
    """

    def __init__(self, log: MemoryLog) -> None:
        self._log = log
        self._closed = False

    @classmethod
    async def open(cls, log: MemoryLog) -> InMemoryEventStore:
        """Async like every adapter's ``open``, so openers are interchangeable."""
        return cls(log)

    async def append(
        self, stream: str, events: Sequence[NewEvent], expected_version: ExpectedVersion
    ) -> AppendResult:
        batch = list(events)
        ids = [event.id for event in batch]
        if len(set(ids)) != len(ids):
            raise DuplicateEventId(f"the batch for {stream!r} repeats an event id")
        encoded = [
            (
                _timestamp(event.time),
                canonical_json.dumps(event.data),
                canonical_json.dumps(event.extensions),
            )
            for event in batch
        ]
        log = await self._round_trip()
        stored = [log.by_id[event_id] for event_id in ids if event_id in log.by_id]
        replayed = stored_batch_end(
            stream, ids, [(row.id, row.stream, row.version, row.position) for row in stored]
        )
        if replayed is not None:
            return replayed
        current = len(log.streams.get(stream, ()))
        check_expected_version(stream, expected_version, current)
        if not batch:
            return AppendResult(current, 0)
        rows = [
            _Row(
                id=event.id,
                type=event.type,
                data=data,
                subject=event.subject,
                source=event.source,
                time=time,
                stream=stream,
                version=current + n,
                position=len(log.events) + n,
                extensions=extensions,
            )
            for n, (event, (time, data, extensions)) in enumerate(
                zip(batch, encoded, strict=True), 1
            )
        ]
        log.add(rows)
        return AppendResult(rows[-1].version, rows[-1].position)

    async def read(
        self, stream: str, from_version: int = 1, limit: int | None = None
    ) -> list[RecordedEvent]:
        rows = (await self._round_trip()).streams.get(stream, [])
        start = max(from_version, 1) - 1
        return [row.recorded() for row in rows[start : None if limit is None else start + limit]]

    async def stream_version(self, stream: str) -> int:
        return len((await self._round_trip()).streams.get(stream, ()))

    async def read_all(self, after_position: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        rows = (await self._round_trip()).events
        start = max(after_position, 0)
        return [row.recorded() for row in rows[start : start + limit]]

    async def last_position(self) -> int:
        return len((await self._round_trip()).events)

    def subscribe_all(self, after_position: int = 0) -> AsyncIterator[RecordedEvent]:
        return self._follow(after_position)

    async def _follow(self, position: int) -> AsyncIterator[RecordedEvent]:
        """Page through the log, then sleep until an append (of any instance) wakes it."""
        while True:
            page = await self.read_all(position, _PAGE)
            for recorded in page:
                position = recorded.position
                yield recorded
            if len(page) < _PAGE:
                await self._log.changed(position)

    async def save_snapshot(self, snapshot: Snapshot) -> bool:
        state = canonical_json.dumps(snapshot.state)
        log = await self._round_trip()
        stored = log.snapshots.get(snapshot.stream)
        current = len(log.streams.get(snapshot.stream, ()))
        if current != snapshot.version or (stored is not None and stored[0] >= snapshot.version):
            return False
        log.snapshots[snapshot.stream] = (snapshot.version, snapshot.schema, state)
        return True

    async def load_snapshot(self, stream: str) -> Snapshot | None:
        stored = (await self._round_trip()).snapshots.get(stream)
        if stored is None:
            return None
        version, schema, state = stored
        return Snapshot(stream=stream, version=version, state=json.loads(state), schema=schema)

    async def close(self) -> None:
        self._closed = True
        self._log.wake()  # this instance's subscribers re-read and fail, as on a closed file

    async def _round_trip(self) -> MemoryLog:
        await asyncio.sleep(0)
        if self._closed:
            raise StoreUnavailable("the in-memory event store is closed")
        return self._log


def _timestamp(time: datetime) -> str:
    """ISO 8601 with its offset, as SQLite keeps it; a naive time is refused like everywhere."""
    if time.utcoffset() is None:
        raise ValueError(f"event time must be timezone-aware, got {time!r}")
    return time.isoformat()
