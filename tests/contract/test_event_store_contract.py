"""The EventStore port's contract, run against every adapter (see conftest.py).

Every test is valid on a shared server: it writes only to fresh ``agent-{uuid}`` streams,
compares global reads only on its own streams and takes positions relative to the
``last_position()`` it saw first.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from psycopg import sql

from eventstore import postgres as postgres_store
from eventstore import sqlite as sqlite_store
from eventstore.port import (
    CLOUDEVENTS_SPEC_VERSION,
    AppendResult,
    DuplicateEventId,
    EventStore,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    Snapshot,
    StreamState,
    WrongExpectedVersion,
)
from tests.contract.conftest import StoreOpener
from tests.postgres_support import POSTGRES_URL, drop_schema, require_postgres

WAIT_S = 10.0  # generous upper bound for a subscriber; tests return as soon as events arrive


def new_stream() -> str:
    return f"agent-{uuid4()}"


def event(stream: str, n: int = 0, **data: Any) -> NewEvent:
    return NewEvent(
        type="test.thing.happened.v1", data={"n": n, **data}, subject=stream.removeprefix("agent-")
    )


def batch(stream: str, count: int) -> list[NewEvent]:
    return [event(stream, n) for n in range(count)]


async def read_all_of(
    store: EventStore, after: int, streams: Collection[str]
) -> list[RecordedEvent]:
    """Every event after ``after`` in global order, restricted to ``streams``."""
    found: list[RecordedEvent] = []
    position = after
    while page := await store.read_all(position, 100):
        found.extend(e for e in page if e.stream in streams)
        position = page[-1].position
    return found


class Subscriber:
    """Collects a live ``subscribe_all`` on the test's own streams in a background task."""

    def __init__(self, store: EventStore, after: int, streams: Collection[str]) -> None:
        self.events: list[RecordedEvent] = []
        self._streams = streams
        self._arrived = asyncio.Event()
        self._task = asyncio.create_task(self._run(store, after))

    async def _run(self, store: EventStore, after: int) -> None:
        try:
            async for recorded in store.subscribe_all(after):
                if recorded.stream in self._streams:
                    self.events.append(recorded)
                    self._arrived.set()
        finally:
            self._arrived.set()  # wake wait_for so it can report the subscription's failure

    async def wait_for(self, count: int) -> list[RecordedEvent]:
        """A copy of what arrived once at least ``count`` events have."""
        try:
            async with asyncio.timeout(WAIT_S):
                while len(self.events) < count:
                    if self._task.done():
                        self._task.result()
                        pytest.fail("subscribe_all ended; it must follow the log forever")
                    self._arrived.clear()
                    await self._arrived.wait()
        except TimeoutError:
            pytest.fail(f"{len(self.events)} of {count} events arrived within {WAIT_S} s")
        return list(self.events)

    async def stop(self) -> None:
        self._task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self._task


def ids(events: Sequence[RecordedEvent] | Sequence[NewEvent]) -> list[str]:
    return [str(e.id) for e in events]


async def stored_at(store: EventStore, stream: str, version: int) -> AppendResult:
    """Where the event at ``version`` of ``stream`` is stored, as an append reports it."""
    (recorded,) = await store.read(stream, version, limit=1)
    return AppendResult(recorded.version, recorded.position)


# --- append and read -------------------------------------------------------------------------


async def test_append_numbers_versions_from_one_and_read_returns_them_in_order(
    event_store: EventStore,
) -> None:
    stream = new_stream()
    first, second = batch(stream, 3), batch(stream, 2)

    start = await event_store.last_position()
    appended = [
        await event_store.append(stream, first, StreamState.NO_STREAM),
        await event_store.append(stream, second, 3),
    ]

    recorded = await event_store.read(stream)
    assert [e.version for e in recorded] == [1, 2, 3, 4, 5]
    # Each append reports the version and position its batch's last event is read back at.
    assert appended == [
        AppendResult(3, recorded[2].position),
        AppendResult(5, recorded[4].position),
    ]
    assert await read_all_of(event_store, start, {stream}) == recorded
    assert ids(recorded) == ids(first + second)
    assert {e.stream for e in recorded} == {stream}
    assert [e.data["n"] for e in recorded] == [0, 1, 2, 0, 1]


