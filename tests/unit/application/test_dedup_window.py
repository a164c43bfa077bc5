"""The activation's dedup window: what it recognises, what it refuses, and what it costs."""

from __future__ import annotations

import tracemalloc
from uuid import uuid4

import pytest

from application.dedup_window import DEDUP_WINDOW_SIZE, DedupWindow, command_event_ids
from application.errors import IdempotencyKeyReused
from eventstore.port import AppendResult

FIRST, SECOND = "a" * 64, "b" * 64


def full_window() -> DedupWindow:
    """A default window filled with two-event commands, each with a fingerprint."""
    window = DedupWindow()
    for version in range(2, DEDUP_WINDOW_SIZE + 200, 2):
        window.add(command_event_ids(uuid4(), 2), AppendResult(version, version * 10), FIRST)
    return window


def test_a_full_default_window_holds_at_most_64_kb() -> None:
    # Given a fresh interpreter-level count of allocations
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        # When a default window is filled past its size
        window = full_window()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    held = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    # Then it holds its size in events, in 64 KB at most, however it is counted
    assert len(window) == DEDUP_WINDOW_SIZE
    assert window.nbytes <= 64 * 1024
    assert held <= 64 * 1024


def test_a_multi_event_command_is_answered_from_its_last_event() -> None:
    window = DedupWindow()
    command = uuid4()
    window.add(command_event_ids(uuid4(), 1), AppendResult(1, 10))
    window.add(command_event_ids(command, 3), AppendResult(4, 40))
    assert window.applied(command) == AppendResult(4, 40)
    assert window.applied(uuid4()) is None


def test_eviction_forgets_the_oldest_commands_with_their_fingerprints() -> None:
    command_ids = [uuid4() for _ in range(3)]
    window = DedupWindow(limit=2)
    for n, command_id in enumerate(command_ids, 1):
        window.add(command_event_ids(command_id, 1), AppendResult(n, n * 10), FIRST)
    assert window.applied(command_ids[0], SECOND) is None  # evicted: the store decides
    assert window.applied(command_ids[2], FIRST) == AppendResult(3, 30)


def test_a_command_id_applied_for_another_request_is_refused() -> None:
    window = DedupWindow()
    command = uuid4()
    window.add(command_event_ids(command, 2), AppendResult(2, 20), FIRST)
    with pytest.raises(IdempotencyKeyReused):
        window.applied(command, SECOND)
    assert window.applied(command, FIRST) == AppendResult(2, 20)
    assert window.applied(command, None) == AppendResult(2, 20)  # a system retry


def test_the_window_survives_its_json_form() -> None:
    window = full_window()
    copied = DedupWindow.from_json(window.to_json())
    assert copied.to_json() == window.to_json()
    assert len(copied) == len(window)


def test_a_batch_that_skips_versions_starts_the_window_afresh() -> None:
    # Given a window that saw versions 1-2
    window = DedupWindow()
    old = uuid4()
    window.add(command_event_ids(old, 2), AppendResult(2, 20))
    # When a batch at versions 6-7 arrives (the window never saw 3-5)
    new = uuid4()
    window.add(command_event_ids(new, 2), AppendResult(7, 70))
    # Then versions it answers are never guessed across the gap
    assert window.applied(new) == AppendResult(7, 70)
    assert window.applied(old) is None
