"""SQLite-only behaviour (durability settings, several processes on one file, failures) and
the factory's URL parsing; the port's contract itself is in tests/contract."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from uuid import uuid4

import pytest

import eventstore.sqlite
from eventstore.factory import open_event_store, split_postgres_url, sqlite_path
from eventstore.port import (
    AppendResult,
    DuplicateEventId,
    NewEvent,
    Snapshot,
    StoreUnavailable,
    StreamState,
    WrongExpectedVersion,
)
from eventstore.sqlite import SCHEMA_VERSION, SQLiteEventStore


def event(n: int = 0) -> NewEvent:
    return NewEvent(type="test.thing.happened.v1", data={"n": n}, subject="a")


@pytest.fixture
def db_file(tmp_path: Path) -> Path:
    return tmp_path / "var" / "events.db"


@pytest.fixture
async def store(db_file: Path) -> AsyncIterator[SQLiteEventStore]:
    opened = await SQLiteEventStore.open(db_file)
    yield opened
    await opened.close()


@pytest.fixture
def other_process(db_file: Path, store: SQLiteEventStore) -> Iterator[sqlite3.Connection]:
    """A plain connection to the same file, standing in for another process."""
    connection = sqlite3.connect(db_file, isolation_level=None)
    yield connection
    connection.close()


async def pragma(connection: Any, name: str) -> Any:
    (value,) = next(iter(await connection.execute_fetchall(f"PRAGMA {name}")))
    return value


async def test_a_new_file_gets_its_directory_schema_and_an_empty_log(
    store: SQLiteEventStore, db_file: Path
) -> None:
    assert await store.last_position() == 0
    with sqlite3.connect(db_file) as raw:  # an empty file here would be at user_version 0
        assert raw.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)


async def test_every_connection_uses_wal_and_full_fsync(store: SQLiteEventStore) -> None:
    # Reaches into the adapter: synchronous and busy_timeout are per-connection settings.
    for connection in (store._writer, store._reader):
        assert await pragma(connection, "journal_mode") == "wal"
        assert await pragma(connection, "synchronous") == 2  # FULL: survives power loss
        assert await pragma(connection, "busy_timeout") == 30_000


async def test_two_instances_on_one_file_interleave_appends(
    store: SQLiteEventStore, db_file: Path
) -> None:
    other = await SQLiteEventStore.open(db_file)
    try:
        # Positions come from one sequence whichever instance (connection) appends.
        assert await store.append("s", [event(1)], StreamState.NO_STREAM) == AppendResult(1, 1)
        assert await other.append("s", [event(2)], 1) == AppendResult(2, 2)
        assert await store.append("s", [event(3)], 2) == AppendResult(3, 3)
        with pytest.raises(WrongExpectedVersion) as raised:
            await other.append("s", [event(4)], 2)
        assert raised.value.actual == 3
        assert await other.append("t", [event(5)], StreamState.NO_STREAM) == AppendResult(1, 4)

        for reader in (store, other):
            log = await reader.read_all()
            assert [(e.stream, e.data["n"]) for e in log] == [
                ("s", 1),
                ("s", 2),
                ("s", 3),
                ("t", 5),
            ]
            assert [e.position for e in log] == [1, 2, 3, 4]
    finally:
        await other.close()


async def test_reopening_the_file_preserves_events_and_snapshots(db_file: Path) -> None:
    first = await SQLiteEventStore.open(db_file)
    await first.append("s", [event(1), event(2)], StreamState.NO_STREAM)
    await first.save_snapshot(Snapshot(stream="s", version=2, state={"k": "v"}, schema=3))
    before = await first.read_all()
    await first.close()

    reopened = await SQLiteEventStore.open(db_file)
    try:
        assert await reopened.read_all() == before
        assert await reopened.stream_version("s") == 2
        assert await reopened.load_snapshot("s") == Snapshot("s", 2, {"k": "v"}, schema=3)
        appended = await reopened.append("s", [event(3)], 2)
        (third,) = await reopened.read("s", 3)
        assert appended == AppendResult(3, third.position)
        assert third.position > before[-1].position
    finally:
        await reopened.close()


async def test_an_unusable_path_is_store_unavailable(tmp_path: Path) -> None:
    directory = tmp_path / "events.db"
    directory.mkdir()
    with pytest.raises(StoreUnavailable) as raised:
        await SQLiteEventStore.open(directory)
    assert isinstance(raised.value.__cause__, sqlite3.Error)

    a_file = tmp_path / "file"
    a_file.write_text("not a directory")
    with pytest.raises(StoreUnavailable) as raised:
        await SQLiteEventStore.open(a_file / "events.db")
    assert isinstance(raised.value.__cause__, OSError)


async def test_a_file_from_newer_code_is_refused(db_file: Path) -> None:
    db_file.parent.mkdir(parents=True)
    with sqlite3.connect(db_file) as raw:
        raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreUnavailable, match="newer"):
        await SQLiteEventStore.open(db_file)


async def test_a_write_lock_held_too_long_is_store_unavailable_and_leaves_no_transaction(
    db_file: Path, other_process: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(eventstore.sqlite, "BUSY_TIMEOUT_S", 0.2)
    impatient = await SQLiteEventStore.open(db_file)
    try:
        other_process.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreUnavailable) as raised:
            await impatient.append("s", [event()], StreamState.ANY)
        assert isinstance(raised.value.__cause__, sqlite3.OperationalError)
        assert await impatient.stream_version("s") == 0  # WAL: reads go on meanwhile
        other_process.execute("ROLLBACK")

        assert (await impatient.append("s", [event()], StreamState.NO_STREAM)).version == 1
    finally:
        await impatient.close()


async def test_a_cancelled_append_rolls_back_and_the_store_stays_usable(
    store: SQLiteEventStore, other_process: sqlite3.Connection
) -> None:
    other_process.execute("BEGIN IMMEDIATE")
    blocked = asyncio.create_task(store.append("s", [event(1)], StreamState.ANY))
    await asyncio.sleep(0.05)  # the append is now waiting for the lock inside SQLite
    blocked.cancel()
    other_process.execute("ROLLBACK")
    with pytest.raises(asyncio.CancelledError):
        await blocked

    assert (await store.append("s", [event(2)], StreamState.NO_STREAM)).version == 1
    other_process.execute("BEGIN IMMEDIATE")  # would time out if the store still held a lock
    other_process.execute("ROLLBACK")
    assert [e.data["n"] for e in await store.read("s")] == [2]


async def test_a_snapshot_saved_during_a_failing_append_is_kept(store: SQLiteEventStore) -> None:
    snapshot = Snapshot(stream="s", version=0, state={})
    results = await asyncio.gather(
        store.append("s", [event()], 5),  # fails and rolls its transaction back
        store.save_snapshot(snapshot),
        return_exceptions=True,
    )
    assert isinstance(results[0], WrongExpectedVersion)
    assert await store.load_snapshot("s") == snapshot  # it was not inside that transaction


async def test_events_that_are_not_storable_as_json_with_a_time_are_refused(
    store: SQLiteEventStore,
) -> None:
    naive = NewEvent(type="t", data={}, subject="a", time=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.append("s", [naive], StreamState.ANY)
    with pytest.raises(ValueError, match="JSON"):
        await store.append("s", [NewEvent(type="t", data={"x": float("nan")}, subject="a")], 0)
    same = event()
    with pytest.raises(DuplicateEventId):
        await store.append("s", [same, same], StreamState.ANY)
    assert await store.stream_version("s") == 0


# --- factory --------------------------------------------------------------------------------


def test_sqlite_urls_name_relative_and_absolute_paths() -> None:
    assert sqlite_path("sqlite:///var/events.db") == "var/events.db"
    assert sqlite_path("sqlite:////srv/agenthost/events.db") == "/srv/agenthost/events.db"
    for bad in ("sqlite:///", "sqlite://host/events.db", "sqlite:events.db"):
        with pytest.raises(ValueError, match="sqlite"):
            sqlite_path(bad)


async def test_the_factory_opens_sqlite_files_relative_or_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    relative = await open_event_store("sqlite:///var/rel.db")
    absolute = await open_event_store(f"sqlite:///{tmp_path / 'abs' / 'events.db'}")
    try:
        assert isinstance(relative, SQLiteEventStore)
        assert isinstance(absolute, SQLiteEventStore)
    finally:
        await relative.close()
        await absolute.close()
    assert (tmp_path / "var" / "rel.db").is_file()
    assert (tmp_path / "abs" / "events.db").is_file()


def test_the_schema_parameter_is_taken_out_of_postgres_urls() -> None:
    assert split_postgres_url(
        "postgresql://u:p%40ss@db:5432/app?schema=tenant&sslmode=require"
    ) == (
        "postgresql://u:p%40ss@db:5432/app?sslmode=require",
        "tenant",
    )
    assert split_postgres_url("postgres://db/app") == ("postgres://db/app", "agenthost")


@pytest.mark.parametrize(
    ("url", "module", "expected_call"),
    [
        (
            "postgresql://db/app?schema=s1",
            "eventstore.postgres",
            (("postgresql://db/app",), {"schema": "s1"}),
        ),
        (
            "postgres://db/app",
            "eventstore.postgres",
            (("postgres://db/app",), {"schema": "agenthost"}),
        ),
        (
            "kurrentdb://h:2113?tls=false",
            "eventstore.kurrentdb",
            (("kurrentdb://h:2113?tls=false",), {}),
        ),
        ("kurrentdb+discover://h", "eventstore.kurrentdb", (("kurrentdb+discover://h",), {})),
        ("esdb://h:2113", "eventstore.kurrentdb", (("esdb://h:2113",), {})),
        ("esdb+discover://h", "eventstore.kurrentdb", (("esdb+discover://h",), {})),
    ],
)
async def test_the_factory_picks_the_adapter_by_scheme(
    url: str,
    module: str,
    expected_call: tuple[tuple[str, ...], dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    opened = object()

    class Adapter:
        @classmethod
        async def open(cls, *args: Any, **kwargs: Any) -> object:
            calls.append((args, kwargs))
            return opened

    fake = SimpleNamespace(PostgresEventStore=Adapter, KurrentDBEventStore=Adapter)
    monkeypatch.setitem(sys.modules, module, fake)
    assert await open_event_store(url) is opened
    assert calls == [expected_call]


async def test_an_unknown_scheme_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"unsupported event store URL scheme 'mysql'"):
        await open_event_store(f"mysql://db/{uuid4().hex}")


async def test_a_subscriber_cancelled_as_an_append_wakes_it_still_stops(db_file: Path) -> None:
    # The wake-up and the cancellation land in the same loop iteration. On Python 3.11,
    # asyncio.wait_for returned the wake-up and dropped the cancellation, so the subscriber
    # polled on forever (and a projector stopping on it hung).
    store = await SQLiteEventStore.open(db_file, poll_interval=5)
    try:
        first = event(1)
        await store.append("s-1", [first], expected_version=0)
        events = store.subscribe_all(await store.last_position())
        reader = asyncio.create_task(anext(events))
        await asyncio.sleep(0.05)  # parked, waiting for an append
        await store.append("s-1", [first], expected_version=0)  # a retry: wakes, adds nothing
        reader.cancel()
        await asyncio.wait({reader}, timeout=2)
        assert reader.cancelled()
        await events.aclose()  # type: ignore[attr-defined]
    finally:
        await store.close()
