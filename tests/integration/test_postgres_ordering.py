"""PostgreSQL adapter behaviour beyond the shared contract: the global order, subscriptions'
connections and fallback, and an unreachable server.

Identity (sequence) values are allocated when a row is inserted but become visible when its
transaction commits, and transactions commit in any order. The first test shows the resulting
trap on a plain table; the next ones that the store's advisory lock closes it, without leaving
the lock behind when an append is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from functools import partial
from typing import Any, LiteralString
from uuid import UUID, uuid4

import pytest
from psycopg import AsyncConnection, sql
from psycopg.rows import TupleRow

from eventstore.port import NewEvent, RecordedEvent, StoreUnavailable, StreamState
from eventstore.postgres import PostgresEventStore, advisory_lock_name
from tests.postgres_support import POSTGRES_URL

WAIT_S = 10.0


def new_stream() -> str:
    return f"agent-{uuid4()}"


def event(stream: str, n: int = 0) -> NewEvent:
    return NewEvent(
        type="test.thing.happened.v1", data={"n": n}, subject=stream.removeprefix("agent-")
    )


async def connect() -> AsyncConnection[TupleRow]:
    return await AsyncConnection.connect(POSTGRES_URL, autocommit=True)


async def scalar(
    db: AsyncConnection[TupleRow], query: LiteralString | sql.Composed, *args: Any
) -> Any:
    cursor = await db.execute(query, args)
    row = await cursor.fetchone()
    assert row is not None
    return row[0]


@pytest.fixture
async def store(schema: str) -> AsyncIterator[PostgresEventStore]:
    opened = await PostgresEventStore.open(POSTGRES_URL, schema=schema)
    yield opened
    await opened.close()


def insert_raw_event(schema: str) -> sql.Composed:
    """An event row written behind the store's back (standing in for another writer)."""
    return sql.SQL(
        "INSERT INTO {}.events (id, stream, version, type, source, subject, time, data) "
        "VALUES (gen_random_uuid(), %s, 1, 'test.raw.v1', 'urn:test', 's', now(), '{{}}') "
        "RETURNING position"
    ).format(sql.Identifier(schema))


async def take_append_lock(db: AsyncConnection[TupleRow], schema: str) -> None:
    await db.execute(
        "SELECT pg_advisory_xact_lock(hashtext(%s))", (advisory_lock_name(schema, "append"),)
    )


async def until(condition: Callable[[], Awaitable[bool]]) -> None:
    async with asyncio.timeout(WAIT_S):
        while not await condition():  # noqa: ASYNC110 - server state: there is nothing to await
            await asyncio.sleep(0.01)


async def blocked_by(holder: AsyncConnection[TupleRow]) -> bool:
    """Whether some session waits for an advisory lock that ``holder`` holds."""
    async with await connect() as observer:
        return bool(
            await scalar(
                observer,
                "SELECT EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory' "
                "AND NOT granted AND %s = ANY(pg_blocking_pids(pid)))",
                holder.info.backend_pid,
            )
        )


# --- the trap, and the lock that closes it -------------------------------------------------


@pytest.mark.postgres
async def test_without_a_lock_a_reader_sees_a_later_position_before_an_earlier_one(
    schema: str,
) -> None:
    log = sql.Identifier(schema, "log")
    async with await connect() as setup:
        await setup.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        await setup.execute(
            sql.SQL("CREATE TABLE {} (position bigint GENERATED ALWAYS AS IDENTITY)").format(log)
        )
    insert = sql.SQL("INSERT INTO {} DEFAULT VALUES RETURNING position").format(log)
    visible = sql.SQL("SELECT array_agg(position ORDER BY position) FROM {}").format(log)

    async with await connect() as first, await connect() as second, await connect() as reader:
        async with first.transaction():
            earlier = await scalar(first, insert)
            later = await scalar(second, insert)  # autocommit: committed at once
            assert later > earlier
            # A reader resuming after `later` from here on would never see `earlier`.
            assert await scalar(reader, visible) == [later]
        assert await scalar(reader, visible) == [earlier, later]


@pytest.mark.postgres
async def test_an_append_takes_no_position_while_an_earlier_one_is_uncommitted(
    schema: str, store: PostgresEventStore
) -> None:
    start = await store.last_position()
    stream = new_stream()
    async with await connect() as paused:
        async with paused.transaction():
            # An append paused after allocating its position: the store's lock, then its row.
            await take_append_lock(paused, schema)
            held = await scalar(paused, insert_raw_event(schema), new_stream())
            appending = asyncio.create_task(store.append(stream, [event(stream)], 0))

            async def blocked_or_done() -> bool:
                return appending.done() or await blocked_by(paused)

            await until(blocked_or_done)
            assert not appending.done(), "the append committed above an uncommitted position"
            assert await store.read_all(start) == []  # neither the paused row nor a later one
            assert await store.last_position() == start
        result = await appending
        assert result.version == 1

    appended = (await store.read(stream))[0].position
    assert result.position == appended
    assert [e.position for e in await store.read_all(start)] == [held, appended]
    assert appended > held


