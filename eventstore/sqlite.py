"""SQLite event store: the embedded default (one file, zero setup).

Durability: WAL journal with ``synchronous=FULL``, so an acknowledged event survives a power
cut, not only a process crash. Several processes (Ray host actors on one machine) share the
file: appends run in ``BEGIN IMMEDIATE`` transactions, so writers serialise on SQLite's write
lock and positions (AUTOINCREMENT, never reused) commit in order; that is what lets a global
reader trust that nothing below a position it has seen can still appear.

Each instance holds two connections: a writer, whose transactions span several awaits and are
therefore guarded by an asyncio lock, and a reader, which never sees the writer's uncommitted
rows and is not held up while the writer waits for another process's lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import aiosqlite
from tenacity import (
    AsyncRetrying,
    retry_if_exception_message,
    stop_after_delay,
    wait_random_exponential,
)

from eventstore import canonical_json
from eventstore.polling import follow_all
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

BUSY_TIMEOUT_S = 30.0

# MIGRATIONS[n] takes a file from user_version n to n + 1; append, never edit.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE events (
            position INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            stream TEXT NOT NULL,
            version INTEGER NOT NULL,
            type TEXT NOT NULL,
            source TEXT NOT NULL,
            subject TEXT NOT NULL,
            time TEXT NOT NULL,
            data TEXT NOT NULL,
            UNIQUE (stream, version)
        )""",
        """CREATE TABLE snapshots (
            stream TEXT PRIMARY KEY,
            version INTEGER NOT NULL,
            schema INTEGER NOT NULL,
            state TEXT NOT NULL
        )""",
    ),
    # CloudEvents extension attributes, a JSON object; the events already stored have none.
    ("ALTER TABLE events ADD COLUMN extensions TEXT NOT NULL DEFAULT '{}'",),
)
SCHEMA_VERSION = len(MIGRATIONS)

_COLUMNS = "id, type, data, subject, source, time, stream, version, position, extensions"
_T = TypeVar("_T")


