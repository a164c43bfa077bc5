"""PostgreSQL read model: JSONB documents for a shared, multi-node deployment.

Each batch is one transaction that locks the checkpoint row first, so documents and
checkpoint commit together and concurrent writers serialise. Membership queries use a
``text[]`` column with a GIN index (``member_user_ids @> ARRAY[user]``), sessions by owner an
expression index on ``doc->>'owner_user_id'``. The schema is created, or completed, on every
open (each statement is idempotent), under an advisory lock so that several processes opening
it at once do not race.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, LiteralString

import psycopg
from psycopg import AsyncConnection, sql
from psycopg.errors import ProgramLimitExceeded
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from domain.enums import SessionStatus
from projections.documents import AgentDocument, SessionDocument
from projections.store import (
    DEFAULT_SESSION_LIMIT,
    DocumentRefused,
    ReadModelStore,
    ReadModelUnavailable,
    check_limit,
)

DEFAULT_SCHEMA = "agenthost_read"
CONNECT_TIMEOUT_S = 5
"""How long opening one connection may take: a server that is down fails fast."""
POOL_TIMEOUT_S = 10.0
"""How long a query waits for a pooled connection before the store counts as unavailable."""
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")

# {schema} is filled in with sql.Identifier; ids sort bytewise (COLLATE "C") as in every store.
_DDL: tuple[LiteralString, ...] = (
    "CREATE SCHEMA IF NOT EXISTS {schema}",
    """CREATE TABLE IF NOT EXISTS {schema}.agents (
        id text COLLATE "C" PRIMARY KEY,
        status text NOT NULL,
        agent_type text NOT NULL,
        created_at timestamptz NOT NULL,
        member_user_ids text[] NOT NULL,
        position bigint NOT NULL,
        doc jsonb NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS agents_by_member ON {schema}.agents USING gin (member_user_ids)",
    """CREATE TABLE IF NOT EXISTS {schema}.sessions (
        session_id text COLLATE "C" PRIMARY KEY,
        agent_id text NOT NULL,
        started_at timestamptz NOT NULL,
        position bigint NOT NULL,
        doc jsonb NOT NULL
    )""",
    """CREATE INDEX IF NOT EXISTS sessions_by_agent
        ON {schema}.sessions (agent_id, started_at DESC, session_id DESC)""",
    """CREATE INDEX IF NOT EXISTS sessions_by_owner
        ON {schema}.sessions ((doc->>'owner_user_id'), started_at DESC, session_id DESC)""",
    """CREATE TABLE IF NOT EXISTS {schema}.checkpoint (
        id int PRIMARY KEY CHECK (id = 1),
        position bigint NOT NULL
    )""",
    "INSERT INTO {schema}.checkpoint (id, position) VALUES (1, 0) ON CONFLICT (id) DO NOTHING",
)

# Conditional upserts: a document never goes back to an older position.
_UPSERT_AGENT: LiteralString = """
INSERT INTO {schema}.agents AS stored
    (id, status, agent_type, created_at, member_user_ids, position, doc)
VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb)
ON CONFLICT (id) DO UPDATE SET status = excluded.status, agent_type = excluded.agent_type,
    created_at = excluded.created_at, member_user_ids = excluded.member_user_ids,
    position = excluded.position, doc = excluded.doc
WHERE stored.position < excluded.position
"""
_UPSERT_SESSION: LiteralString = """
INSERT INTO {schema}.sessions AS stored (session_id, agent_id, started_at, position, doc)
VALUES (%s, %s, %s, %s, %s::jsonb)
ON CONFLICT (session_id) DO UPDATE SET agent_id = excluded.agent_id,
    started_at = excluded.started_at, position = excluded.position, doc = excluded.doc
WHERE stored.position < excluded.position
"""


def validate_schema_name(schema: str) -> str:
    """Refuse anything but a plain identifier (it is quoted too, but names come from URLs)."""
    if not _SCHEMA_NAME.fullmatch(schema):
        raise ValueError(f"invalid schema name {schema!r}: use letters, digits and _ (max 63)")
    return schema


