"""In-memory-only behaviour (copies, refusals, named logs, close, event loops) and its factory
URL; the port's contract itself is in tests/contract."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from uuid import uuid4

import pytest

from eventstore.factory import memory_name, open_event_store
from eventstore.memory import InMemoryEventStore, MemoryLog, named_log
from eventstore.port import (
    AppendResult,
    DuplicateEventId,
    NewEvent,
    RecordedEvent,
    Snapshot,
    StoreUnavailable,
    StreamState,
)


def event(n: int = 0) -> NewEvent:
    return NewEvent(type="test.thing.happened.v1", data={"n": n}, subject="a")


async def next_of(events: AsyncIterator[RecordedEvent]) -> RecordedEvent:
    """``anext`` as a coroutine, for create_task."""
    return await anext(events)


async def test_stored_data_is_a_copy_the_caller_cannot_change() -> None:
    store = InMemoryEventStore(MemoryLog())
    tags = ["a"]
    await store.append("s", [NewEvent(type="t", data={"tags": tags}, subject="a")], 0)
    tags.append("changed after append")
    (read,) = await store.read("s")
    read.data["tags"].append("changed after read")

    items = [1]
    await store.save_snapshot(Snapshot(stream="s", version=1, state={"items": items}))
    items.append(2)
    loaded = await store.load_snapshot("s")
    assert loaded is not None
    loaded.state["items"].append(3)

    assert [e.data for e in await store.read_all()] == [{"tags": ["a"]}]
    assert await store.load_snapshot("s") == Snapshot(stream="s", version=1, state={"items": [1]})


async def test_stored_extensions_are_a_copy_the_caller_cannot_change() -> None:
    store = InMemoryEventStore(MemoryLog())
    extensions = {"traceid": "t-1"}
    await store.append("s", [NewEvent(type="t", data={}, subject="a", extensions=extensions)], 0)
    extensions["traceid"] = "changed after append"
    (read,) = await store.read("s")
    read.extensions["traceid"] = "changed after read"  # type: ignore[index]

    assert [e.extensions for e in await store.read_all()] == [{"traceid": "t-1"}]


async def test_events_that_are_not_storable_as_json_with_a_time_are_refused() -> None:
    store = InMemoryEventStore(MemoryLog())
    naive = NewEvent(type="t", data={}, subject="a", time=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.append("s", [naive], StreamState.ANY)
    with pytest.raises(ValueError, match="JSON"):
        await store.append("s", [NewEvent(type="t", data={"x": float("nan")}, subject="a")], 0)
    with pytest.raises(TypeError):
        await store.append("s", [NewEvent(type="t", data={"x": {1, 2}}, subject="a")], 0)
    same = event()
    with pytest.raises(DuplicateEventId):
        await store.append("s", [same, same], StreamState.ANY)
    with pytest.raises(ValueError, match="JSON"):
        await store.save_snapshot(Snapshot(stream="s", version=0, state={"x": float("inf")}))
    assert await store.last_position() == 0
    assert await store.load_snapshot("s") is None


async def test_a_closed_instance_refuses_calls_and_ends_its_parked_subscribers() -> None:
    log = MemoryLog()
    closing, staying = InMemoryEventStore(log), InMemoryEventStore(log)
    theirs = staying.subscribe_all()
    parked = asyncio.create_task(next_of(closing.subscribe_all()))
    follower = asyncio.create_task(next_of(theirs))
    await asyncio.sleep(0.01)

    await closing.close()
    with pytest.raises(StoreUnavailable, match="closed"):
        await parked
    for call in (closing.last_position(), closing.append("s", [event()], StreamState.ANY)):
        with pytest.raises(StoreUnavailable):
            await call
    assert not follower.done()  # woken spuriously by the close, and parked again

    await staying.append("s", [event(7)], StreamState.ANY)
    async with asyncio.timeout(2):
        assert (await follower).data["n"] == 7
    await theirs.aclose()  # type: ignore[attr-defined]


async def test_a_subscriber_cancelled_as_an_append_wakes_it_still_stops() -> None:
    store = InMemoryEventStore(MemoryLog())
    events = store.subscribe_all()
    reader = asyncio.create_task(next_of(events))
    await asyncio.sleep(0.01)  # parked, waiting for an append
    await store.append("s", [event()], StreamState.NO_STREAM)
    reader.cancel()
    await asyncio.wait({reader}, timeout=2)
    assert reader.cancelled()
    await events.aclose()  # type: ignore[attr-defined]


# --- named logs and the factory -------------------------------------------------------------


def test_memory_urls_name_a_log() -> None:
    assert memory_name("memory://api-tests") == "api-tests"
    assert memory_name("memory://a/b?c") == "a/b?c"
    for bad in ("memory://", "memory:name", "memory:/name"):
        with pytest.raises(ValueError, match="memory://"):
            memory_name(bad)


async def test_the_same_name_opens_the_same_log_and_another_name_a_fresh_one() -> None:
    name = f"test-{uuid4().hex}"
    writer, reader = (
        await open_event_store(f"memory://{name}"),
        await open_event_store(f"memory://{name}"),
    )
    elsewhere = await open_event_store(f"memory://{name}-other")
    assert isinstance(writer, InMemoryEventStore)

    written = await writer.append("s", [event(1)], StreamState.NO_STREAM)

    assert written == AppendResult(1, 1)
    assert [e.data["n"] for e in await reader.read("s")] == [1]
    assert await elsewhere.last_position() == 0
    await writer.close()  # closes that instance, not the log
    assert await reader.stream_version("s") == 1


def test_a_named_log_outlives_event_loops_even_one_closed_under_a_parked_subscriber() -> None:
    name = f"test-{uuid4().hex}"

    async def park() -> None:
        store = InMemoryEventStore(named_log(name))
        asyncio.create_task(next_of(store.subscribe_all()))  # noqa: RUF006 - left to the loop
        await asyncio.sleep(0.01)

    abandoned = asyncio.new_event_loop()
    abandoned.run_until_complete(park())
    abandoned.close()  # its parked task is never cancelled

    async def write_and_follow() -> RecordedEvent:
        store = InMemoryEventStore(named_log(name))
        await store.append("s", [event(2)], StreamState.ANY)
        return await anext(store.subscribe_all())

    assert asyncio.run(write_and_follow()).data["n"] == 2
