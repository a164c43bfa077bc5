"""The event store port: what the write side and the projector need from any store.

Streams are named ``agent-{uuid}``. Versions are 1-based (the first event of a stream has
version 1; an absent stream has version 0). Global positions are positive, strictly increasing
in commit order, but not necessarily contiguous (KurrentDB commit positions, rolled-back
sequence values in PostgreSQL).
"""

from __future__ import annotations

import abc
import re
from collections.abc import AsyncIterator, Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar
from uuid import UUID, uuid4

DEFAULT_SOURCE = "urn:agenthost"
CLOUDEVENTS_SPEC_VERSION = "1.0"

MAX_EXTENSIONS = 8
MAX_EXTENSION_VALUE_LENGTH = 256
RESERVED_ATTRIBUTE_NAMES = frozenset(
    {"id", "source", "specversion", "type", "datacontenttype", "dataschema", "subject", "time"}
    | {"data", "stream", "streamversion", "position"}
)
"""Names no extension may take: the CloudEvents context attributes, ``data``, and the log
coordinates ``to_cloudevent`` adds, so that no extension can stand in for one of them."""
# CloudEvents 1.0: lower-case ASCII letters and digits, 20 characters at most recommended.
_EXTENSION_NAME = re.compile(r"[a-z0-9]{1,20}")
# What a CloudEvents String may not hold: control characters, surrogates and noncharacters.
_NOT_IN_A_STRING = re.compile(
    r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef"
    + "".join(rf"\U{plane:04x}fffe\U{plane:04x}ffff" for plane in range(17))
    + "]"
)


class StreamState(StrEnum):
    """Expected-version conditions that are not an exact version."""

    ANY = "any"
    NO_STREAM = "no_stream"
    EXISTS = "exists"


ExpectedVersion = int | StreamState


def _utc_now() -> datetime:
    return datetime.now(UTC)