class SQLiteEventStore(EventStore):
    """The port on one SQLite file, shared safely by every process on the machine."""

    def __init__(
        self, writer: aiosqlite.Connection, reader: aiosqlite.Connection, poll_interval: float
    ) -> None:
        self._writer = writer
        self._reader = reader
        self._write_lock = asyncio.Lock()
        self._poll_interval = poll_interval
        self._appended = asyncio.Event()

    @classmethod
    async def open(
        cls, path: str | os.PathLike[str], *, poll_interval: float = 0.05
    ) -> SQLiteEventStore:
        """Open (creating the file, its directory and the schema on first use)."""
        file = Path(path)
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreUnavailable(f"cannot create the directory of {file}: {error}") from error
        writer = await _guard(_connect(file), f"cannot open SQLite event store {file}")
        try:
            await _guard(_migrate(writer), f"cannot migrate SQLite event store {file}")
            reader = await _guard(_connect(file), f"cannot open SQLite event store {file}")
        except BaseException:
            await writer.close()
            raise
        return cls(writer, reader, poll_interval)

    async def append(
        self, stream: str, events: Sequence[NewEvent], expected_version: ExpectedVersion
    ) -> AppendResult:
        batch = list(events)
        ids = [str(event.id) for event in batch]
        if len(set(ids)) != len(ids):
            raise DuplicateEventId(f"the batch for {stream!r} repeats an event id")
        rows = [
            (
                event_id,
                event.type,
                event.source,
                event.subject,
                _timestamp(event.time),
                canonical_json.dumps(event.data),
                canonical_json.dumps(event.extensions),
            )
            for event_id, event in zip(ids, batch, strict=True)
        ]
        async with self._write_lock:
            result = await _guard(
                self._append(stream, ids, rows, expected_version), "SQLite append failed"
            )
        if batch:
            self._appended.set()
            self._appended = asyncio.Event()  # waiters hold the old one: no wake-up is lost
        return result

    async def _append(
        self,
        stream: str,
        ids: list[str],
        rows: Sequence[tuple[str, ...]],
        expected: ExpectedVersion,
    ) -> AppendResult:
        db = self._writer
        try:
            await db.execute("BEGIN IMMEDIATE")
            replayed = await _stored_batch_end(db, stream, ids)
            if replayed is not None:
                return replayed
            current = await _scalar(
                db, "SELECT COALESCE(MAX(version), 0) FROM events WHERE stream = ?", (stream,)
            )
            check_expected_version(stream, expected, current)
            position = 0
            if rows:
                await db.executemany(
                    "INSERT INTO events "
                    "(id, stream, version, type, source, subject, time, data, extensions) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(row[0], stream, current + n, *row[1:]) for n, row in enumerate(rows, 1)],
                )
                # position is the rowid: the batch's last row is this connection's last insert.
                position = await _scalar(db, "SELECT last_insert_rowid()", ())
                await db.commit()
            return AppendResult(current + len(rows), position)
        finally:
            # A no-op after a commit or a failed BEGIN. A cancelled task still gets here, and
            # the rollback is queued on the connection's thread behind the BEGIN it may have
            # left running, before any other statement can be.
            await db.rollback()

    async def read(
        self, stream: str, from_version: int = 1, limit: int | None = None
    ) -> list[RecordedEvent]:
        rows = await self._fetch(
            f"SELECT {_COLUMNS} FROM events WHERE stream = ? AND version >= ? "
            "ORDER BY version LIMIT ?",
            (stream, from_version, -1 if limit is None else limit),
        )
        return [_recorded(row) for row in rows]

    async def stream_version(self, stream: str) -> int:
        return await _guard(
            _scalar(
                self._reader,
                "SELECT COALESCE(MAX(version), 0) FROM events WHERE stream = ?",
                (stream,),
            ),
            "SQLite read failed",
        )

    async def read_all(self, after_position: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        rows = await self._fetch(
            f"SELECT {_COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT ?",
            (after_position, limit),
        )
        return [_recorded(row) for row in rows]

    async def last_position(self) -> int:
        return await _guard(
            _scalar(self._reader, "SELECT COALESCE(MAX(position), 0) FROM events", ()),
            "SQLite read failed",
        )

    def subscribe_all(self, after_position: int = 0) -> AsyncIterator[RecordedEvent]:
        return follow_all(self, after_position, self._wait_for_change)

    async def save_snapshot(self, snapshot: Snapshot) -> bool:
        # Through the writer (under its lock) so it never lands inside an append's transaction,
        # and the stream cannot move between the check and the write.
        async with self._write_lock:
            cursor = await _guard(
                self._writer.execute(
                    "INSERT INTO snapshots (stream, version, schema, state) "
                    "SELECT ?, ?, ?, ? WHERE "
                    "(SELECT COALESCE(MAX(version), 0) FROM events WHERE stream = ?) = ? "
                    "ON CONFLICT (stream) DO UPDATE SET version = excluded.version, "
                    "schema = excluded.schema, state = excluded.state "
                    "WHERE excluded.version > snapshots.version",
                    (
                        snapshot.stream,
                        snapshot.version,
                        snapshot.schema,
                        canonical_json.dumps(snapshot.state),
                        snapshot.stream,
                        snapshot.version,
                    ),
                ),
                "SQLite snapshot write failed",
            )
            return cursor.rowcount == 1

    async def load_snapshot(self, stream: str) -> Snapshot | None:
        rows = await self._fetch(
            "SELECT version, schema, state FROM snapshots WHERE stream = ?", (stream,)
        )
        if not rows:
            return None
        version, schema, state = rows[0]
        return Snapshot(stream=stream, version=version, state=json.loads(state), schema=schema)

    async def close(self) -> None:
        async with self._write_lock:
            try:
                await self._writer.close()
            finally:
                await self._reader.close()

    async def _wait_for_change(self) -> None:
        """Woken by this instance's appends; other processes' appends are seen by polling."""
        # asyncio.timeout, not wait_for: on Python 3.11, wait_for can swallow a cancellation
        # that lands as the event fires, and a subscriber then never stops.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._poll_interval):
                await self._appended.wait()

    async def _fetch(self, query: str, parameters: Sequence[Any]) -> list[Any]:
        return list(
            await _guard(self._reader.execute_fetchall(query, parameters), "SQLite read failed")
        )


async def _guard(operation: Awaitable[_T], what: str) -> _T:
    """Turn SQLite's failures (I/O, lock timeouts, corruption) into the port's error."""
    try:
        return await operation
    except sqlite3.IntegrityError:
        raise  # a broken invariant of this adapter, not an unavailable store
    except sqlite3.Error as error:
        raise StoreUnavailable(f"{what}: {error}") from error


async def _connect(file: Path) -> aiosqlite.Connection:
    # timeout is SQLite's busy timeout: how long to wait for another process's write lock.
    # isolation_level=None: no implicit transactions; appends issue their own BEGIN IMMEDIATE.
    db = await aiosqlite.connect(file, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    try:
        mode = await _enter_wal(db)
        if mode != "wal":
            raise sqlite3.OperationalError(f"{file} cannot use WAL (journal_mode is {mode})")
        await db.execute("PRAGMA synchronous = FULL")
    except BaseException:
        await db.close()
        raise
    return db


async def _enter_wal(db: aiosqlite.Connection) -> str:
    """Switch the file to WAL; the file's journal mode. Switching takes an exclusive lock that
    SQLite does not wait for (no busy handler): two processes opening a new or old-format file
    at once see "database is locked", so that one error is retried for the busy timeout."""
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_message(match="database is locked"),
        wait=wait_random_exponential(multiplier=0.01, max=0.2),
        stop=stop_after_delay(BUSY_TIMEOUT_S),
        reraise=True,
    ):
        with attempt:
            (mode,) = next(iter(await db.execute_fetchall("PRAGMA journal_mode = WAL")))
            return str(mode)
    raise AssertionError("unreachable: AsyncRetrying reraises")  # pragma: no cover


async def _migrate(db: aiosqlite.Connection) -> None:
    """Bring the file to SCHEMA_VERSION; the check is repeated under the write lock because
    another process may be migrating the same file at the same time."""
    if await _scalar(db, "PRAGMA user_version", ()) == SCHEMA_VERSION:
        return
    try:
        await db.execute("BEGIN IMMEDIATE")
        current = await _scalar(db, "PRAGMA user_version", ())
        if current > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(
                f"schema version {current} is newer than this code ({SCHEMA_VERSION})"
            )
        for statements in MIGRATIONS[current:]:
            for statement in statements:
                await db.execute(statement)
        await db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        await db.commit()
    finally:
        await db.rollback()


async def _scalar(db: aiosqlite.Connection, query: str, parameters: Sequence[Any]) -> int:
    (value,) = next(iter(await db.execute_fetchall(query, parameters)))
    return int(value)


async def _stored_batch_end(
    db: aiosqlite.Connection, stream: str, ids: list[str]
) -> AppendResult | None:
    """Where the batch ends if it is already stored (a retried append): see stored_batch_end."""
    if not ids:
        return None
    marks = ",".join("?" * len(ids))
    rows = await db.execute_fetchall(
        f"SELECT id, stream, version, position FROM events WHERE id IN ({marks})", ids
    )
    return stored_batch_end(stream, ids, rows)


def _recorded(row: Sequence[Any]) -> RecordedEvent:
    event_id, event_type, data, subject, source, time, stream, version, position, extensions = row
    return RecordedEvent(
        id=UUID(event_id),
        type=event_type,
        data=json.loads(data),
        subject=subject,
        source=source,
        time=datetime.fromisoformat(time),
        stream=stream,
        version=version,
        position=position,
        extensions=json.loads(extensions),
    )


def _timestamp(time: datetime) -> str:
    """ISO 8601 with its offset: a naive time would mean different instants to each reader."""
    if time.utcoffset() is None:
        raise ValueError(f"event time must be timezone-aware, got {time!r}")
    return time.isoformat()
