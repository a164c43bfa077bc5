"""SQLite read model: the embedded default (one file next to the event store's).

Documents are stored as JSON text beside the few columns queries filter and sort on; agent
membership lives in its own indexed table, and a session's owner is read from its document
through an expression index. Two connections: a writer, whose transactions hold
the documents and the checkpoint together, and a reader, which under WAL never sees half of a
batch and never waits for the writer. ``synchronous=NORMAL`` is enough: a power cut may lose the
last batches, but documents and checkpoint roll back together and the projector redoes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import aiosqlite

from domain.enums import SessionStatus
from projections.documents import AgentDocument, SessionDocument
from projections.store import (
    DEFAULT_SESSION_LIMIT,
    DocumentRefused,
    ReadModelStore,
    ReadModelUnavailable,
    check_limit,
    epoch_us,
)

SCHEMA_VERSION = 2  # 2 added sessions_by_owner
BUSY_TIMEOUT_S = 30.0

# Every statement is idempotent: a file at an older version gets just what it lacks.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS agents (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    agent_type TEXT NOT NULL,
    created_us INTEGER NOT NULL,
    position INTEGER NOT NULL,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS agent_members (
    user_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    PRIMARY KEY (user_id, agent_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS agent_members_by_agent ON agent_members (agent_id);
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL,
    started_us INTEGER NOT NULL,
    position INTEGER NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_agent
    ON sessions (agent_id, started_us DESC, session_id DESC);
CREATE INDEX IF NOT EXISTS sessions_by_owner
    ON sessions (json_extract(doc, '$.owner_user_id'), started_us DESC, session_id DESC);
CREATE TABLE IF NOT EXISTS checkpoint (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    position INTEGER NOT NULL
);
"""

# Conditional upserts: a document never goes back to an older position, even if two
# projectors were to write at once.
_UPSERT_AGENT = """
INSERT INTO agents (id, status, agent_type, created_us, position, doc) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET status = excluded.status, agent_type = excluded.agent_type,
    created_us = excluded.created_us, position = excluded.position, doc = excluded.doc
WHERE excluded.position > agents.position
"""
_UPSERT_SESSION = """
INSERT INTO sessions (session_id, agent_id, started_us, position, doc) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (session_id) DO UPDATE SET agent_id = excluded.agent_id,
    started_us = excluded.started_us, position = excluded.position, doc = excluded.doc
WHERE excluded.position > sessions.position
"""
_SET_CHECKPOINT = """
INSERT INTO checkpoint (id, position) VALUES (1, ?)
ON CONFLICT (id) DO UPDATE SET position = excluded.position
"""