@pytest.mark.postgres
async def test_an_append_cancelled_while_waiting_for_the_lock_leaves_nothing_behind(
    schema: str,
) -> None:
    # One pooled connection: the next append reuses the one the cancelled append was on.
    store = await PostgresEventStore.open(POSTGRES_URL, schema=schema, pool_size=1)
    stream = new_stream()
    try:
        async with await connect() as holder, holder.transaction():
            await take_append_lock(holder, schema)
            cancelled = asyncio.create_task(store.append(stream, [event(stream)], 0))
            await until(partial(blocked_by, holder))
            cancelled.cancel()
            with pytest.raises(asyncio.CancelledError):
                await cancelled
        # Had the cancelled append kept waiting, or kept the lock, this one would hang.
        appended = await asyncio.wait_for(store.append(stream, [event(stream)], 0), WAIT_S)
        assert appended.version == 1
        assert await store.stream_version(stream) == 1
    finally:
        await store.close()


@pytest.mark.postgres
async def test_a_catch_up_reader_sees_concurrent_appends_once_each_in_position_order(
    schema: str, store: PostgresEventStore
) -> None:
    others = [await PostgresEventStore.open(POSTGRES_URL, schema=schema) for _ in range(2)]
    streams = [new_stream() for _ in range(20)]
    written: list[UUID] = []
    writers_done = asyncio.Event()
    seen: list[RecordedEvent] = []

    async def writer(w: int) -> None:
        rng = random.Random(w)
        for i in range(100):
            stream = rng.choice(streams)
            events = [event(stream, i) for _ in range(rng.randint(1, 3))]
            await others[w % 2].append(stream, events, StreamState.ANY)
            written.extend(e.id for e in events)

    async def reader() -> None:
        position = 0
        while True:
            finished = writers_done.is_set()  # before the read: it then sees every append
            page = await store.read_all(position, 50)
            seen.extend(page)
            if page:
                position = page[-1].position
            elif finished:
                return
            else:
                await asyncio.sleep(0.001)

    reading = asyncio.create_task(reader())
    try:
        await asyncio.gather(*(writer(w) for w in range(8)))
        writers_done.set()
        await asyncio.wait_for(reading, WAIT_S)
    finally:
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)
        for other in others:
            await other.close()

    positions = [e.position for e in seen]
    assert positions == sorted(set(positions))
    assert sorted(e.id for e in seen) == sorted(written)
    assert len(written) >= 800


# --- subscriptions ------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def subscribed(store: PostgresEventStore) -> AsyncIterator[asyncio.Queue[RecordedEvent]]:
    """What ``subscribe_all`` yields, collected by a task that is cancelled on exit."""
    received: asyncio.Queue[RecordedEvent] = asyncio.Queue()

    async def collect() -> None:
        async for recorded in store.subscribe_all():
            received.put_nowait(recorded)

    collecting = asyncio.create_task(collect())
    try:
        yield received
    finally:
        collecting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await collecting


async def listeners(channel: str) -> int:
    async with await connect() as observer:
        return int(
            await scalar(
                observer,
                "SELECT count(*) FROM pg_stat_activity WHERE query = %s",
                sql.SQL("LISTEN {}").format(sql.Identifier(channel)).as_string(observer),
            )
        )


@pytest.mark.postgres
async def test_a_subscription_listens_on_its_own_connection_until_cancelled(
    schema: str, store: PostgresEventStore
) -> None:
    stream = new_stream()
    await store.append(stream, [event(stream)], StreamState.NO_STREAM)
    async with subscribed(store) as received:
        assert (await asyncio.wait_for(received.get(), WAIT_S)).stream == stream
        assert await listeners(f"{schema}_events") == 1

    async def closed() -> bool:  # the backend exits asynchronously
        return await listeners(f"{schema}_events") == 0

    await until(closed)


@pytest.mark.postgres
async def test_a_subscription_polls_so_a_missing_notification_only_delays_it(
    schema: str,
) -> None:
    store = await PostgresEventStore.open(POSTGRES_URL, schema=schema, poll_interval=0.1)
    stream = new_stream()
    try:
        await store.append(stream, [event(stream)], StreamState.NO_STREAM)
        async with subscribed(store) as received:
            await asyncio.wait_for(received.get(), WAIT_S)
            # From here on the subscription reads again only once it is woken up.
            async with await connect() as writer, writer.transaction():
                await take_append_lock(writer, schema)
                position = await scalar(writer, insert_raw_event(schema), new_stream())
            assert (await asyncio.wait_for(received.get(), WAIT_S)).position == position
    finally:
        await store.close()


# --- an unreachable server ----------------------------------------------------------------


@pytest.fixture(params=["refusing", "silent"])
def unreachable_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A port that refuses connections, or one that accepts them and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        if request.param == "silent":
            server.listen()  # the kernel completes the handshake; nobody ever reads
        yield f"postgresql://postgres@127.0.0.1:{server.getsockname()[1]}/test"


async def test_an_unreachable_server_is_store_unavailable_within_the_connect_timeout(
    unreachable_url: str,
) -> None:
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        await PostgresEventStore.open(unreachable_url, connect_timeout=2)
    assert time.monotonic() - started < 5