async def test_stream_version_is_zero_when_absent_and_counts_events(
    event_store: EventStore,
) -> None:
    stream, other = new_stream(), new_stream()
    assert await event_store.stream_version(stream) == 0

    await event_store.append(stream, batch(stream, 2), StreamState.ANY)
    await event_store.append(stream, batch(stream, 1), StreamState.ANY)
    await event_store.append(other, batch(other, 4), StreamState.ANY)

    assert await event_store.stream_version(stream) == 3
    assert await event_store.stream_version(other) == 4


async def test_read_from_a_version_and_with_a_limit(event_store: EventStore) -> None:
    stream = new_stream()
    await event_store.append(stream, batch(stream, 5), StreamState.NO_STREAM)

    assert [e.version for e in await event_store.read(stream, 3)] == [3, 4, 5]
    assert [e.version for e in await event_store.read(stream, 2, limit=2)] == [2, 3]
    assert [e.version for e in await event_store.read(stream, 5, limit=10)] == [5]
    assert await event_store.read(stream, 6) == []
    assert await event_store.read(new_stream()) == []


# --- expected versions ----------------------------------------------------------------------


async def assert_wrong_version(
    store: EventStore, stream: str, expected: ExpectedVersion, actual: int
) -> None:
    before = await store.read(stream)
    with pytest.raises(WrongExpectedVersion) as raised:
        await store.append(stream, [event(stream)], expected)
    assert (raised.value.stream, raised.value.expected, raised.value.actual) == (
        stream,
        expected,
        actual,
    )
    assert await store.read(stream) == before


async def test_exact_expected_version(event_store: EventStore) -> None:
    stream = new_stream()
    assert (await event_store.append(stream, batch(stream, 1), 0)).version == 1  # 0: absent
    assert (await event_store.append(stream, batch(stream, 1), 1)).version == 2

    await assert_wrong_version(event_store, stream, 1, actual=2)
    await assert_wrong_version(event_store, stream, 3, actual=2)
    await assert_wrong_version(event_store, new_stream(), 1, actual=0)


async def test_no_stream_expects_an_absent_stream(event_store: EventStore) -> None:
    stream = new_stream()
    assert (await event_store.append(stream, batch(stream, 2), StreamState.NO_STREAM)).version == 2
    await assert_wrong_version(event_store, stream, StreamState.NO_STREAM, actual=2)


async def test_exists_expects_an_existing_stream(event_store: EventStore) -> None:
    stream = new_stream()
    await assert_wrong_version(event_store, stream, StreamState.EXISTS, actual=0)
    assert await event_store.stream_version(stream) == 0

    await event_store.append(stream, batch(stream, 2), StreamState.NO_STREAM)
    assert (await event_store.append(stream, batch(stream, 1), StreamState.EXISTS)).version == 3


async def test_any_appends_whatever_the_version(event_store: EventStore) -> None:
    stream = new_stream()
    first = await event_store.append(stream, batch(stream, 2), StreamState.ANY)
    second = await event_store.append(stream, batch(stream, 3), StreamState.ANY)
    assert first == await stored_at(event_store, stream, 2)
    assert second == await stored_at(event_store, stream, 5)


async def test_an_empty_batch_checks_the_condition_and_writes_nothing(
    event_store: EventStore,
) -> None:
    stream = new_stream()
    # Position 0: nothing was written, so there is nothing to wait for.
    assert await event_store.append(stream, [], StreamState.NO_STREAM) == AppendResult(0, 0)
    assert await event_store.append(stream, [], StreamState.ANY) == AppendResult(0, 0)
    assert await event_store.stream_version(stream) == 0

    await event_store.append(stream, batch(stream, 2), StreamState.NO_STREAM)
    assert await event_store.append(stream, [], 2) == AppendResult(2, 0)
    assert await event_store.append(stream, [], StreamState.EXISTS) == AppendResult(2, 0)
    assert await event_store.append(stream, [], StreamState.ANY) == AppendResult(2, 0)
    with pytest.raises(WrongExpectedVersion) as raised:
        await event_store.append(stream, [], 5)
    assert raised.value.actual == 2
    assert await event_store.stream_version(stream) == 2


