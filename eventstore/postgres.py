"""PostgreSQL event store: the shared log of a multi-node deployment.

Appends serialise on a per-schema advisory lock so that ``read_all`` positions become visible
in order; why, its cost, and how appends and subscriptions work:
docs/stores.md#postgresql-event-store.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, LiteralString
from uuid import UUID

import psycopg
from psycopg import AsyncConnection, sql
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

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
from eventstore.postgres_settings import PostgresSettings

DEFAULT_SCHEMA = "agenthost"
# Quoted everywhere anyway; the length keeps "<schema>_events", the NOTIFY channel, within
# PostgreSQL's 63-byte names.
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,55}")

# {schema} is filled in with sql.Identifier. The version table is created before migrating.
_VERSION_TABLE: tuple[LiteralString, ...] = (
    "CREATE SCHEMA IF NOT EXISTS {schema}",
    "CREATE TABLE IF NOT EXISTS {schema}.schema_version (version integer NOT NULL)",
)
# MIGRATIONS[n] takes a schema from version n to n + 1; append, never edit.
MIGRATIONS: tuple[tuple[LiteralString, ...], ...] = (
    (
        """CREATE TABLE {schema}.events (
            position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id uuid NOT NULL UNIQUE,
            stream text NOT NULL,
            version bigint NOT NULL,
            type text NOT NULL,
            source text NOT NULL,
            subject text NOT NULL,
            time timestamptz NOT NULL,
            data jsonb NOT NULL,
            UNIQUE (stream, version)
        )""",
        """CREATE TABLE {schema}.snapshots (
            stream text PRIMARY KEY,
            version bigint NOT NULL,
            schema integer NOT NULL,
            state jsonb NOT NULL
        )""",
    ),
    # CloudEvents extension attributes; the events already stored have none. A constant
    # default: no table rewrite. IF NOT EXISTS: a re-run (a restored version table) is a no-op.
    (
        "ALTER TABLE {schema}.events "
        "ADD COLUMN IF NOT EXISTS extensions jsonb NOT NULL DEFAULT '{{}}'::jsonb",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

_COLUMNS: LiteralString = (
    "id, type, data, subject, source, time, stream, version, position, extensions"
)
_LOCK: LiteralString = "SELECT pg_advisory_xact_lock(hashtext(%s))"

_Pool = AsyncConnectionPool[AsyncConnection[TupleRow]]


def advisory_lock_name(schema: str, purpose: str) -> str:
    """Hashed into the advisory lock key, so stores in different schemas never contend."""
    return f"agenthost.eventstore.{schema}.{purpose}"


class PostgresEventStore(EventStore):
    """The port on one PostgreSQL schema, shared by every process of a deployment."""

    def __init__(
        self, pool: _Pool, dsn: str, schema: str, connect_timeout: int, poll_interval: float
    ) -> None:
        self._pool = pool
        self._dsn = dsn
        self._schema = sql.Identifier(schema)
        self._append_lock = advisory_lock_name(schema, "append")
        self._channel = f"{schema}_events"
        self._connect_timeout = connect_timeout
        self._poll_interval = poll_interval

    @classmethod
    async def open(
        cls,
        dsn: str,
        *,
        schema: str = DEFAULT_SCHEMA,
        pool_size: int = 10,
        connect_timeout: int = 10,
        poll_interval: float = 1.0,
        settings: PostgresSettings | None = None,
    ) -> PostgresEventStore:
        """Connect, creating the schema on first use; an unreachable server raises
        StoreUnavailable after about ``connect_timeout`` seconds (libpq's minimum is 2).

        Every connection gets ``settings``' timeouts (the environment's by default), so a
        stalled client cannot hold the append lock for long."""
        if not _SCHEMA_NAME.fullmatch(schema):
            raise ValueError(f"invalid schema name {schema!r}: use letters, digits and _ (max 56)")
        conninfo = (PostgresSettings() if settings is None else settings).conninfo(dsn)
        with _guard(f"cannot open PostgreSQL event store (schema {schema})"):
            # A direct connection first: it fails fast and says why, where the pool would only
            # time out.
            async with await _connect(conninfo, connect_timeout) as db:
                await _migrate(db, schema)
            pool: _Pool = AsyncConnectionPool(
                conninfo,
                kwargs={"autocommit": True, "connect_timeout": connect_timeout},
                min_size=1,
                max_size=pool_size,
                # One round trip per checkout, so that a restarted server costs no failed calls.
                check=AsyncConnectionPool.check_connection,
                open=False,
            )
            try:
                await pool.open(wait=True, timeout=connect_timeout)
            except BaseException:
                await pool.close()
                raise
        return cls(pool, conninfo, schema, connect_timeout, poll_interval)

    async def append(
        self, stream: str, events: Sequence[NewEvent], expected_version: ExpectedVersion
    ) -> AppendResult:
        batch = list(events)
        ids = [event.id for event in batch]
        if len(set(ids)) != len(ids):
            raise DuplicateEventId(f"the batch for {stream!r} repeats an event id")
        rows = [
            (
                event.id,
                event.type,
                event.source,
                event.subject,
                _aware(event.time),
                canonical_json.dumps(event.data),
                canonical_json.dumps(event.extensions),
            )
            for event in batch
        ]
        with _guard("PostgreSQL append failed"):
            async with self._pool.connection() as db, db.pipeline():
                return await self._append(db, stream, ids, rows, expected_version)

    async def _append(
        self,
        db: AsyncConnection[TupleRow],
        stream: str,
        ids: list[UUID],
        rows: Sequence[tuple[Any, ...]],
        expected: ExpectedVersion,
    ) -> AppendResult:
        async with db.transaction():
            # A statement of its own: a statement's snapshot is taken before it starts, so
            # checks folded into this one would not see the append that held the lock before us.
            await db.execute(_LOCK, (self._append_lock,))
            # Pipelined: the lock and both checks take one round trip, the writes and the
            # commit another, and that is all the time the lock is held.
            stored = await db.execute(
                self._sql(
                    "SELECT id, stream, version, position FROM {schema}.events WHERE id = ANY(%s)"
                ),
                (ids,),
            )
            version = await db.execute(
                self._sql(
                    "SELECT COALESCE(MAX(version), 0) FROM {schema}.events WHERE stream = %s"
                ),
                (stream,),
            )
            replayed = stored_batch_end(stream, ids, await stored.fetchall())
            if replayed is not None:
                return replayed
            current: int = (await version.fetchall())[0][0]
            check_expected_version(stream, expected, current)
            if not rows:
                return AppendResult(current, 0)
            async with db.cursor() as insert:
                await insert.executemany(
                    self._sql(
                        "INSERT INTO {schema}.events "
                        "(id, stream, version, type, source, subject, time, data, extensions) "
                        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb)"
                    ),
                    [(row[0], stream, current + n, *row[1:]) for n, row in enumerate(rows, 1)],
                )
            last = await db.execute(
                self._sql(
                    "SELECT position FROM {schema}.events WHERE stream = %s AND version = %s"
                ),
                (stream, current + len(rows)),
            )
            await db.execute("SELECT pg_notify(%s, '')", (self._channel,))
        # Fetched once committed: the commit's round trip brought it back, where fetching it
        # inside the transaction would cost one round trip more while the lock is held.
        position: int = (await last.fetchall())[0][0]
        return AppendResult(current + len(rows), position)

    async def read(
        self, stream: str, from_version: int = 1, limit: int | None = None
    ) -> list[RecordedEvent]:
        rows = await self._fetch(
            self._sql(
                "SELECT " + _COLUMNS + " FROM {schema}.events "
                "WHERE stream = %s AND version >= %s ORDER BY version LIMIT %s"
            ),
            (stream, from_version, limit),
        )
        return [_recorded(row) for row in rows]

    async def stream_version(self, stream: str) -> int:
        rows = await self._fetch(
            self._sql("SELECT COALESCE(MAX(version), 0) FROM {schema}.events WHERE stream = %s"),
            (stream,),
        )
        return int(rows[0][0])

    async def read_all(self, after_position: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        rows = await self._fetch(
            self._sql(
                "SELECT " + _COLUMNS + " FROM {schema}.events "
                "WHERE position > %s ORDER BY position LIMIT %s"
            ),
            (after_position, limit),
        )
        return [_recorded(row) for row in rows]

    async def last_position(self) -> int:
        rows = await self._fetch(
            self._sql("SELECT COALESCE(MAX(position), 0) FROM {schema}.events"), ()
        )
        return int(rows[0][0])

    def subscribe_all(self, after_position: int = 0) -> AsyncIterator[RecordedEvent]:
        return self._follow(after_position)

    async def _follow(self, after_position: int) -> AsyncIterator[RecordedEvent]:
        """follow_all, woken by NOTIFY on a connection that lives as long as the generator.

        LISTEN runs before the first read, so no append can commit unnoticed in between.
        """
        with _guard("PostgreSQL subscription failed"):
            listener = await _connect(self._dsn, self._connect_timeout)
        try:
            with _guard("PostgreSQL subscription failed"):
                await listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))

            async def wait_for_change() -> None:
                with _guard("PostgreSQL subscription failed"):
                    # Returns on the first notification (draining any queued with it) or
                    # after the poll interval.
                    async for _ in listener.notifies(timeout=self._poll_interval, stop_after=1):
                        pass

            async for recorded in follow_all(self, after_position, wait_for_change):
                yield recorded
        finally:
            await listener.close()

    async def save_snapshot(self, snapshot: Snapshot) -> bool:
        state = canonical_json.dumps(snapshot.state)
        with _guard("PostgreSQL snapshot write failed"):
            async with self._pool.connection() as db:
                cursor = await db.execute(
                    self._sql(
                        "INSERT INTO {schema}.snapshots AS stored (stream, version, schema, state) "
                        "SELECT %s, %s, %s, %s::jsonb WHERE "
                        "(SELECT COALESCE(MAX(version), 0) FROM {schema}.events "
                        "WHERE stream = %s) = %s "
                        "ON CONFLICT (stream) DO UPDATE SET version = excluded.version, "
                        "schema = excluded.schema, state = excluded.state "
                        "WHERE excluded.version > stored.version"
                    ),
                    (
                        snapshot.stream,
                        snapshot.version,
                        snapshot.schema,
                        state,
                        snapshot.stream,
                        snapshot.version,
                    ),
                )
                return cursor.rowcount == 1

    async def load_snapshot(self, stream: str) -> Snapshot | None:
        rows = await self._fetch(
            self._sql("SELECT version, schema, state FROM {schema}.snapshots WHERE stream = %s"),
            (stream,),
        )
        if not rows:
            return None
        version, schema, state = rows[0]
        return Snapshot(stream=stream, version=version, state=state, schema=schema)

    async def close(self) -> None:
        await self._pool.close()

    def _sql(self, template: LiteralString) -> sql.Composed:
        return sql.SQL(template).format(schema=self._schema)

    async def _fetch(self, query: sql.Composed, parameters: Sequence[Any]) -> list[TupleRow]:
        """One autocommitted statement on a pooled connection."""
        with _guard("PostgreSQL statement failed"):
            async with self._pool.connection() as db:
                cursor = await db.execute(query, parameters)
                return await cursor.fetchall()


@contextlib.contextmanager
def _guard(what: str) -> Iterator[None]:
    """psycopg's failures in the port's terms: a server that cannot be reached or fails is
    StoreUnavailable; data PostgreSQL refuses (NUL characters) is a ValueError, like the data
    every adapter refuses itself. Anything else (IntegrityError) is a bug of this adapter."""
    try:
        yield
    except psycopg.DataError as error:
        raise ValueError(f"{what}: {error}") from error
    except (psycopg.OperationalError, psycopg.InternalError) as error:
        raise StoreUnavailable(f"{what}: {error}") from error


async def _connect(dsn: str, connect_timeout: int) -> AsyncConnection[TupleRow]:
    return await AsyncConnection.connect(dsn, autocommit=True, connect_timeout=connect_timeout)


async def _migrate(db: AsyncConnection[TupleRow], schema: str) -> None:
    """Bring the schema to SCHEMA_VERSION under an advisory lock, since several processes may
    open it at once and ``IF NOT EXISTS`` alone still races. An up-to-date schema is left
    untouched, so a role without CREATE privileges can use it."""
    if await _schema_version(db, schema) == SCHEMA_VERSION:
        return
    identifier = sql.Identifier(schema)
    async with db.transaction():
        await db.execute(_LOCK, (advisory_lock_name(schema, "migrate"),))
        for statement in _VERSION_TABLE:
            await db.execute(sql.SQL(statement).format(schema=identifier))
        current = await _schema_version(db, schema)
        if current > SCHEMA_VERSION:
            raise StoreUnavailable(
                f"schema {schema!r} is at version {current}, newer than this code "
                f"({SCHEMA_VERSION})"
            )
        for statements in MIGRATIONS[current:]:
            for statement in statements:
                await db.execute(sql.SQL(statement).format(schema=identifier))
        await db.execute(sql.SQL("DELETE FROM {}.schema_version").format(identifier))
        await db.execute(
            sql.SQL("INSERT INTO {}.schema_version (version) VALUES (%s)").format(identifier),
            (SCHEMA_VERSION,),
        )


async def _schema_version(db: AsyncConnection[TupleRow], schema: str) -> int:
    """0 when the schema or its version table does not exist yet."""
    exists = await _scalar(
        db,
        "SELECT EXISTS (SELECT FROM pg_tables "
        "WHERE schemaname = %s AND tablename = 'schema_version')",
        (schema,),
    )
    if not exists:
        return 0
    version: int | None = await _scalar(
        db, sql.SQL("SELECT MAX(version) FROM {}.schema_version").format(sql.Identifier(schema))
    )
    return version or 0


async def _scalar(
    db: AsyncConnection[TupleRow],
    query: LiteralString | sql.Composed,
    parameters: Sequence[Any] = (),
) -> Any:
    """The value of a query that returns exactly one row (an aggregate)."""
    cursor = await db.execute(query, parameters)
    rows = await cursor.fetchall()
    return rows[0][0]


def _aware(time: datetime) -> datetime:
    """A naive time would be read in the session's time zone: refuse it, as every adapter does."""
    if time.utcoffset() is None:
        raise ValueError(f"event time must be timezone-aware, got {time!r}")
    return time


def _recorded(row: TupleRow) -> RecordedEvent:
    event_id, event_type, data, subject, source, time, stream, version, position, extensions = row
    return RecordedEvent(
        id=event_id,
        type=event_type,
        data=data,
        subject=subject,
        source=source,
        # The session's time zone is a server setting: return UTC whatever it is.
        time=time.astimezone(UTC),
        stream=stream,
        version=version,
        position=position,
        extensions=extensions,
    )