def checked_extensions(extensions: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``extensions`` if every adapter can store it and CloudEvents carry it; a
    ValueError naming the offending extension otherwise (never echoing a long value)."""
    if not isinstance(extensions, Mapping):
        raise ValueError("extensions must be a mapping of names to strings")
    if len(extensions) > MAX_EXTENSIONS:
        raise ValueError(f"an event has at most {MAX_EXTENSIONS} extensions, got {len(extensions)}")
    checked: dict[str, str] = {}
    for name, value in extensions.items():
        if not isinstance(name, str) or not _EXTENSION_NAME.fullmatch(name):
            raise ValueError(
                f"extension name {name!r:.40} must be 1 to 20 lower-case ASCII letters or digits"
            )
        if name in RESERVED_ATTRIBUTE_NAMES:
            raise ValueError(f"extension name {name!r} is reserved for a CloudEvents attribute")
        if not isinstance(value, str):
            raise ValueError(f"extension {name!r} must be a string")
        if len(value) > MAX_EXTENSION_VALUE_LENGTH:
            raise ValueError(
                f"extension {name!r} is at most {MAX_EXTENSION_VALUE_LENGTH} characters, "
                f"got {len(value)}"
            )
        if _NOT_IN_A_STRING.search(value):
            raise ValueError(
                f"extension {name!r} holds a character CloudEvents strings exclude "
                "(a control character, a surrogate or a noncharacter)"
            )
        checked[name] = value
    return checked


@dataclass(frozen=True, slots=True)
class NewEvent:
    """A CloudEvents 1.0 envelope about to be appended; ``subject`` is the aggregate id.

    ``time`` must be timezone-aware and ``data`` plain JSON (no NaN or Infinity): adapters
    refuse anything else rather than store something another adapter would read differently.
    ``extensions`` are CloudEvents extension attributes (an idempotency fingerprint, a trace
    id): checked here (``checked_extensions``), once for every adapter, and kept as a copy.
    """

    type: str
    data: Mapping[str, Any]
    subject: str
    id: UUID = field(default_factory=uuid4)
    source: str = DEFAULT_SOURCE
    time: datetime = field(default_factory=_utc_now)
    extensions: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "extensions", checked_extensions(self.extensions))


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """A stored event: the envelope plus where it sits in its stream and in the global log."""

    id: UUID
    type: str
    data: Mapping[str, Any]
    subject: str
    source: str
    time: datetime
    stream: str
    version: int
    position: int
    extensions: Mapping[str, str] = field(default_factory=dict)

    def to_cloudevent(self, extensions: Collection[str] | None = None) -> dict[str, Any]:
        """The structured-mode CloudEvents 1.0 JSON form: the stored extensions (only those
        named in ``extensions``, when given: what a reader may see) and the log coordinates as
        extension attributes. The stored ones come first, so that whatever a record was built
        with, none can stand in for an attribute of the envelope or the log."""
        shown = self.extensions
        if extensions is not None:
            shown = {name: value for name, value in shown.items() if name in extensions}
        return {
            **shown,
            "specversion": CLOUDEVENTS_SPEC_VERSION,
            "id": str(self.id),
            "source": self.source,
            "type": self.type,
            "subject": self.subject,
            "time": self.time.isoformat(),
            "datacontenttype": "application/json",
            "data": dict(self.data),
            "stream": self.stream,
            "streamversion": self.version,
            "position": self.position,
        }


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Serialised aggregate state at ``version``; ``schema`` lets loaders ignore stale shapes."""

    stream: str
    version: int
    state: Mapping[str, Any]
    schema: int = 1


@dataclass(frozen=True, slots=True)
class AppendResult:
    """Where an append left the log: the stream's version and the global position of the batch.

    Why the position: callers (the API) use it for read-your-writes, waiting until the
    projector's checkpoint has reached it before they query the read side, and as the SSE
    event id a client resumes from. So it must be the position the batch's last event is
    read back at (``read``/``read_all``), also for an idempotent re-append, where it is the
    position the batch was stored at the first time, so that a retried command is answered
    exactly like the original. An empty batch writes nothing and leaves nothing to wait for:
    its position is 0.
    """

    version: int
    """The stream's version after the batch."""
    position: int
    """The global position of the batch's last event; 0 for an empty batch."""
    replayed: bool = False
    """True when every event of the batch was already stored (an idempotent re-append) and
    this append wrote nothing: the caller must not take its own, just decided, events as the
    stored ones (another activation may have decided the same ids differently), but reload."""


class EventStoreError(Exception):
    """Base of every error an adapter raises on purpose."""


class WrongExpectedVersion(EventStoreError):
    """The stream is not at the version the writer expected: someone else wrote first."""

    def __init__(self, stream: str, expected: ExpectedVersion, actual: int) -> None:
        super().__init__(f"stream {stream!r}: expected version {expected}, actual {actual}")
        self.stream = stream
        self.expected = expected
        self.actual = actual

    def __reduce__(self) -> tuple[type[WrongExpectedVersion], tuple[str, ExpectedVersion, int]]:
        # Errors cross process boundaries (Ray) by pickling: rebuild from our own arguments.
        return type(self), (self.stream, self.expected, self.actual)


class DuplicateEventId(EventStoreError):
    """An event id is already stored, but not as an exact re-append of this batch."""


class StoreUnavailable(EventStoreError):
    """The store cannot be reached or failed; nothing of the failed call was acknowledged."""


def check_expected_version(stream: str, expected: ExpectedVersion, actual: int) -> None:
    """Shared rule for adapters that check the condition themselves (SQL stores)."""
    if expected == StreamState.ANY:
        return
    if expected == StreamState.NO_STREAM:
        ok = actual == 0
    elif expected == StreamState.EXISTS:
        ok = actual > 0
    else:
        ok = actual == expected
    if not ok:
        raise WrongExpectedVersion(stream, expected, actual)


def stored_batch_end(
    stream: str, ids: Sequence[Hashable], found: Iterable[Sequence[Any]]
) -> AppendResult | None:
    """Shared rule for adapters that look the batch's ids up themselves (SQL stores).

    ``found`` holds ``(id, stream, version, position)`` of those ids already stored. Returns
    where the batch's last event is if the whole batch is stored in this stream, in order at
    consecutive versions (a retried append); None if none of its ids is stored; raises
    DuplicateEventId for any other overlap.
    """
    rows = {row[0]: row for row in found}
    if not rows:
        return None
    first = rows.get(ids[0])
    if first is None or any(
        (row := rows.get(event_id)) is None or (row[1], row[2]) != (stream, first[2] + n)
        for n, event_id in enumerate(ids)
    ):
        raise DuplicateEventId(
            f"{len(rows)} of {len(ids)} event ids are already stored, "
            f"but not as this exact batch on {stream!r}"
        )
    return AppendResult(first[2] + len(ids) - 1, rows[ids[-1]][3], replayed=True)


class EventStore(abc.ABC):
    """Append-only log of streams with optimistic concurrency and a global order."""

    detects_cross_stream_duplicate_ids: ClassVar[bool] = True
    """Whether ``append`` raises DuplicateEventId for an id already stored in another stream.

    That takes an index of every stored id, which not every store has (KurrentDB does not):
    where this is False, such an event is written again in the new stream.
    """

    @abc.abstractmethod
    async def append(
        self, stream: str, events: Sequence[NewEvent], expected_version: ExpectedVersion
    ) -> AppendResult:
        """Append atomically; return the stream's version after the batch and the global
        position of the batch's last event (see AppendResult for why callers need both).

        Raises WrongExpectedVersion when the condition fails (an exact version 0 means the
        stream must not exist). Re-appending a batch whose ids are all already stored in this
        stream, in this order, at consecutive versions, writes nothing and returns the version
        and position of the batch's last event as stored, whatever ``expected_version`` says:
        this is what makes command retries and migrations idempotent. Any other overlap with
        stored ids (a partial batch, another order, another stream) and an id repeated within
        the batch raise DuplicateEventId; an id stored in another stream only where
        ``detects_cross_stream_duplicate_ids`` is True. An empty batch checks the condition
        and returns the current version, at position 0.
        """

    @abc.abstractmethod
    async def read(
        self, stream: str, from_version: int = 1, limit: int | None = None
    ) -> list[RecordedEvent]:
        """Events of one stream with version >= ``from_version``, oldest first."""

    @abc.abstractmethod
    async def stream_version(self, stream: str) -> int:
        """Current version of the stream (0 when it does not exist)."""

    @abc.abstractmethod
    async def read_all(self, after_position: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        """Events of every stream with position > ``after_position``, in global order.

        A reader that resumes from the last position it saw never misses an event that
        commits later with a lower position: adapters guarantee positions become visible in
        order.
        """

    @abc.abstractmethod
    async def last_position(self) -> int:
        """Position of the newest committed event (0 when the log is empty)."""

    @abc.abstractmethod
    def subscribe_all(self, after_position: int = 0) -> AsyncIterator[RecordedEvent]:
        """Catch up from ``after_position``, then follow new events live, forever."""

    @abc.abstractmethod
    async def save_snapshot(self, snapshot: Snapshot) -> bool:
        """Store the stream's snapshot if it is current and newer; say whether it was stored.

        Conditional in the store, not in the caller: a snapshot is taken only when the stream
        is still at ``snapshot.version`` (its writer's state is the stored one, nobody wrote
        since) and that version is newer than the stored snapshot's. So a slow or stale writer
        (an old activation, a failover overlap) can never replace a newer snapshot or persist
        state the stream does not hold; refusing costs only a longer replay on the next load.
        """

    @abc.abstractmethod
    async def load_snapshot(self, stream: str) -> Snapshot | None:
        """The stream's latest snapshot, if any."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections; the store is unusable afterwards."""