async def test_a_failed_append_writes_nothing(event_store: EventStore) -> None:
    stream = new_stream()
    start = await event_store.last_position()
    await event_store.append(stream, batch(stream, 2), StreamState.NO_STREAM)
    rejected = batch(stream, 3)

    with pytest.raises(WrongExpectedVersion):
        await event_store.append(stream, rejected, 1)

    assert await event_store.stream_version(stream) == 2
    assert [e.version for e in await read_all_of(event_store, start, {stream})] == [1, 2]
    # nothing of the rejected batch was kept: its ids are still free
    assert await event_store.append(stream, rejected, 2) == await stored_at(event_store, stream, 5)


# --- idempotency ----------------------------------------------------------------------------


async def test_re_appending_a_stored_batch_is_a_no_op_returning_its_last_version(
    event_store: EventStore,
) -> None:
    stream, later = new_stream(), new_stream()
    start = await event_store.last_position()
    first, second = batch(stream, 2), batch(stream, 1)
    first_at = await event_store.append(stream, first, StreamState.NO_STREAM)
    second_at = await event_store.append(stream, second, 2)
    await event_store.append(later, batch(later, 1), StreamState.NO_STREAM)  # the log moves on
    stored = await read_all_of(event_store, start, {stream})
    assert first_at == AppendResult(2, stored[1].position)
    assert second_at == AppendResult(3, stored[2].position)

    # A re-append reports where the batch was stored the first time, not the log's end, and
    # that it wrote nothing (a writer must then not take its own events for the stored ones).
    assert not first_at.replayed
    assert not second_at.replayed
    replay_of_first = replace(first_at, replayed=True)
    replay_of_second = replace(second_at, replayed=True)
    assert await event_store.append(stream, first, StreamState.NO_STREAM) == replay_of_first
    assert await event_store.append(stream, first, 0) == replay_of_first  # stale exact version
    assert await event_store.append(stream, first, StreamState.ANY) == replay_of_first
    assert await event_store.append(stream, first, StreamState.EXISTS) == replay_of_first
    assert await event_store.append(stream, second, 2) == replay_of_second  # the last write
    assert await event_store.append(stream, second, StreamState.ANY) == replay_of_second

    assert await event_store.stream_version(stream) == 3
    assert await read_all_of(event_store, start, {stream}) == stored
    assert ids(stored) == ids(first + second)


async def test_a_stored_id_outside_an_exact_re_append_is_a_duplicate(
    event_store: EventStore,
) -> None:
    stream = new_stream()
    stored = batch(stream, 2)
    await event_store.append(stream, stored, StreamState.NO_STREAM)
    fresh = event(stream, 9)

    cases = {
        "partial overlap": [stored[1], fresh],
        "fresh event first": [fresh, *stored],
        "out of order": [stored[1], stored[0]],
    }
    for case, events in cases.items():
        with pytest.raises(DuplicateEventId):
            await event_store.append(stream, events, StreamState.ANY)
        assert ids(await event_store.read(stream)) == ids(stored), case


async def test_an_id_stored_in_another_stream_is_a_duplicate(event_store: EventStore) -> None:
    if not event_store.detects_cross_stream_duplicate_ids:
        pytest.skip(
            f"{type(event_store).__name__} does not detect ids stored in another stream "
            "(detects_cross_stream_duplicate_ids is False: it has no index by event id)"
        )
    stream, elsewhere = new_stream(), new_stream()
    stored = batch(stream, 2)
    await event_store.append(stream, stored, StreamState.NO_STREAM)

    with pytest.raises(DuplicateEventId):
        await event_store.append(elsewhere, stored, StreamState.ANY)
    assert await event_store.stream_version(elsewhere) == 0
    assert ids(await event_store.read(stream)) == ids(stored)


# --- envelope -------------------------------------------------------------------------------


