"""KurrentDB (EventStoreDB) event store, on kurrentdbclient's ``AsyncKurrentDBClient``.

The ``EventStore`` adapter for deployments that keep their log in KurrentDB. How versions,
positions, the envelope, idempotent appends, the global log and snapshots map onto it, and
what it cannot honour cheaply: docs/stores.md#kurrentdb-event-store.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, TypeVar
from uuid import UUID

from kurrentdbclient import AsyncKurrentDBClient
from kurrentdbclient import NewEvent as KurrentNewEvent
from kurrentdbclient import RecordedEvent as KurrentRecordedEvent
from kurrentdbclient import StreamState as KurrentStreamState
from kurrentdbclient.exceptions import (
    ConsumerTooSlowError,
    KurrentDBClientError,
    NotFoundError,
    WrongCurrentVersionError,
)
from kurrentdbclient.streams import AsyncReadResponse

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
    StreamState,
    check_expected_version,
    checked_extensions,
)

CONTENT_TYPE: Literal["application/json"] = "application/json"
SNAPSHOT_STREAM_PREFIX = "snapshot-"
SNAPSHOT_TYPE = "agenthost.snapshot.v1"
# Stream-name regexes the server leaves out of the global log (the client anchors each one).
GLOBAL_LOG_EXCLUDE = (r"\$.*", f"{SNAPSHOT_STREAM_PREFIX}.*")

_T = TypeVar("_T")


class KurrentDBEventStore(EventStore):
    """The port on a KurrentDB/EventStoreDB server (single node or cluster)."""

    # No index by event id: finding an id in another stream would mean reading the whole log.
    detects_cross_stream_duplicate_ids = False

    def __init__(self, client: AsyncKurrentDBClient) -> None:
        self._client = client

    @classmethod
    async def open(cls, url: str) -> KurrentDBEventStore:
        """Connect and make one read, so a wrong URL or a down server fails here, not later."""
        client = AsyncKurrentDBClient(uri=url)
        # Errors name the failure, never the URL: it may hold a password.
        await _guard(client.connect(), "cannot connect to KurrentDB")
        store = cls(client)
        try:
            await store.last_position()
        except BaseException:
            await client.close()
            raise
        return store

    async def append(
        self, stream: str, events: Sequence[NewEvent], expected_version: ExpectedVersion
    ) -> AppendResult:
        batch = list(events)
        ids = [event.id for event in batch]
        if len(set(ids)) != len(ids):
            raise DuplicateEventId(f"the batch for {stream!r} repeats an event id")
        records = [to_kurrent_event(event) for event in batch]
        exact = exact_version(expected_version)
        if not records:
            current = await self.stream_version(stream)
            check_expected_version(stream, expected_version, current)
            return AppendResult(current, 0)
        # The hot path, one round trip: the server checks the version and spots a retry.
        if exact is not None:
            appended = await self._append_at(stream, records, exact)
            if appended is not None:
                return AppendResult(exact + len(records), *appended)
        while True:
            stored = await self._read_stream(stream)
            current = stored[-1].stream_position + 1 if stored else 0
            end = stored_batch_end(stream, {e.id: e.stream_position + 1 for e in stored}, ids)
            if end is not None:
                position = next(e.commit_position for e in stored if e.id == ids[-1])
                return AppendResult(end, position, replayed=True)
            check_expected_version(stream, expected_version, current)
            appended = await self._append_at(stream, records, current)
            if appended is not None:
                return AppendResult(current + len(records), *appended)

    async def read(
        self, stream: str, from_version: int = 1, limit: int | None = None
    ) -> list[RecordedEvent]:
        return [
            from_kurrent_event(recorded)
            for recorded in await self._read_stream(
                stream, max(from_version, 1) - 1, sys.maxsize if limit is None else limit
            )
        ]

    async def stream_version(self, stream: str) -> int:
        return version_from_kurrent(
            await _guard(self._client.get_current_version(stream), "KurrentDB read failed")
        )

    async def read_all(self, after_position: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        found: list[RecordedEvent] = []
        position = after_position
        while len(found) < limit:
            start = position
            wanted = limit - len(found) + 1  # the page opens with the event at ``start``
            page = await _guard(
                _drain(
                    self._client.read_all(
                        commit_position=_from(start),
                        filter_exclude=GLOBAL_LOG_EXCLUDE,
                        filter_by_stream_name=True,
                        limit=wanted,
                    )
                ),
                "KurrentDB read_all failed",
            )
            for recorded in page:
                if recorded.commit_position > start:
                    position = recorded.commit_position
                    if in_global_log(recorded):
                        found.append(from_kurrent_event(recorded))
            if len(page) < wanted:
                break  # the end of the log
        return found[:limit]

    async def last_position(self) -> int:
        return await _guard(
            self._client.get_commit_position(
                filter_exclude=GLOBAL_LOG_EXCLUDE, filter_by_stream_name=True
            ),
            "KurrentDB read failed",
        )

    def subscribe_all(self, after_position: int = 0) -> AsyncIterator[RecordedEvent]:
        return self._follow(after_position)

    async def save_snapshot(self, snapshot: Snapshot) -> bool:
        name = snapshot_stream(snapshot.stream)
        last = await self._last_snapshot(name)
        stored = snapshot_from_kurrent(snapshot.stream, last) if last is not None else None
        if (stored is not None and stored.version >= snapshot.version) or (
            await self.stream_version(snapshot.stream) != snapshot.version
        ):
            return False
        # Keep only the newest snapshot. The cap is set when the stream is new; afterwards its
        # metadata exists and the server refuses this write.
        with contextlib.suppress(WrongCurrentVersionError):
            await _guard(
                self._client.set_stream_metadata(
                    name,
                    metadata={"$maxCount": 1},
                    current_version=KurrentStreamState.NO_STREAM,
                ),
                "KurrentDB snapshot write failed",
            )
        # At the snapshot stream's position we read: a newer snapshot written since wins.
        try:
            await _guard(
                self._client.append_to_stream(
                    name,
                    events=[snapshot_to_kurrent(snapshot)],
                    current_version=(
                        last.stream_position if last is not None else KurrentStreamState.NO_STREAM
                    ),
                ),
                "KurrentDB snapshot write failed",
            )
        except WrongCurrentVersionError:
            return False
        return True

    async def _last_snapshot(self, name: str) -> KurrentRecordedEvent | None:
        try:
            last = await _guard(
                self._client.get_stream(name, backwards=True, limit=1),
                "KurrentDB snapshot read failed",
            )
        except NotFoundError:
            return None
        return last[0] if last else None

    async def load_snapshot(self, stream: str) -> Snapshot | None:
        last = await self._last_snapshot(snapshot_stream(stream))
        return snapshot_from_kurrent(stream, last) if last is not None else None

    async def close(self) -> None:
        await self._client.close()

    async def _append_at(
        self, stream: str, records: list[KurrentNewEvent], version: int
    ) -> tuple[int, bool] | None:
        """Append at exactly ``version``; return the commit position of the batch's last event
        and whether the server took the batch for a retry of one it holds (``replayed``); None
        when the server found another version."""
        try:
            position = await _guard(
                self._client.append_to_stream(
                    stream, events=records, current_version=kurrent_current_version(version)
                ),
                "KurrentDB append failed",
            )
        except WrongCurrentVersionError:
            return None
        if position > 0:
            return position, False  # a recognised retry may look like this too: docs/stores.md
        # A retry the server recognised may come back without a position (the client's 0: older
        # servers, or one that could not look up where the batch is stored): read it back.
        (last,) = await self._read_stream(stream, version + len(records) - 1, 1)
        return last.commit_position, True

    async def _read_stream(
        self, stream: str, position: int = 0, limit: int = sys.maxsize
    ) -> tuple[KurrentRecordedEvent, ...]:
        try:
            return await _guard(
                self._client.get_stream(stream, stream_position=position, limit=limit),
                "KurrentDB read failed",
            )
        except NotFoundError:
            return ()

    async def _follow(self, after_position: int) -> AsyncIterator[RecordedEvent]:
        """The catch-up subscription as an async generator; closing it stops the call."""
        position = after_position
        while True:
            subscription = await _guard(
                self._client.subscribe_to_all(
                    commit_position=_from(position),
                    filter_exclude=GLOBAL_LOG_EXCLUDE,
                    filter_by_stream_name=True,
                ),
                "KurrentDB subscribe_to_all failed",
            )
            try:
                async for recorded in subscription:
                    if recorded.commit_position > position and in_global_log(recorded):
                        event = from_kurrent_event(recorded)
                        position = event.position
                        yield event
            except ConsumerTooSlowError:
                continue  # the server drops a subscriber that lags the live log: resume
            except KurrentDBClientError as error:
                raise StoreUnavailable(f"KurrentDB subscription failed: {error}") from error
            finally:
                await subscription.stop()
            raise StoreUnavailable("KurrentDB ended the subscription to $all")


# --- the mapping between the port and kurrentdbclient (pure, unit-tested) -------------------


def exact_version(expected: ExpectedVersion) -> int | None:
    """The version an exact condition names (NO_STREAM is 0); None for ANY and EXISTS."""
    if expected == StreamState.NO_STREAM:
        return 0
    if isinstance(expected, StreamState):
        return None
    if expected < 0:
        raise ValueError(f"expected version must be >= 0, got {expected}")
    return expected


def kurrent_current_version(version: int) -> int | KurrentStreamState:
    """Our stream version -> the client's ``current_version`` (position of the last event)."""
    return KurrentStreamState.NO_STREAM if version == 0 else version - 1


