"""Read-your-writes: a query given a log position waits until the read model has applied it."""

from __future__ import annotations

from serve_app.backend import Backend


async def caught_up(backend: Backend, position: int) -> None:
    """Wait until the read model has applied ``position`` (0: nothing to wait for)."""
    if position > 0:
        await backend.projector.wait_for_position(position, backend.api.read_your_writes_timeout_s)
