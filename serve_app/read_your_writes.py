"""Read-your-writes: a query given a log position waits until the read model has applied it.

The replica waits on its own read-model connection, never in the projector actor (whose
concurrency slots would be held by every waiting request), and a position past the log's head
is clamped to the head: nothing can be applied beyond it, so waiting for more only pins a
request for the whole timeout.
"""

from __future__ import annotations

from serve_app.backend import Backend


class ReadModelBehind(Exception):
    """The read model had not applied the position a query waits for within the timeout (the
    projector is behind, or stopped): the write it waits for is stored, so retrying is safe."""


async def caught_up(backend: Backend, position: int) -> None:
    """Return once the read model has applied ``position`` (0: nothing to wait for), or at
    least the log's current head if ``position`` lies beyond it; ReadModelBehind after
    ``read_your_writes_timeout_s``."""
    if position <= 0 or await backend.read_model.checkpoint() >= position:
        return
    target = min(position, await backend.event_store.last_position())
    timeout = backend.api.read_your_writes_timeout_s
    if not await backend.read_model.wait_for_position(target, timeout):
        raise ReadModelBehind(f"the read model has not reached position {target} yet")