class SQLiteReadModel(ReadModelStore):
    def __init__(self, writer: aiosqlite.Connection, reader: aiosqlite.Connection) -> None:
        self._writer = writer
        self._reader = reader
        self._write_lock = asyncio.Lock()  # one transaction at a time on the writer
        self._closed = False

    @classmethod
    async def open(cls, path: str | os.PathLike[str]) -> SQLiteReadModel:
        file = Path(path)
        file.parent.mkdir(parents=True, exist_ok=True)
        writer = await _connect(file)
        try:
            await _migrate(writer)
            reader = await _connect(file)
        except BaseException:
            await writer.close()
            raise
        await reader.execute("PRAGMA query_only=ON")
        return cls(writer, reader)

    async def apply(
        self, position: int, agents: Sequence[AgentDocument], sessions: Sequence[SessionDocument]
    ) -> bool:
        # Shielded: a cancelled caller (projector stopping) never leaves a transaction open
        # on the shared writer; the batch commits or rolls back as a whole regardless.
        return await asyncio.shield(self._apply(position, list(agents), list(sessions)))

    async def _apply(
        self, position: int, agents: list[AgentDocument], sessions: list[SessionDocument]
    ) -> bool:
        with _refused_as_such():  # encoded before the transaction: nothing to roll back
            agent_rows = [_agent_row(agent) for agent in agents]
            session_rows = [_session_row(session) for session in sessions]
        async with self._write_lock:
            self._check_open()
            with _guarded():
                await self._writer.execute("BEGIN IMMEDIATE")
                try:
                    applied = await self._write_batch(position, agents, agent_rows, session_rows)
                except BaseException:
                    await self._writer.rollback()
                    raise
                await self._writer.commit()
            return applied

    async def _write_batch(
        self,
        position: int,
        agents: list[AgentDocument],
        agent_rows: list[tuple[Any, ...]],
        session_rows: list[tuple[Any, ...]],
    ) -> bool:
        if position <= await _checkpoint(self._writer):
            return False
        for agent, row in zip(agents, agent_rows, strict=True):
            cursor = await self._writer.execute(_UPSERT_AGENT, row)
            if cursor.rowcount == 1:  # written, not skipped as older than the stored one
                await self._writer.execute(
                    "DELETE FROM agent_members WHERE agent_id = ?", (agent.id,)
                )
                await self._writer.executemany(
                    "INSERT INTO agent_members (user_id, agent_id) VALUES (?, ?)",
                    [(user_id, agent.id) for user_id in agent.member_user_ids],
                )
        await self._writer.executemany(_UPSERT_SESSION, session_rows)
        await self._writer.execute(_SET_CHECKPOINT, (position,))
        return True

    async def checkpoint(self) -> int:
        self._check_open()
        with _unavailable_on_failure():
            return await _checkpoint(self._reader)

    async def get_agent(self, agent_id: str) -> AgentDocument | None:
        rows = await self._fetch("SELECT doc FROM agents WHERE id = ?", (agent_id,))
        return AgentDocument.model_validate_json(rows[0][0]) if rows else None

    async def list_agents(
        self, user_id: str, *, include_archived: bool = False, agent_type: str | None = None
    ) -> list[AgentDocument]:
        query = (
            "SELECT a.doc FROM agent_members m JOIN agents a ON a.id = m.agent_id "
            "WHERE m.user_id = ?"
        )
        parameters: list[Any] = [user_id]
        if not include_archived:
            query += " AND a.status != 'archived'"
        if agent_type is not None:
            query += " AND a.agent_type = ?"
            parameters.append(agent_type)
        query += " ORDER BY a.created_us DESC, a.id DESC"
        rows = await self._fetch(query, parameters)
        return [AgentDocument.model_validate_json(doc) for (doc,) in rows]

    async def agents_with_active_session(
        self, *, after_id: str = "", limit: int = DEFAULT_SESSION_LIMIT
    ) -> list[AgentDocument]:
        check_limit(limit)
        rows = await self._fetch(
            "SELECT doc FROM agents WHERE json_extract(doc, '$.has_active_session') = 1"
            " AND id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        )
        return [AgentDocument.model_validate_json(doc) for (doc,) in rows]

    async def get_session(self, session_id: str) -> SessionDocument | None:
        rows = await self._fetch("SELECT doc FROM sessions WHERE session_id = ?", (session_id,))
        return SessionDocument.model_validate_json(rows[0][0]) if rows else None

    async def list_sessions(
        self, agent_id: str, *, limit: int = DEFAULT_SESSION_LIMIT, before: datetime | None = None
    ) -> list[SessionDocument]:
        check_limit(limit)
        query = "SELECT doc FROM sessions WHERE agent_id = ?"
        parameters: list[Any] = [agent_id]
        if before is not None:
            query += " AND started_us < ?"
            parameters.append(epoch_us(before))
        query += " ORDER BY started_us DESC, session_id DESC LIMIT ?"
        parameters.append(limit)
        rows = await self._fetch(query, parameters)
        return [SessionDocument.model_validate_json(doc) for (doc,) in rows]

    async def list_sessions_of_owner(
        self,
        owner_user_id: str,
        *,
        status: SessionStatus | None = None,
        limit: int = DEFAULT_SESSION_LIMIT,
    ) -> list[SessionDocument]:
        check_limit(limit)
        # The owner expression is the one sessions_by_owner indexes, so SQLite uses the index.
        query = "SELECT doc FROM sessions WHERE json_extract(doc, '$.owner_user_id') = ?"
        parameters: list[Any] = [owner_user_id]
        if status is not None:
            query += " AND json_extract(doc, '$.status') = ?"
            parameters.append(status.value)
        query += " ORDER BY started_us DESC, session_id DESC LIMIT ?"
        parameters.append(limit)
        rows = await self._fetch(query, parameters)
        return [SessionDocument.model_validate_json(doc) for (doc,) in rows]

    async def reset(self) -> None:
        await asyncio.shield(self._reset())

    async def _reset(self) -> None:
        async with self._write_lock:
            self._check_open()
            with _guarded():
                await self._writer.execute("BEGIN IMMEDIATE")
                try:
                    for table in ("checkpoint", "agent_members", "agents", "sessions"):
                        await self._writer.execute(f"DELETE FROM {table}")
                except BaseException:
                    await self._writer.rollback()
                    raise
                await self._writer.commit()

    async def close(self) -> None:
        async with self._write_lock:
            if self._closed:
                return
            self._closed = True
            await self._reader.close()
            await self._writer.close()

    async def _fetch(self, query: str, parameters: Sequence[Any]) -> list[Any]:
        self._check_open()
        with _unavailable_on_failure():
            return list(await self._reader.execute_fetchall(query, parameters))

    def _check_open(self) -> None:
        """A closed store is one whose connection is gone: unavailable, like a lost server
        (aiosqlite would answer with a bare ValueError)."""
        if self._closed:
            raise ReadModelUnavailable("the SQLite read model is closed")


def _agent_row(agent: AgentDocument) -> tuple[Any, ...]:
    return (
        agent.id,
        agent.status.value,
        agent.agent_type.value,
        epoch_us(agent.created_at),
        agent.position,
        agent.model_dump_json(),
    )


def _session_row(session: SessionDocument) -> tuple[Any, ...]:
    return (
        session.session_id,
        session.agent_id,
        epoch_us(session.started_at),
        session.position,
        session.model_dump_json(),
    )


@contextlib.contextmanager
def _refused_as_such() -> Iterator[None]:
    """A document that cannot be encoded (a string UTF-8 cannot hold, a naive time) is refused
    for what it contains."""
    try:
        yield
    except ValueError as error:
        raise DocumentRefused(f"a document cannot be stored: {type(error).__name__}") from error


@contextlib.contextmanager
def _guarded() -> Iterator[None]:
    """SQLite's failures in the port's terms: what no retry can store (a value too big, a
    broken constraint, an integer beyond 64 bits) is DocumentRefused; anything else SQLite
    raises (locked past the busy timeout, I/O, a full disk, corruption) is unavailable."""
    try:
        yield
    except (sqlite3.DataError, sqlite3.IntegrityError, OverflowError) as error:
        raise DocumentRefused(f"SQLite refused the batch: {type(error).__name__}") from error
    except sqlite3.Error as error:
        raise ReadModelUnavailable(f"SQLite failed: {type(error).__name__}") from error


@contextlib.contextmanager
def _unavailable_on_failure() -> Iterator[None]:
    """For queries, every SQLite failure is the store's, never the data's."""
    try:
        yield
    except sqlite3.Error as error:
        raise ReadModelUnavailable(f"SQLite failed: {type(error).__name__}") from error


async def _connect(path: Path) -> aiosqlite.Connection:
    connection = await aiosqlite.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    await connection.execute("PRAGMA journal_mode=WAL")
    await connection.execute("PRAGMA synchronous=NORMAL")
    await connection.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
    return connection


async def _migrate(connection: aiosqlite.Connection) -> None:
    await connection.execute("BEGIN IMMEDIATE")
    try:
        rows = list(await connection.execute_fetchall("PRAGMA user_version"))
        version = int(rows[0][0])
        if version > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(f"read-model schema {version} is newer than this code")
        if version < SCHEMA_VERSION:
            for statement in filter(str.strip, _SCHEMA.split(";")):
                await connection.execute(statement)
            await connection.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    except BaseException:
        await connection.rollback()
        raise
    await connection.commit()


async def _checkpoint(connection: aiosqlite.Connection) -> int:
    rows = list(await connection.execute_fetchall("SELECT position FROM checkpoint WHERE id = 1"))
    return int(rows[0][0]) if rows else 0
