"""One fixture, every adapter: the contract suite runs unchanged on SQLite, PostgreSQL,
KurrentDB and the in-memory store, so the adapters cannot drift apart.

Tests must be valid on a shared server (KurrentDB): unique stream names, global reads
compared only on their own streams, positions relative to ``last_position()`` at the start.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from pathlib import Path
from uuid import uuid4

import pytest

from eventstore.port import EventStore
from tests.postgres_support import POSTGRES_URL, drop_schema, require_postgres

StoreOpener = Callable[[], Awaitable[EventStore]]


@pytest.fixture(
    params=[
        pytest.param("sqlite"),
        pytest.param("memory"),
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("kurrentdb", marks=pytest.mark.kurrentdb),
    ]
)
async def event_store_factory(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[StoreOpener]:
    """Opens independent instances on ONE backing store, as separate processes would."""
    cleanup: Callable[[], Awaitable[None]] | None = None
    open_one: StoreOpener
    if request.param == "sqlite":
        from eventstore.sqlite import SQLiteEventStore

        open_one = partial(SQLiteEventStore.open, tmp_path / "events.db")
    elif request.param == "memory":
        from eventstore.memory import InMemoryEventStore, MemoryLog

        open_one = partial(InMemoryEventStore.open, MemoryLog())
    elif request.param == "postgres":
        require_postgres()
        from eventstore.postgres import PostgresEventStore

        schema = f"test_{uuid4().hex[:12]}"
        open_one = partial(PostgresEventStore.open, POSTGRES_URL, schema=schema)
        cleanup = partial(drop_schema, schema)
    else:
        url = os.environ.get("EVENTSTORE_URL")
        if not url:
            pytest.skip("EVENTSTORE_URL not set: no KurrentDB/EventStoreDB server to test against")
        from eventstore.kurrentdb import KurrentDBEventStore

        open_one = partial(KurrentDBEventStore.open, url)

    opened: list[EventStore] = []

    async def factory() -> EventStore:
        store = await open_one()
        opened.append(store)
        return store

    try:
        yield factory
    finally:
        for store in opened:
            await store.close()
        if cleanup is not None:
            await cleanup()


@pytest.fixture
async def event_store(event_store_factory: StoreOpener) -> EventStore:
    return await event_store_factory()