class PostgresReadModel(ReadModelStore):
    def __init__(self, pool: AsyncConnectionPool[AsyncConnection[TupleRow]], schema: str) -> None:
        self._pool = pool
        self._schema_name = validate_schema_name(schema)
        self._schema = sql.Identifier(schema)

    @classmethod
    async def open(
        cls, dsn: str, *, schema: str = DEFAULT_SCHEMA, min_size: int = 1, max_size: int = 4
    ) -> PostgresReadModel:
        validate_schema_name(schema)
        pool: AsyncConnectionPool[AsyncConnection[TupleRow]] = AsyncConnectionPool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S},
            timeout=POOL_TIMEOUT_S,
            open=False,
        )
        await pool.open(wait=True)
        store = cls(pool, schema)
        try:
            await store._create_schema(schema)
        except BaseException:
            await pool.close()
            raise
        return store

    async def _create_schema(self, schema: str) -> None:
        async with self._pool.connection() as connection, connection.transaction():
            await connection.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"agenthost.read_model.{schema}",)
            )
            for statement in _DDL:
                await connection.execute(self._sql(statement))

    async def apply(
        self, position: int, agents: Sequence[AgentDocument], sessions: Sequence[SessionDocument]
    ) -> bool:
        try:  # encoded before the transaction: a document UTF-8 cannot hold writes nothing
            agent_rows = [_agent_row(agent) for agent in agents]
            session_rows = [_session_row(session) for session in sessions]
        except ValueError as error:
            raise DocumentRefused(
                f"a document cannot be encoded: {type(error).__name__}"
            ) from error
        with _guarded(refusing=True):
            async with self._pool.connection() as connection, connection.transaction():
                return await self._write_batch(connection, position, agent_rows, session_rows)

    async def _write_batch(
        self,
        connection: AsyncConnection[TupleRow],
        position: int,
        agent_rows: list[tuple[Any, ...]],
        session_rows: list[tuple[Any, ...]],
    ) -> bool:
        cursor = await connection.execute(
            self._sql("SELECT position FROM {schema}.checkpoint WHERE id = 1 FOR UPDATE")
        )
        row = await cursor.fetchone()
        if row is None:
            raise RuntimeError(f"checkpoint row missing in schema {self._schema_name}")
        if position <= row[0]:
            return False
        async with connection.cursor() as batch:
            await batch.executemany(self._sql(_UPSERT_AGENT), agent_rows)
            await batch.executemany(self._sql(_UPSERT_SESSION), session_rows)
        await connection.execute(
            self._sql("UPDATE {schema}.checkpoint SET position = %s WHERE id = 1"), (position,)
        )
        return True

    async def checkpoint(self) -> int:
        rows = await self._fetch("SELECT position FROM {schema}.checkpoint WHERE id = 1", ())
        return int(rows[0][0]) if rows else 0

    async def get_agent(self, agent_id: str) -> AgentDocument | None:
        rows = await self._fetch("SELECT doc FROM {schema}.agents WHERE id = %s", (agent_id,))
        return AgentDocument.model_validate(rows[0][0]) if rows else None

    async def list_agents(
        self, user_id: str, *, include_archived: bool = False, agent_type: str | None = None
    ) -> list[AgentDocument]:
        rows = await self._fetch(
            "SELECT doc FROM {schema}.agents WHERE member_user_ids @> ARRAY[%s]::text[]"
            " AND (%s OR status <> 'archived')"
            " AND (%s::text IS NULL OR agent_type = %s)"
            " ORDER BY created_at DESC, id DESC",
            (user_id, include_archived, agent_type, agent_type),
        )
        return [AgentDocument.model_validate(doc) for (doc,) in rows]

    async def agents_with_active_session(
        self, *, after_id: str = "", limit: int = DEFAULT_SESSION_LIMIT
    ) -> list[AgentDocument]:
        check_limit(limit)
        rows = await self._fetch(
            "SELECT doc FROM {schema}.agents WHERE (doc->>'has_active_session')::boolean"
            " AND id > %s ORDER BY id LIMIT %s",
            (after_id, limit),
        )
        return [AgentDocument.model_validate(doc) for (doc,) in rows]

    async def get_session(self, session_id: str) -> SessionDocument | None:
        rows = await self._fetch(
            "SELECT doc FROM {schema}.sessions WHERE session_id = %s", (session_id,)
        )
        return SessionDocument.model_validate(rows[0][0]) if rows else None

    async def list_sessions(
        self, agent_id: str, *, limit: int = DEFAULT_SESSION_LIMIT, before: datetime | None = None
    ) -> list[SessionDocument]:
        check_limit(limit)
        rows = await self._fetch(
            "SELECT doc FROM {schema}.sessions WHERE agent_id = %s"
            " AND (%s::timestamptz IS NULL OR started_at < %s)"
            " ORDER BY started_at DESC, session_id DESC LIMIT %s",
            (agent_id, before, before, limit),
        )
        return [SessionDocument.model_validate(doc) for (doc,) in rows]

    async def list_sessions_of_owner(
        self,
        owner_user_id: str,
        *,
        status: SessionStatus | None = None,
        limit: int = DEFAULT_SESSION_LIMIT,
    ) -> list[SessionDocument]:
        check_limit(limit)
        state = status.value if status is not None else None
        rows = await self._fetch(
            "SELECT doc FROM {schema}.sessions WHERE doc->>'owner_user_id' = %s"
            " AND (%s::text IS NULL OR doc->>'status' = %s)"
            " ORDER BY started_at DESC, session_id DESC LIMIT %s",
            (owner_user_id, state, state, limit),
        )
        return [SessionDocument.model_validate(doc) for (doc,) in rows]

    async def reset(self) -> None:
        with _guarded(refusing=False):
            async with self._pool.connection() as connection, connection.transaction():
                await connection.execute(self._sql("TRUNCATE {schema}.agents, {schema}.sessions"))
                await connection.execute(
                    self._sql("UPDATE {schema}.checkpoint SET position = 0 WHERE id = 1")
                )

    async def close(self) -> None:
        await self._pool.close()

    async def drop_schema(self) -> None:
        """Remove the schema and everything in it (tests and teardown of throwaway schemas)."""
        async with self._pool.connection() as connection:
            await connection.execute(self._sql("DROP SCHEMA IF EXISTS {schema} CASCADE"))

    def _sql(self, statement: LiteralString) -> sql.Composed:
        return sql.SQL(statement).format(schema=self._schema)

    async def _fetch(self, statement: LiteralString, parameters: Sequence[Any]) -> list[Any]:
        with _guarded(refusing=False):
            async with self._pool.connection() as connection:
                cursor = await connection.execute(self._sql(statement), parameters)
                return await cursor.fetchall()