def version_from_kurrent(current: int | Literal[KurrentStreamState.NO_STREAM]) -> int:
    """The client's current version (position of the last event) -> our stream version."""
    return 0 if current is KurrentStreamState.NO_STREAM else current + 1


def to_kurrent_event(event: NewEvent) -> KurrentNewEvent:
    """Our envelope as a client event; refuses non-JSON data and naive times."""
    if event.time.utcoffset() is None:
        raise ValueError(f"event time must be timezone-aware, got {event.time!r}")
    # The extensions beside the envelope's attributes, whose names they cannot take.
    metadata = {
        "source": event.source,
        "subject": event.subject,
        "time": event.time.isoformat(),
        **event.extensions,
    }
    return KurrentNewEvent(
        type=event.type,
        data=canonical_json.dumps(event.data).encode(),
        metadata=canonical_json.dumps(metadata).encode(),
        content_type=CONTENT_TYPE,
        id=event.id,
    )


def from_kurrent_event(recorded: KurrentRecordedEvent) -> RecordedEvent:
    """A recorded envelope; raises ValueError for an event this adapter did not write."""
    try:
        metadata = json.loads(recorded.metadata)
        if not isinstance(metadata, dict):
            raise TypeError(f"its metadata is a JSON {type(metadata).__name__}, not an object")
        source, subject, time = (metadata.pop(name) for name in ("source", "subject", "time"))
        return RecordedEvent(
            id=recorded.id,
            type=recorded.type,
            data=json.loads(recorded.data),
            subject=subject,
            source=source,
            time=datetime.fromisoformat(time),
            stream=recorded.stream_name,
            version=recorded.stream_position + 1,
            position=recorded.commit_position,
            # Whatever else is there must be extensions this adapter could have written.
            extensions=checked_extensions(metadata),
        )
    except (ValueError, TypeError, KeyError) as error:
        raise ValueError(
            f"event {recorded.id} at {recorded.stream_name!r}@{recorded.stream_position} "
            f"is not an envelope of this store: {error!r}"
        ) from error


