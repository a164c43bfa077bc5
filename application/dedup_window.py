"""Recognising a retried command in memory, in a few bytes per event.

Every activation keeps the ids of its stream's last events, so that a command retried after a
crash or a timeout is answered as the first time without a round trip, and a reused
Idempotency-Key sent for another request is refused. With 10,000 activations per host that
window must be small: it holds 24 bytes per event in three flat arrays, not objects.

What makes that possible: the window is the stream's *last* events, whose versions are
contiguous, so a version is ``first_version + index``; and an event id or a request
fingerprint is kept as a 64-bit digest. Two different ids share a digest with odds of about
2^-62 per pair (uuid5 fixes a few bits), and a command is taken as applied only if the digests
of *all* its events follow one another: a false "applied" is not a practical concern. The
store's own id index stays behind the window: an append of events it already holds is reported
as ``replayed``, however far back they are.
"""

from __future__ import annotations

import base64
import hashlib
import sys
from array import array
from collections.abc import Iterable, Mapping
from typing import Any
from uuid import UUID, uuid5

from application.errors import IdempotencyKeyReused
from eventstore.port import AppendResult

DEDUP_WINDOW_SIZE = 2048
_LOW_64 = (1 << 64) - 1
_NO_FINGERPRINT = 0


def command_event_ids(command_id: UUID, count: int) -> list[UUID]:
    """Event ids of a command's events: a retry re-derives the same ids."""
    return [uuid5(command_id, str(index)) for index in range(count)]


def same_request(stored: str | None, sent: str | None) -> None:
    """Refuse a command already applied for one request and now sent for another. Where either
    side has no fingerprint (a system command, an event stored before fingerprints) there is
    nothing to compare, and the command is taken as the retry it claims to be."""
    if stored is not None and sent is not None and stored != sent:
        raise_key_reused()


def raise_key_reused() -> None:
    raise IdempotencyKeyReused(
        "this Idempotency-Key was already used on this agent for another request"
        " (another body or route); send a new key for a new request"
    )


def _id_digest(event_id: UUID) -> int:
    return event_id.int & _LOW_64


def _fingerprint_digest(fingerprint: str | None) -> int:
    if fingerprint is None:
        return _NO_FINGERPRINT
    digest = int.from_bytes(hashlib.blake2b(fingerprint.encode(), digest_size=8).digest(), "big")
    return digest or 1  # 0 means "none"


class DedupWindow:
    """The ids (as digests) of a stream's last ``limit`` events, with their global positions and
    the digest of the request fingerprint a command's first event carries (0: none).

    An append reports the position of its batch's last event only, so every event of a batch
    is recorded with that one; ``applied`` answers from a command's last event, so what it
    returns is always that event's own position.
    """

    __slots__ = ("_fingerprints", "_first_version", "_ids", "_positions", "limit")

    def __init__(self, limit: int = DEDUP_WINDOW_SIZE) -> None:
        self.limit = limit
        self._first_version = 1
        self._ids = array("Q")
        self._positions = array("q")
        self._fingerprints = array("Q")

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def nbytes(self) -> int:
        """Bytes the window's arrays hold (what grows with the window)."""
        arrays = (self._ids, self._positions, self._fingerprints)
        return sum(sys.getsizeof(held) for held in arrays) + sys.getsizeof(self)

    def add(
        self, ids: Iterable[UUID], appended: AppendResult, fingerprint: str | None = None
    ) -> None:
        """Events stored as one batch that ended at ``appended``; ``fingerprint`` is what the
        first of them carries. A batch that does not follow the window's last event (the
        window never saw the versions between) starts the window afresh."""
        ids = list(ids)
        if not ids:
            return
        first = appended.version - len(ids) + 1
        if first != self._first_version + len(self._ids):
            self._clear(first)
        for offset, event_id in enumerate(ids):
            self._ids.append(_id_digest(event_id))
            self._positions.append(appended.position)
            self._fingerprints.append(_fingerprint_digest(fingerprint) if offset == 0 else 0)
        excess = len(self._ids) - self.limit
        if excess > 0:
            del self._ids[:excess], self._positions[:excess], self._fingerprints[:excess]
            self._first_version += excess

    def applied(self, command_id: UUID, fingerprint: str | None = None) -> AppendResult | None:
        """Stream version and global position after the command's events, if they are stored
        (the same as when the command was first applied); else None. Raises
        IdempotencyKeyReused if they were stored for a request other than ``fingerprint``."""
        try:
            start = self._ids.index(_id_digest(uuid5(command_id, "0")))
        except ValueError:
            return None
        last = start
        while last + 1 < len(self._ids) and self._ids[last + 1] == _id_digest(
            uuid5(command_id, str(last + 1 - start))
        ):
            last += 1
        stored = self._fingerprints[start]
        sent = _fingerprint_digest(fingerprint)
        if _NO_FINGERPRINT not in (stored, sent) and stored != sent:
            raise_key_reused()
        return AppendResult(self._first_version + last, self._positions[last])

    def to_json(self) -> dict[str, Any]:
        """A compact, byte-order-independent form for snapshots."""
        return {
            "first_version": self._first_version,
            "ids": _encode(self._ids),
            "positions": _encode(self._positions),
            "fingerprints": _encode(self._fingerprints),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], limit: int = DEDUP_WINDOW_SIZE) -> DedupWindow:
        window = cls(limit)
        window._first_version = int(data["first_version"])
        window._ids = _decode("Q", data["ids"])
        window._positions = _decode("q", data["positions"])
        window._fingerprints = _decode("Q", data["fingerprints"])
        if not len(window._ids) == len(window._positions) == len(window._fingerprints):
            raise ValueError("a dedup window's arrays differ in length")
        return window

    def _clear(self, first_version: int) -> None:
        self._first_version = first_version
        del self._ids[:], self._positions[:], self._fingerprints[:]


def _encode(values: array[int]) -> str:
    little = array(values.typecode, values)
    if sys.byteorder == "big":
        little.byteswap()
    return base64.b64encode(little.tobytes()).decode("ascii")


def _decode(typecode: str, text: str) -> array[int]:
    values = array(typecode)
    values.frombytes(base64.b64decode(text, validate=True))
    if sys.byteorder == "big":
        values.byteswap()
    return values
