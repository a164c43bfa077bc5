"""The PostgreSQL append lock cannot be held for long: a writer that freezes mid-append (here
SIGSTOP; a lost network looks the same to the server) is cut off by the server after the
idle-in-transaction timeout, and an append that cannot get the lock in time fails as
StoreUnavailable instead of hanging.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from uuid import uuid4

import pytest
from psycopg import AsyncConnection

from eventstore.port import NewEvent, StoreUnavailable, StreamState
from eventstore.postgres import PostgresEventStore, advisory_lock_name
from eventstore.postgres_settings import PostgresSettings
from tests.postgres_support import POSTGRES_URL

ROOT = Path(__file__).resolve().parents[2]
IDLE_TIMEOUT_MS = 1000
MARGIN_S = 3.0

# The frozen writer: an event acknowledged through the store, then an append left half done,
# holding the lock with a row written. Its timeouts come from the environment, as in production.
WRITER = """
import asyncio, sys, time
import psycopg
from eventstore.port import NewEvent, StreamState
from eventstore.postgres import PostgresEventStore, advisory_lock_name
from eventstore.postgres_settings import PostgresSettings

dsn, schema, stream = sys.argv[1:]

async def acknowledge():
    store = await PostgresEventStore.open(dsn, schema=schema)
    event = NewEvent(type="test.thing.happened.v1", data={"by": "writer"}, subject="s")
    await store.append(stream, [event], StreamState.NO_STREAM)
    await store.close()

asyncio.run(acknowledge())
db = psycopg.connect(PostgresSettings().conninfo(dsn))
db.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (advisory_lock_name(schema, "append"),))
db.execute(
    f"INSERT INTO {schema}.events (id, stream, version, type, source, subject, time, data) "
    "VALUES (gen_random_uuid(), %s, 2, 'test.raw.v1', 'urn:test', 's', now(), '{}')",
    (stream,),
)
print("locked", flush=True)
time.sleep(600)
"""


def event(n: int) -> NewEvent:
    return NewEvent(type="test.thing.happened.v1", data={"n": n}, subject="s")


@pytest.mark.postgres
@pytest.mark.timeout(60)
async def test_a_writer_frozen_while_holding_the_append_lock_blocks_appends_only_briefly(
    schema: str,
) -> None:
    store = await PostgresEventStore.open(POSTGRES_URL, schema=schema)
    stream = f"agent-{uuid4()}"
    writer = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        WRITER,
        POSTGRES_URL,
        schema,
        stream,
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env={
            **os.environ,
            "AGENTHOST_POSTGRES_IDLE_IN_TRANSACTION_TIMEOUT_MS": str(IDLE_TIMEOUT_MS),
        },
    )
    try:
        assert writer.stdout is not None
        assert await asyncio.wait_for(writer.stdout.readline(), 30) == b"locked\n"
        writer.send_signal(signal.SIGSTOP)
        # Before the fix this append waited for as long as the writer stayed frozen.
        result = await asyncio.wait_for(
            store.append(stream, [event(2)], 1), IDLE_TIMEOUT_MS / 1000 + MARGIN_S
        )
        assert result.version == 2
        # The acknowledged event is kept; the frozen writer's uncommitted row is gone.
        assert [e.data for e in await store.read(stream)] == [{"by": "writer"}, {"n": 2}]
    finally:
        if writer.returncode is None:
            writer.kill()  # SIGKILL ends a stopped process too
        await writer.wait()
        await store.close()


@pytest.mark.postgres
@pytest.mark.timeout(60)
async def test_an_append_that_waits_longer_than_the_lock_timeout_is_store_unavailable(
    schema: str,
) -> None:
    store = await PostgresEventStore.open(
        POSTGRES_URL, schema=schema, settings=PostgresSettings(lock_timeout_ms=300)
    )
    stream = f"agent-{uuid4()}"
    try:
        async with await AsyncConnection.connect(POSTGRES_URL) as holder, holder.transaction():
            await holder.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))",
                (advisory_lock_name(schema, "append"),),
            )
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                await asyncio.wait_for(store.append(stream, [event(1)], StreamState.NO_STREAM), 10)
            assert time.monotonic() - started < 0.3 + MARGIN_S
        # Nothing was written, and the lock is free again.
        assert await store.stream_version(stream) == 0
        assert (await store.append(stream, [event(1)], StreamState.NO_STREAM)).version == 1
    finally:
        await store.close()


def test_settings_come_from_the_environment_and_are_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGENTHOST_POSTGRES_LOCK_TIMEOUT_MS", "250")
    conninfo = PostgresSettings().conninfo("postgresql://u@db/app?options=-c%20search_path%3Dx")
    assert "-c lock_timeout=250 " in conninfo
    assert "search_path=x" in conninfo
    assert "keepalives=1" in conninfo
    assert "tcp_user_timeout=30000" in conninfo
    monkeypatch.setenv("AGENTHOST_POSTGRES_LOCK_TIMEOUT_MS", "0")
    with pytest.raises(ValueError, match="lock_timeout_ms"):
        PostgresSettings()