async def test_the_envelope_round_trips_exactly(event_store: EventStore) -> None:
    stream = new_stream()
    data = {
        "text": "héllo wörld ✓ 日本語 🚀",
        "nested": {"list": [1, 2.5, None, True, False, "x"], "empty": {}, "deep": {"a": [{}]}},
        "big": 2**53,
        "negative": -7,
        "quote": 'she said "hi"\n\\',
    }
    time = datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    sent = NewEvent(
        type="agent.session.started.v1",
        data=data,
        subject=stream.removeprefix("agent-"),
        id=uuid4(),
        source="urn:agenthost:test",
        time=time,
    )
    start = await event_store.last_position()
    await event_store.append(stream, [sent], StreamState.NO_STREAM)

    (from_stream,) = await event_store.read(stream)
    (from_log,) = await read_all_of(event_store, start, {stream})
    assert from_log == from_stream
    recorded = from_stream
    assert (recorded.id, recorded.type, recorded.source, recorded.subject) == (
        sent.id,
        sent.type,
        sent.source,
        sent.subject,
    )
    assert recorded.data == data
    assert recorded.time == time
    assert recorded.time.utcoffset() is not None
    assert (recorded.stream, recorded.version) == (stream, 1)
    assert recorded.position > start

    cloudevent = json.loads(json.dumps(recorded.to_cloudevent()))
    assert cloudevent == {
        "specversion": CLOUDEVENTS_SPEC_VERSION,
        "id": str(sent.id),
        "source": "urn:agenthost:test",
        "type": "agent.session.started.v1",
        "subject": sent.subject,
        "time": cloudevent["time"],
        "datacontenttype": "application/json",
        "data": data,
        "stream": stream,
        "streamversion": 1,
        "position": recorded.position,
    }
    assert datetime.fromisoformat(cloudevent["time"]) == time


# --- extension attributes ------------------------------------------------------------------

# At every limit at once: 8 extensions, a 20-character name, a 256-character value, an empty one.
EXTENSIONS = {
    "idempotencykey": "3f1c9a2e-key",
    "fingerprint": "sha256:" + "ab" * 32,
    "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "tracestate": "vendor=é✓日本🚀",
    "a": "",
    "x2": "v" * 256,
    "abcdefghij0123456789": "twenty-character name",
    "user": 'quote " backslash \\ tab-free',
}
# The CloudEvents context attributes, and the log coordinates to_cloudevent adds.
RESERVED_NAMES = (
    *("id", "source", "specversion", "type", "datacontenttype", "dataschema", "subject"),
    *("time", "data", "stream", "streamversion", "position"),
)


async def test_extensions_round_trip_through_append_read_read_all_and_subscribe_all(
    event_store: EventStore,
) -> None:
    stream = new_stream()
    start = await event_store.last_position()
    subscriber = Subscriber(event_store, start, {stream})
    sent = [
        NewEvent(type="t.v1", data={"n": 0}, subject="s", extensions=EXTENSIONS),
        NewEvent(type="t.v1", data={"n": 1}, subject="s", extensions={"traceid": "t-2"}),
    ]
    try:
        await event_store.append(stream, sent, StreamState.NO_STREAM)

        recorded = await event_store.read(stream)
        assert [e.extensions for e in recorded] == [EXTENSIONS, {"traceid": "t-2"}]
        assert await read_all_of(event_store, start, {stream}) == recorded
        assert await subscriber.wait_for(2) == recorded
    finally:
        await subscriber.stop()

    # CloudEvents JSON carries extensions as top-level attributes, beside the envelope's own.
    cloudevent = json.loads(json.dumps(recorded[0].to_cloudevent()))
    assert {name: cloudevent[name] for name in EXTENSIONS} == EXTENSIONS
    assert (cloudevent["id"], cloudevent["stream"], cloudevent["position"]) == (
        str(sent[0].id),
        stream,
        recorded[0].position,
    )


async def test_an_event_appended_without_extensions_reads_back_with_none(
    event_store: EventStore,
) -> None:
    stream = new_stream()
    start = await event_store.last_position()
    await event_store.append(stream, [event(stream)], StreamState.NO_STREAM)

    (recorded,) = await event_store.read(stream)
    assert recorded.extensions == {}
    assert (await read_all_of(event_store, start, {stream}))[0].extensions == {}
    assert set(recorded.to_cloudevent()) == {
        "specversion",
        "id",
        "source",
        "type",
        "subject",
        "time",
        "datacontenttype",
        "data",
        "stream",
        "streamversion",
        "position",
    }


