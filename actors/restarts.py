"""Calling a detached actor that may be restarting: the one retry policy of every caller."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ray.actor import ActorHandle
from ray.exceptions import RayActorError
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

T = TypeVar("T")


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