def _agent_row(agent: AgentDocument) -> tuple[Any, ...]:
    return (
        agent.id,
        agent.status.value,
        agent.agent_type.value,
        agent.created_at,
        list(agent.member_user_ids),
        agent.position,
        agent.model_dump_json(),
    )


def _session_row(session: SessionDocument) -> tuple[Any, ...]:
    return (
        session.session_id,
        session.agent_id,
        session.started_at,
        session.position,
        session.model_dump_json(),
    )


@contextlib.contextmanager
def _guarded(*, refusing: bool) -> Iterator[None]:
    """psycopg's failures in the port's terms. Writing (``refusing``), what the server cannot
    hold is DocumentRefused: a NUL character in text or jsonb, a value out of range or too
    long (class 22), a broken constraint (23), a row or value past a size limit (54). A lost
    or refused connection, a closed or exhausted pool, a server shutting down, a timeout, a
    serialization failure (the rest of class 08/40/53/57/58: ``OperationalError``) is
    ReadModelUnavailable. Anything else (a missing table, a syntax error) is a bug, left as is.
    """
    try:
        yield
    except (psycopg.DataError, psycopg.IntegrityError, ProgramLimitExceeded) as error:
        if not refusing:
            raise
        raise DocumentRefused(f"PostgreSQL refused the batch: {type(error).__name__}") from error
    except (psycopg.OperationalError, psycopg.InterfaceError) as error:
        raise ReadModelUnavailable(f"PostgreSQL failed: {type(error).__name__}") from error