async def test_a_re_append_with_other_extensions_returns_the_stored_batch_unchanged(
    event_store: EventStore,
) -> None:
    # As with data, a batch is recognised by its ids: the batch stored first wins.
    stream = new_stream()
    first = NewEvent(type="t.v1", data={}, subject="s", extensions={"fingerprint": "one"})
    stored_at_first = await event_store.append(stream, [first], StreamState.NO_STREAM)
    retried = NewEvent(
        type="t.v1",
        data={},
        subject="s",
        id=first.id,
        time=first.time,
        extensions={"fingerprint": "two", "extra": "x"},
    )

    assert await event_store.append(stream, [retried], StreamState.ANY) == replace(
        stored_at_first, replayed=True
    )
    assert [e.extensions for e in await event_store.read(stream)] == [{"fingerprint": "one"}]


@pytest.mark.parametrize(
    ("extensions", "complaint"),
    [
        ({"TraceId": "x"}, "extension name"),
        ({"trace-id": "x"}, "extension name"),
        ({"trace_id": "x"}, "extension name"),
        ({"": "x"}, "extension name"),
        ({"abcdefghij0123456789k": "x"}, "extension name"),  # 21 characters
        ({"éa": "x"}, "extension name"),
        ({"a\n": "x"}, "extension name"),
        ({7: "x"}, "extension name"),
        *(({name: "x"}, "reserved") for name in RESERVED_NAMES),
        ({f"e{n}": "x" for n in range(9)}, "at most 8"),
        ({"big": "v" * 257}, "at most 256"),
        ({"ctl": "line\nbreak"}, "character"),
        ({"ctl": "nul\x00"}, "character"),
        ({"ctl": "del\x7f"}, "character"),
        ({"ctl": "c1\x85"}, "character"),
        ({"ctl": "lone \ud800 surrogate"}, "character"),
        ({"ctl": "non\ufffe"}, "character"),
        ({"ctl": "non\U0010ffff"}, "character"),
        ({"num": 7}, "must be a string"),
        ({"none": None}, "must be a string"),
        ([("a", "b")], "mapping"),
    ],
)
def test_invalid_extensions_are_refused_when_the_event_is_built(
    extensions: Any, complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        NewEvent(type="t.v1", data={}, subject="s", extensions=extensions)


def test_a_new_event_keeps_its_own_copy_of_its_extensions() -> None:
    given = {"traceid": "t-1"}
    built = NewEvent(type="t.v1", data={}, subject="s", extensions=given)
    given["traceid"] = "line\nbreak"  # after construction: the checked copy is unaffected
    given["position"] = "0"
    assert built.extensions == {"traceid": "t-1"}


def test_extensions_cannot_stand_in_for_envelope_attributes_or_log_coordinates() -> None:
    # However a record was built, its own attributes win over an extension of the same name.
    recorded = RecordedEvent(
        id=uuid4(),
        type="t.v1",
        data={},
        subject="s",
        source="urn:agenthost",
        time=datetime.now(UTC),
        stream="agent-1",
        version=3,
        position=42,
        extensions={"id": "forged", "position": "0", "stream": "agent-2", "traceid": "t"},
    )
    cloudevent = recorded.to_cloudevent()
    assert (cloudevent["id"], cloudevent["position"], cloudevent["stream"]) == (
        str(recorded.id),
        42,
        "agent-1",
    )
    assert cloudevent["traceid"] == "t"


# --- the global log -------------------------------------------------------------------------


async def test_read_all_is_in_commit_order_and_pages_by_position(event_store: EventStore) -> None:
    a, b, c = new_stream(), new_stream(), new_stream()
    start = await event_store.last_position()
    written: list[NewEvent] = []
    for stream, count in [(a, 2), (b, 1), (a, 1), (c, 3), (b, 2)]:
        events = batch(stream, count)
        await event_store.append(stream, events, StreamState.ANY)
        written += events

    mine = await read_all_of(event_store, start, {a, b, c})
    assert ids(mine) == ids(written)
    positions = [e.position for e in mine]
    assert positions == sorted(set(positions))
    assert positions[0] > start
    assert await event_store.last_position() >= positions[-1]
    for stream in (a, b, c):  # the same records through either read
        assert await event_store.read(stream) == [e for e in mine if e.stream == stream]

    page = await event_store.read_all(start, limit=2)
    assert len(page) == 2
    assert start < page[0].position < page[1].position

    after_third = await read_all_of(event_store, mine[2].position, {a, b, c})
    assert after_third == mine[3:]

    paged: list[RecordedEvent] = []
    position = start
    while len(paged) < len(mine):
        page = await event_store.read_all(position, limit=3)
        assert page, "read_all ran dry before returning every event"
        paged += [e for e in page if e.stream in {a, b, c}]
        position = page[-1].position
    assert paged == mine


async def test_last_position_moves_past_each_append(event_store: EventStore) -> None:
    stream = new_stream()
    before = await event_store.last_position()
    await event_store.append(stream, batch(stream, 2), StreamState.NO_STREAM)
    after = await event_store.last_position()
    recorded = await event_store.read(stream)
    assert before < recorded[0].position < recorded[1].position <= after


async def test_subscribe_all_catches_up_then_follows_live_appends_from_any_instance(
    event_store: EventStore, event_store_factory: StoreOpener
) -> None:
    other = await event_store_factory()
    a, b = new_stream(), new_stream()
    start = await event_store.last_position()
    history = batch(a, 3)
    await event_store.append(a, history, StreamState.NO_STREAM)

    subscriber = Subscriber(event_store, start, {a, b})
    late_joiner = Subscriber(event_store, (await event_store.read(a))[0].position, {a, b})
    try:
        assert ids(await subscriber.wait_for(3)) == ids(history)
        assert ids(await late_joiner.wait_for(2)) == ids(history[1:])

        live_here, live_there = batch(a, 1), batch(b, 2)
        await event_store.append(a, live_here, 3)
        await other.append(b, live_there, StreamState.NO_STREAM)  # another "process"

        expected = ids(history + live_here + live_there)
        assert ids(await subscriber.wait_for(6)) == expected
        assert ids(await late_joiner.wait_for(5)) == expected[1:]
        assert subscriber.events == await read_all_of(event_store, start, {a, b})
    finally:
        await subscriber.stop()
        await late_joiner.stop()


# --- snapshots ------------------------------------------------------------------------------


async def test_snapshots_are_saved_replaced_and_loaded_per_stream(event_store: EventStore) -> None:
    stream, other = new_stream(), new_stream()
    assert await event_store.load_snapshot(stream) is None
    await event_store.append(stream, batch(stream, 3), StreamState.NO_STREAM)

    first = Snapshot(stream=stream, version=3, state={"name": "ä", "tags": ["x", {"y": None}]})
    assert await event_store.save_snapshot(first)
    assert await event_store.load_snapshot(stream) == first
    assert (await event_store.load_snapshot(stream) or first).schema == 1

    await event_store.append(stream, batch(stream, 4), 3)
    replaced = Snapshot(stream=stream, version=7, state={"name": "b"}, schema=2)
    assert await event_store.save_snapshot(replaced)
    assert await event_store.load_snapshot(stream) == replaced
    assert await event_store.load_snapshot(other) is None

    await event_store.append(other, batch(other, 1), StreamState.NO_STREAM)
    theirs = Snapshot(stream=other, version=1, state={}, schema=5)
    assert await event_store.save_snapshot(theirs)
    assert await event_store.load_snapshot(other) == theirs
    assert await event_store.load_snapshot(stream) == replaced


async def test_a_snapshot_is_stored_only_at_the_streams_version_and_newer_than_the_stored_one(
    event_store: EventStore,
) -> None:
    """A stale writer (an old activation, a failover overlap) cannot replace a newer snapshot
    or persist a state the stream does not hold."""
    stream = new_stream()
    await event_store.append(stream, batch(stream, 5), StreamState.NO_STREAM)
    current = Snapshot(stream=stream, version=5, state={"at": 5})
    assert await event_store.save_snapshot(current)

    refused = [
        Snapshot(stream=stream, version=5, state={"at": "a diverged 5"}),  # not newer
        Snapshot(stream=stream, version=3, state={"at": 3}),  # older than the stored one
        Snapshot(stream=stream, version=9, state={"at": 9}),  # past the stream's head
    ]
    for snapshot in refused:
        assert not await event_store.save_snapshot(snapshot), snapshot
    await event_store.append(stream, batch(stream, 2), 5)
    # behind the stream: its writer's state is not the stored one any more
    assert not await event_store.save_snapshot(Snapshot(stream=stream, version=6, state={}))
    nowhere = Snapshot(stream=new_stream(), version=1, state={})  # a stream with no events
    assert not await event_store.save_snapshot(nowhere)
    assert await event_store.load_snapshot(nowhere.stream) is None

    assert await event_store.load_snapshot(stream) == current
    latest = Snapshot(stream=stream, version=7, state={"at": 7})
    assert await event_store.save_snapshot(latest)
    assert await event_store.load_snapshot(stream) == latest


# --- concurrency ----------------------------------------------------------------------------


async def test_concurrent_appenders_on_one_stream_each_win_exactly_one_version(
    event_store: EventStore, event_store_factory: StoreOpener
) -> None:
    stores = [event_store, await event_store_factory()]
    stream = new_stream()
    writers = [event(stream, n) for n in range(50)]
    conflicts: list[tuple[int, int]] = []  # (version the loser saw, actual in the error)

    async def write(n: int, new_event: NewEvent) -> AppendResult:
        store = stores[n % 2]
        while True:
            seen = await store.stream_version(stream)
            try:
                return await store.append(stream, [new_event], seen)
            except WrongExpectedVersion as error:
                conflicts.append((seen, error.actual))

    won = await asyncio.gather(*(write(n, e) for n, e in enumerate(writers)))

    # exactly one successful append per version
    assert sorted(w.version for w in won) == list(range(1, 51))
    recorded = await event_store.read(stream)
    assert [e.version for e in recorded] == list(range(1, 51))
    assert Counter(ids(recorded)) == Counter(ids(writers))  # each writer's event once
    where = {str(e.id): AppendResult(e.version, e.position) for e in recorded}
    assert [where[str(e.id)] for e in writers] == won
    assert conflicts, "the writers never raced: the test proves nothing"
    assert all(seen < actual <= 50 for seen, actual in conflicts)  # someone else had won


async def test_a_live_subscriber_sees_concurrent_writers_exactly_once_in_log_order(
    event_store: EventStore, event_store_factory: StoreOpener
) -> None:
    stores = [event_store, await event_store_factory()]
    streams = [new_stream() for _ in range(6)]
    done = new_stream()
    start = await event_store.last_position()
    subscribers = [Subscriber(store, start, {*streams, done}) for store in stores]
    await asyncio.sleep(0)  # both subscriptions are running before the first write

    async def writer(w: int) -> int:
        store, written = stores[w % 2], 0
        for i in range(40):
            stream = streams[(w * 7 + i) % len(streams)]
            events = [event(stream, w * 100 + i, part=p) for p in range(1 + i % 2)]
            await store.append(stream, events, StreamState.ANY)
            written += len(events)
        return written

    try:
        total = sum(await asyncio.gather(*(writer(w) for w in range(8))))
        # The log is ordered: once this marker arrives, everything before it has too.
        await stores[1].append(done, [event(done)], StreamState.NO_STREAM)
        logged = await read_all_of(event_store, start, {*streams, done})

        assert total == 8 * 60
        assert len(logged) == total + 1
        for stream in streams:
            versions = [e.version for e in logged if e.stream == stream]
            assert versions == list(range(1, len(versions) + 1))
        for subscriber in subscribers:
            received = await subscriber.wait_for(total + 1)
            assert received[-1].stream == done
            assert len(set(ids(received))) == len(received)  # exactly once
            positions = [e.position for e in received]
            assert all(p < q for p, q in pairwise(positions))
            assert received == logged
    finally:
        for subscriber in subscribers:
            await subscriber.stop()


# --- logs written before extensions existed ----------------------------------------------------

OLD_EVENT_ID = UUID("0b6a3c0e-5d1f-4c6e-9a8b-7c6d5e4f3a2b")
OLD_TIME = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
# Schema version 1, as the code before extensions created and wrote it: its tables are
# MIGRATIONS[0] (append-only, never edited) and its events have no extensions column.
OLD_ROW = (
    str(OLD_EVENT_ID),
    "agent-old",
    1,
    "test.old.v1",
    "urn:agenthost",
    "old",
    OLD_TIME.isoformat(),
    '{"n":1}',
)
OLD_COLUMNS = "(id, stream, version, type, source, subject, time, data)"


def old_sqlite_file(path: Path) -> StoreOpener:
    with sqlite3.connect(path) as db:
        for statement in sqlite_store.MIGRATIONS[0]:
            db.execute(statement)
        db.execute("PRAGMA user_version = 1")
        db.execute(f"INSERT INTO events {OLD_COLUMNS} VALUES (?, ?, ?, ?, ?, ?, ?, ?)", OLD_ROW)
    db.close()
    return lambda: sqlite_store.SQLiteEventStore.open(path)


async def old_postgres_schema(schema: str) -> StoreOpener:
    require_postgres()
    identifier = sql.Identifier(schema)
    async with await psycopg.AsyncConnection.connect(POSTGRES_URL, autocommit=True) as db:
        for statement in (*postgres_store._VERSION_TABLE, *postgres_store.MIGRATIONS[0]):
            await db.execute(sql.SQL(statement).format(schema=identifier))
        await db.execute(
            sql.SQL("INSERT INTO {}.schema_version (version) VALUES (1)").format(identifier)
        )
        await db.execute(
            sql.SQL(
                "INSERT INTO {}.events (id, stream, version, type, source, subject, time, data) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb)"
            ).format(identifier),
            OLD_ROW,
        )
    return lambda: postgres_store.PostgresEventStore.open(POSTGRES_URL, schema=schema)


async def stored_schema_version(kind: str, where: str) -> int:
    if kind == "sqlite":
        with sqlite3.connect(where) as db:
            (version,) = db.execute("PRAGMA user_version").fetchone()
        db.close()
        return int(version)
    async with await psycopg.AsyncConnection.connect(POSTGRES_URL, autocommit=True) as pg:
        cursor = await pg.execute(
            sql.SQL("SELECT MAX(version) FROM {}.schema_version").format(sql.Identifier(where))
        )
        (version,) = await cursor.fetchone() or (0,)
        return int(version)


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_a_log_written_before_extensions_is_migrated_on_open_and_stays_readable(
    kind: str, tmp_path: Path
) -> None:
    where = str(tmp_path / "old.db") if kind == "sqlite" else f"test_{uuid4().hex[:12]}"
    schema_version: int
    open_old: StoreOpener
    if kind == "sqlite":
        open_old, schema_version = old_sqlite_file(Path(where)), sqlite_store.SCHEMA_VERSION
    else:
        open_old, schema_version = await old_postgres_schema(where), postgres_store.SCHEMA_VERSION
    opened: list[EventStore] = []
    try:
        # Two processes opening it at once: one migrates, the other finds it migrated.
        opened += await asyncio.gather(open_old(), open_old())
        assert await stored_schema_version(kind, where) == schema_version > 1
        for store in opened:
            (old,) = await store.read("agent-old")
            assert (old.id, old.type, old.subject, old.data, old.time) == (
                OLD_EVENT_ID,
                "test.old.v1",
                "old",
                {"n": 1},
                OLD_TIME,
            )
            assert (old.version, old.extensions) == (1, {})
        new = NewEvent(type="t.v1", data={}, subject="old", extensions={"traceid": "t"})
        assert (await opened[0].append("agent-old", [new], 1)).version == 2

        opened.append(await open_old())  # a migrated log opens as it is
        assert [e.extensions for e in await opened[-1].read_all()] == [{}, {"traceid": "t"}]
    finally:
        for store in opened:
            await store.close()
        if kind == "postgres":
            await drop_schema(where)


@pytest.mark.postgres
async def test_a_postgres_migration_to_extensions_that_runs_again_changes_nothing() -> None:
    """ADD COLUMN IF NOT EXISTS: a schema whose version row says 1 though the column is there
    (restored from a backup of the version table, say) still opens."""
    schema = f"test_{uuid4().hex[:12]}"
    open_old = await old_postgres_schema(schema)
    try:
        store = await open_old()
        await store.append(
            "agent-x", [NewEvent(type="t.v1", data={}, subject="x", extensions={"a": "b"})], 0
        )
        await store.close()
        async with await psycopg.AsyncConnection.connect(POSTGRES_URL, autocommit=True) as db:
            await db.execute(
                sql.SQL("UPDATE {}.schema_version SET version = 1").format(sql.Identifier(schema))
            )

        store = await open_old()
        try:
            assert [e.extensions for e in await store.read("agent-x")] == [{"a": "b"}]
            assert [e.extensions for e in await store.read("agent-old")] == [{}]
        finally:
            await store.close()
    finally:
        await drop_schema(schema)
