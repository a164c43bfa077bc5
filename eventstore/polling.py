"""Catch-up-then-live subscription for stores without a native one (SQLite, PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from eventstore.port import EventStore, RecordedEvent


async def follow_all(
    store: EventStore,
    after_position: int,
    wait_for_change: Callable[[], Awaitable[None]],
    batch_size: int = 500,
) -> AsyncIterator[RecordedEvent]:
    """Yield every event after ``after_position`` in global order, then new ones as they land.

    ``wait_for_change`` returns when new events may exist (a notification or a poll interval);
    it may return spuriously. Correctness rests only on ``read_all`` never exposing a position
    before every lower position is visible.
    """
    position = after_position
    while True:
        batch = await store.read_all(position, batch_size)
        for event in batch:
            position = event.position
            yield event
        if len(batch) < batch_size:
            await wait_for_change()