def in_global_log(recorded: KurrentRecordedEvent) -> bool:
    """False for system events and snapshots: what read_all and subscribe_all leave out."""
    return not (
        recorded.type.startswith("$")
        or recorded.stream_name.startswith("$")
        or recorded.stream_name.startswith(SNAPSHOT_STREAM_PREFIX)
    )


def stored_batch_end(stream: str, stored: Mapping[UUID, int], ids: Sequence[UUID]) -> int | None:
    """Given the stream's ids and versions: the version of the batch's last event if the whole
    batch is stored in order at consecutive versions, None if none of its ids is stored."""
    found = {event_id: stored[event_id] for event_id in ids if event_id in stored}
    if not found:
        return None
    first = found.get(ids[0])
    if first is None or any(found.get(event_id) != first + n for n, event_id in enumerate(ids)):
        raise DuplicateEventId(
            f"{len(found)} of {len(ids)} event ids are already stored in {stream!r}, "
            "but not as this exact batch"
        )
    return first + len(ids) - 1


def snapshot_stream(stream: str) -> str:
    return f"{SNAPSHOT_STREAM_PREFIX}{stream}"


def snapshot_to_kurrent(snapshot: Snapshot) -> KurrentNewEvent:
    data: dict[str, Any] = {
        "version": snapshot.version,
        "schema": snapshot.schema,
        "state": dict(snapshot.state),
    }
    return KurrentNewEvent(
        type=SNAPSHOT_TYPE, data=canonical_json.dumps(data).encode(), content_type=CONTENT_TYPE
    )


def snapshot_from_kurrent(stream: str, recorded: KurrentRecordedEvent) -> Snapshot:
    data = json.loads(recorded.data)
    return Snapshot(
        stream=stream, version=data["version"], state=data["state"], schema=data["schema"]
    )


# --- I/O helpers ------------------------------------------------------------------------------


async def _guard(operation: Awaitable[_T], what: str) -> _T:
    """Turn the client's failures into StoreUnavailable; the outcomes callers act on (a
    refused version, a missing stream) pass through."""
    try:
        return await operation
    except (WrongCurrentVersionError, NotFoundError):
        raise
    except KurrentDBClientError as error:
        raise StoreUnavailable(f"{what}: {error!r}") from error


def _from(position: int) -> int | None:
    """Where a read of $all starts: None is the beginning of the log, not an event's position."""
    return position if position > 0 else None


async def _drain(response: Awaitable[AsyncReadResponse]) -> list[KurrentRecordedEvent]:
    """Every event of a bounded read (the response stops itself at its end or on an error)."""
    return [recorded async for recorded in await response]
