"""The KurrentDB adapter's translation between the port and kurrentdbclient, on the client's
real types and no server (plus what opening a closed port gives, and what append reports over a
stand-in client); the adapter's behaviour against a server is the contract suite's
(tests/contract, run when EVENTSTORE_URL is set)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kurrentdbclient import NewEvent as KurrentNewEvent
from kurrentdbclient import RecordedEvent as KurrentRecordedEvent
from kurrentdbclient import StreamState as KurrentStreamState
from kurrentdbclient.common import construct_filter_exclude_regex
from kurrentdbclient.streams import BaseStreamsService

from eventstore.factory import open_event_store
from eventstore.kurrentdb import (
    GLOBAL_LOG_EXCLUDE,
    SNAPSHOT_TYPE,
    KurrentDBEventStore,
    exact_version,
    from_kurrent_event,
    in_global_log,
    kurrent_current_version,
    snapshot_from_kurrent,
    snapshot_stream,
    snapshot_to_kurrent,
    stored_batch_end,
    to_kurrent_event,
    version_from_kurrent,
)
from eventstore.port import (
    RESERVED_ATTRIBUTE_NAMES,
    AppendResult,
    DuplicateEventId,
    NewEvent,
    RecordedEvent,
    Snapshot,
    StoreUnavailable,
    StreamState,
)

STREAM = "agent-7f9c"
IST = timezone(timedelta(hours=5, minutes=30))


def recorded_as_stored(
    new: KurrentNewEvent, stream: str = STREAM, position: int = 0, commit: int = 4242
) -> KurrentRecordedEvent:
    """What the client hands back for ``new`` once the server stored it (commit == prepare)."""
    return KurrentRecordedEvent(
        type=new.type,
        data=new.data,
        metadata=new.metadata,
        content_type=new.content_type,
        id=new.id,
        stream_name=stream,
        stream_position=position,
        commit_position=commit,
        prepare_position=commit,
    )


def system_event(event_type: str, stream: str) -> KurrentRecordedEvent:
    return KurrentRecordedEvent(
        type=event_type,
        data=b"{}",
        metadata=b"",
        content_type="application/json",
        id=uuid4(),
        stream_name=stream,
        stream_position=0,
        commit_position=100,
        prepare_position=100,
    )


# --- versions -------------------------------------------------------------------------------


def test_exact_conditions_name_a_version_and_no_stream_is_zero() -> None:
    assert exact_version(StreamState.NO_STREAM) == 0
    assert exact_version(0) == 0
    assert exact_version(5) == 5
    with pytest.raises(ValueError, match=">= 0"):
        exact_version(-1)


def test_any_and_exists_are_resolved_by_the_adapter_not_sent_to_the_server() -> None:
    assert exact_version(StreamState.ANY) is None
    assert exact_version(StreamState.EXISTS) is None


def test_our_1_based_version_is_the_position_of_the_last_event_plus_one() -> None:
    assert kurrent_current_version(0) is KurrentStreamState.NO_STREAM
    assert kurrent_current_version(1) == 0
    assert kurrent_current_version(7) == 6
    assert version_from_kurrent(KurrentStreamState.NO_STREAM) == 0
    assert version_from_kurrent(0) == 1
    assert version_from_kurrent(6) == 7
    for version in range(50):
        current = kurrent_current_version(version)
        assert isinstance(current, int) or current is KurrentStreamState.NO_STREAM
        assert version_from_kurrent(current) == version


# --- the envelope ---------------------------------------------------------------------------


def test_a_new_event_becomes_a_client_event_with_json_data_and_cloudevents_metadata() -> None:
    sent = NewEvent(
        type="agent.session.started.v1",
        data={"text": "héllo ✓", "n": 2**53, "nested": {"list": [1, 2.5, None, True]}},
        subject="7f9c",
        source="urn:agenthost:test",
        time=datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=IST),
        extensions={"traceid": "t-1", "fingerprint": "sha256:ab"},
    )

    record = to_kurrent_event(sent)

    assert isinstance(record, KurrentNewEvent)
    assert (record.type, record.id, record.content_type) == (
        "agent.session.started.v1",
        sent.id,
        "application/json",
    )
    assert json.loads(record.data) == dict(sent.data)
    assert "héllo ✓".encode() in record.data  # UTF-8, not \u escapes
    # Extensions sit beside the envelope's attributes, as in CloudEvents JSON: strings only.
    assert json.loads(record.metadata) == {
        "source": "urn:agenthost:test",
        "subject": "7f9c",
        "time": "2026-03-29T01:30:15.123456+05:30",
        "traceid": "t-1",
        "fingerprint": "sha256:ab",
    }


def test_an_event_without_extensions_has_only_the_envelope_in_its_metadata() -> None:
    record = to_kurrent_event(NewEvent(type="t", data={}, subject="7f9c"))
    assert set(json.loads(record.metadata)) == {"source", "subject", "time"}


def test_a_new_event_refuses_what_another_adapter_would_read_differently() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        to_kurrent_event(NewEvent(type="t", data={}, subject="s", time=datetime(2026, 1, 1)))
    with pytest.raises(ValueError, match="JSON"):
        to_kurrent_event(NewEvent(type="t", data={"x": float("nan")}, subject="s"))


def test_a_recorded_client_event_becomes_our_recorded_event() -> None:
    sent = NewEvent(
        type="agent.created.v1",
        data={"a": [1, {"b": None}]},
        subject="7f9c",
        extensions={"traceid": "t-1"},
    )

    recorded = from_kurrent_event(
        recorded_as_stored(to_kurrent_event(sent), position=4, commit=987654)
    )

    assert recorded == RecordedEvent(
        id=sent.id,
        type="agent.created.v1",
        data={"a": [1, {"b": None}]},
        subject="7f9c",
        source=sent.source,
        time=sent.time,
        stream=STREAM,
        version=5,
        position=987654,
        extensions={"traceid": "t-1"},
    )


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
# Valid extensions: CloudEvents names that are not reserved, strings of allowed characters.
extension_maps = st.dictionaries(
    st.from_regex(r"[a-z0-9]{1,20}", fullmatch=True).filter(
        lambda name: name not in RESERVED_ATTRIBUTE_NAMES
    ),
    st.text(st.characters(exclude_categories=("Cc", "Cs", "Cn")), max_size=256),
    max_size=8,
)


@settings(max_examples=200, deadline=None)
@given(
    data=st.dictionaries(st.text(max_size=8), json_values, max_size=5),
    subject=st.text(),
    source=st.text(min_size=1),
    time=st.datetimes(timezones=offsets),
    position=st.integers(min_value=0, max_value=2**40),
    extensions=extension_maps,
)
def test_every_envelope_round_trips_through_the_client_types(
    data: dict[str, Any],
    subject: str,
    source: str,
    time: datetime,
    position: int,
    extensions: dict[str, str],
) -> None:
    sent = NewEvent(
        type="test.thing.v1",
        data=data,
        subject=subject,
        source=source,
        time=time,
        extensions=extensions,
    )

    recorded = from_kurrent_event(recorded_as_stored(to_kurrent_event(sent), position=position))

    assert (recorded.id, recorded.type, recorded.subject, recorded.source) == (
        sent.id,
        sent.type,
        subject,
        source,
    )
    assert recorded.data == data
    assert recorded.time == time
    assert recorded.time.utcoffset() == time.utcoffset()
    assert recorded.version == position + 1
    assert recorded.extensions == extensions


@pytest.mark.parametrize(
    ("data", "metadata"),
    [
        (b"not json", b'{"source": "s", "subject": "s", "time": "2026-01-01T00:00:00+00:00"}'),
        (b"{}", b""),
        (b"{}", b'{"source": "s"}'),
        (b"{}", b'["a list"]'),
        (b"{}", b'"a string"'),
        (b"{}", b'{"source": "s", "subject": "s", "time": "yesterday"}'),
        # Extra metadata must be extensions this adapter could have written.
        (b"{}", b'{"source": "s", "subject": "s", "time": "2026-01-01T00:00:00+00:00", "n": 1}'),
        (
            b"{}",
            b'{"source": "s", "subject": "s", "time": "2026-01-01T00:00:00+00:00", '
            b'"$correlationId": "c"}',
        ),
    ],
)
def test_an_event_this_adapter_did_not_write_is_refused_by_name(
    data: bytes, metadata: bytes
) -> None:
    foreign = KurrentNewEvent(type="other.app.event", data=data, metadata=metadata)
    with pytest.raises(ValueError, match=rf"{foreign.id} at '{STREAM}'@3 is not an envelope"):
        from_kurrent_event(recorded_as_stored(foreign, position=3))


# --- the global log -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "stream"),
    [
        ("$metadata", "$$agent-1"),  # stream metadata
        ("$>", "$ce-agent"),  # a system projection's link
        ("$statsCollected", "$stats-127.0.0.1:2113"),
        ("$streamDeleted", "agent-1"),  # a tombstone in an application stream
        ("$>", "agent-links"),  # a user projection's link into an application stream
        ("agent.created.v1", "$category-agent"),
    ],
)
def test_system_events_are_not_in_the_global_log(event_type: str, stream: str) -> None:
    assert not in_global_log(system_event(event_type, stream))


def test_snapshots_are_not_in_the_global_log_and_application_events_are() -> None:
    snapshot = Snapshot(stream=STREAM, version=3, state={})
    assert not in_global_log(
        recorded_as_stored(snapshot_to_kurrent(snapshot), stream=snapshot_stream(STREAM))
    )
    event = NewEvent(type="agent.created.v1", data={}, subject="7f9c")
    assert in_global_log(recorded_as_stored(to_kurrent_event(event), stream="agent-1"))
    assert in_global_log(recorded_as_stored(to_kurrent_event(event), stream="user-u-1"))


def test_the_server_side_filter_drops_system_and_snapshot_streams_by_name() -> None:
    # The regex the client sends, as the server (.NET Regex.IsMatch, a search) applies it.
    regex = re.compile(construct_filter_exclude_regex(GLOBAL_LOG_EXCLUDE))
    for dropped in ("$$agent-1", "$ce-agent", "$stats-127.0.0.1:2113", snapshot_stream(STREAM)):
        assert regex.search(dropped) is None, dropped
    for kept in (STREAM, "user-u-1", "agent-snapshot-1", "snapshots"):
        assert regex.search(kept) is not None, kept


def test_a_read_from_a_position_asks_for_the_event_there_by_stream_name_filter() -> None:
    # Positions are commit positions and commit == prepare per event: a read from p asks the
    # server for Position(commit=p, prepare=p), i.e. the event at p itself.
    request = BaseStreamsService._construct_read_request(
        commit_position=987654,
        filter_exclude=GLOBAL_LOG_EXCLUDE,
        filter_by_stream_name=True,
        limit=11,
    )
    options = request.options
    assert (options.all.position.commit_position, options.all.position.prepare_position) == (
        987654,
        987654,
    )
    assert options.WhichOneof("filter_option") == "filter"
    assert options.filter.WhichOneof("filter") == "stream_identifier"
    assert options.filter.stream_identifier.regex == construct_filter_exclude_regex(
        GLOBAL_LOG_EXCLUDE
    )
    assert options.count == 11


# --- idempotent re-appends ------------------------------------------------------------------


def versions(*ids: UUID, first: int = 1) -> dict[UUID, int]:
    return {event_id: first + n for n, event_id in enumerate(ids)}


def test_a_batch_stored_in_order_at_consecutive_versions_is_a_re_append() -> None:
    a, b, c, d = uuid4(), uuid4(), uuid4(), uuid4()
    stored = versions(a, b, c, d)
    assert stored_batch_end(STREAM, stored, [a, b]) == 2
    assert stored_batch_end(STREAM, stored, [c, d]) == 4
    assert stored_batch_end(STREAM, stored, [b, c, d]) == 4
    assert stored_batch_end(STREAM, stored, [uuid4()]) is None
    assert stored_batch_end(STREAM, {}, [a]) is None


@pytest.mark.parametrize("case", ["partial overlap", "fresh event first", "out of order", "gap"])
def test_any_other_overlap_with_stored_ids_is_a_duplicate(case: str) -> None:
    a, b, c, fresh = uuid4(), uuid4(), uuid4(), uuid4()
    stored = versions(a, b, c)
    batch = {
        "partial overlap": [b, fresh],
        "fresh event first": [fresh, a, b],
        "out of order": [b, a],
        "gap": [a, c],
    }[case]
    with pytest.raises(DuplicateEventId, match=f"already stored in '{STREAM}'"):
        stored_batch_end(STREAM, stored, batch)


# --- what append reports ---------------------------------------------------------------------


class StandInClient:
    """The calls append makes, answered as a server holding ``stored`` in one stream would be:
    an append reports ``reported`` (0 is the client's answer when the server gave no position)."""

    def __init__(self, stored: list[KurrentRecordedEvent], reported: int = 0) -> None:
        self.stored = stored
        self.reported = reported
        self.appended: list[tuple[str, list[KurrentNewEvent], Any]] = []
        self.reads: list[tuple[int, int]] = []

    async def append_to_stream(
        self, stream: str, *, events: list[KurrentNewEvent], current_version: Any
    ) -> int:
        self.appended.append((stream, events, current_version))
        return self.reported

    async def get_stream(
        self, stream: str, *, stream_position: int, limit: int
    ) -> tuple[KurrentRecordedEvent, ...]:
        self.reads.append((stream_position, limit))
        return tuple(self.stored[stream_position : stream_position + limit])

    async def get_current_version(self, stream: str) -> int | KurrentStreamState:
        return len(self.stored) - 1 if self.stored else KurrentStreamState.NO_STREAM


def any_event() -> NewEvent:
    return NewEvent(type="test.thing.happened.v1", data={}, subject="7f9c")


def stand_in(
    stored: Sequence[NewEvent], reported: int = 0
) -> tuple[KurrentDBEventStore, StandInClient]:
    """A store over a stand-in client whose stream holds ``stored`` at commit positions 100,
    200, ..."""
    events = [
        recorded_as_stored(to_kurrent_event(e), position=n, commit=100 * (n + 1))
        for n, e in enumerate(stored)
    ]
    client = StandInClient(events, reported)
    return KurrentDBEventStore(client), client  # type: ignore[arg-type]


async def test_an_append_returns_the_position_the_server_reports_for_its_last_event() -> None:
    store, client = stand_in([any_event(), any_event()], reported=4242)
    assert await store.append(STREAM, [any_event(), any_event()], 2) == AppendResult(4, 4242)
    assert client.reads == []  # the hot path: one round trip


async def test_a_retry_the_server_reports_without_a_position_reads_where_it_is_stored() -> None:
    batch = [any_event(), any_event()]
    store, client = stand_in([any_event(), *batch], reported=0)
    assert await store.append(STREAM, batch, 1) == AppendResult(3, 300, replayed=True)
    assert client.reads == [(2, 1)]  # the batch's last event only


async def test_a_re_append_the_adapter_recognises_returns_the_stored_position() -> None:
    batch = [any_event(), any_event()]
    store, client = stand_in([any_event(), *batch, any_event()])
    assert await store.append(STREAM, batch, StreamState.ANY) == AppendResult(3, 300, replayed=True)
    assert client.appended == []


async def test_an_empty_batch_is_at_position_zero() -> None:
    store, client = stand_in([any_event(), any_event()], reported=4242)
    assert await store.append(STREAM, [], StreamState.EXISTS) == AppendResult(2, 0)
    assert client.appended == []


def test_ids_in_other_streams_are_not_checked_and_the_store_says_so() -> None:
    assert KurrentDBEventStore.detects_cross_stream_duplicate_ids is False


# --- snapshots ------------------------------------------------------------------------------


def test_a_snapshot_is_one_event_of_its_own_type_in_its_own_stream_and_round_trips() -> None:
    snapshot = Snapshot(
        stream=STREAM, version=7, state={"name": "ä", "tags": ["x", {"y": None}]}, schema=2
    )

    record = snapshot_to_kurrent(snapshot)

    assert snapshot_stream(STREAM) == f"snapshot-{STREAM}"
    assert (record.type, record.content_type) == (SNAPSHOT_TYPE, "application/json")
    assert json.loads(record.data) == {
        "version": 7,
        "schema": 2,
        "state": {"name": "ä", "tags": ["x", {"y": None}]},
    }
    stored = recorded_as_stored(record, stream=snapshot_stream(STREAM))
    assert snapshot_from_kurrent(STREAM, stored) == snapshot


def test_a_snapshot_state_must_be_plain_json() -> None:
    with pytest.raises(ValueError, match="JSON"):
        snapshot_to_kurrent(Snapshot(stream=STREAM, version=1, state={"x": float("inf")}))


# --- opening --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "kurrentdb://admin:s3cret@127.0.0.1:1?tls=false",
        "esdb://admin:s3cret@127.0.0.1:1?tls=false",
        "kurrentdb+discover://admin:s3cret@127.0.0.1:1?tls=false&MaxDiscoverAttempts=1",
        "esdb+discover://admin:s3cret@127.0.0.1:1?tls=false&MaxDiscoverAttempts=1",
    ],
)
async def test_opening_a_server_that_is_not_there_fails_at_once_without_the_password(
    url: str,
) -> None:
    with pytest.raises(StoreUnavailable) as raised:
        await open_event_store(url)  # port 1: connection refused
    assert "s3cret" not in str(raised.value)
