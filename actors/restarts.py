"""Calling a detached actor that may be restarting: the one retry policy of every caller.

Two layers. Ray resends a call itself when its actor dies with it queued or running
(``TASK_RETRIES_THROUGH_RESTARTS``, set on the sharded hosts and the projector; not on
dedicated hosts, which exit for good when idle): the call waits in the caller's queue and
goes out as soon as the restarted actor is up. Without it a call to a dead actor fails only
after Ray's unavailability timeout (about 2 s, measured) and every retry waits as long again
(kill to answer on an idle box: 4.0 s without, 2.8 s with it; decision 0006).
``call_through_restarts`` then retries what is left (an actor that died more often than that
during one call, or one still unreachable) until ``timeout_s``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ray.actor import ActorHandle
from ray.exceptions import RayActorError
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

T = TypeVar("T")

TASK_RETRIES_THROUGH_RESTARTS = 5
"""Ray-level resends of one call across actor deaths (the ``max_task_retries`` actor option).
Bounded, so a crash-looping actor surfaces as RayActorError to the caller's own deadline
instead of holding the call forever. Safe because every method called through restarts is
idempotent."""


async def call_through_restarts(
    handle: Callable[[], ActorHandle[Any]],
    call: Callable[[ActorHandle[Any]], Awaitable[T]],
    *,
    timeout_s: float,
    fence: Callable[[], Awaitable[None]] | None = None,
) -> T:
    """``call(actor)`` until the actor answers or ``timeout_s`` passes.

    Only actor failures (died, restarting, unreachable) are retried; an error the method itself
    raises reaches the caller at once. Retrying is safe because every actor method called this
    way is idempotent (commands carry their id; queries change nothing). After each failure
    ``fence`` may raise instead (the actor was retired by a rollout: no point retrying).
    """

    async def fenced(actor: ActorHandle[Any]) -> T:
        try:
            return await call(actor)
        except RayActorError:
            if fence is not None:
                await fence()
            raise

    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(RayActorError),
        wait=wait_exponential(multiplier=0.02, max=0.2),
        stop=stop_after_delay(timeout_s),
        reraise=True,
    ):
        with attempt:
            return await fenced(handle())
    raise AssertionError("unreachable: AsyncRetrying reraises")  # pragma: no cover
