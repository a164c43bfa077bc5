"""The detached projector actor: keeps the read model following the global log.

It starts following from the read model's own checkpoint as soon as it exists (and again
after every restart: Ray re-runs ``__init__``), so a killed projector simply resumes; the
checkpoint is written with the documents, so nothing is applied twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import ray
from pydantic import BaseModel, ConfigDict
from ray.actor import ActorHandle
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    retry_if_not_exception_type,
    wait_exponential,
)

from actors.placement import PROJECTOR_NAME
from actors.restarts import call_through_restarts
from actors.settings import Settings
from eventstore.factory import open_event_store
from projections.factory import open_read_model
from projections.projector import PoisonEvent, Projector

log = logging.getLogger(__name__)
FOLLOW_RETRY_MAX_WAIT_S = 10.0
T = TypeVar("T")


class ProjectorConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    event_store_url: str
    read_model_url: str


class ProjectionStatus(BaseModel):
    checkpoint: int
    last_position: int
    pid: int
    stopped_by: str | None = None

    @property
    def lag(self) -> int:
        return self.last_position - self.checkpoint


@ray.remote
class ProjectorActor:
    async def __init__(self, config: ProjectorConfig) -> None:  # type: ignore[misc]
        # Ray runs an async actor's __init__ on its event loop: tasks can start here.
        self._config = config
        self._projector: asyncio.Future[Projector] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._follow())

    async def _follow(self) -> None:
        """Open the stores and follow the log; a store failure is retried with backoff
        (the checkpoint makes resuming exact), a PoisonEvent stops following loudly."""
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(Exception) & retry_if_not_exception_type(PoisonEvent),
            wait=wait_exponential(multiplier=0.1, max=FOLLOW_RETRY_MAX_WAIT_S),
            before_sleep=_log_retry,
        ):
            with attempt:
                if not self._projector.done():
                    self._projector.set_result(await _open_projector(self._config))
                await self._projector.result().run()

    async def status(self) -> ProjectionStatus:
        projector = await self._projector
        stopped = self._task.done() and not self._task.cancelled() and self._task.exception()
        return ProjectionStatus(
            checkpoint=await projector.read_model.checkpoint(),
            last_position=await projector.event_store.last_position(),
            pid=os.getpid(),
            stopped_by=repr(stopped) if stopped else None,
        )

    async def wait_for_position(self, position: int, timeout_s: float) -> bool:
        projector = await self._started()
        return await projector.read_model.wait_for_position(position, timeout_s)

    async def rebuild(self) -> int:
        """Drop the read model and replay the whole log into it; returns the new checkpoint."""
        projector = await self._started()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        checkpoint = await projector.rebuild()
        self._task = asyncio.create_task(self._follow())
        return checkpoint

    async def _started(self) -> Projector:
        """The projector once its stores are open; fails loudly if following has crashed."""
        either: set[asyncio.Future[Any]] = {self._projector, self._task}
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if self._task.done() and not self._task.cancelled() and self._task.exception():
            raise RuntimeError("the projector stopped") from self._task.exception()
        return await self._projector


class ProjectorClient:
    """The read side's handle on the projector, retried through its restarts."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._handle: ActorHandle[Any] | None = None

    @property
    def handle(self) -> ActorHandle[Any]:
        if self._handle is None:
            self._handle = _projector_handle(self._settings)
        return self._handle

    async def status(self) -> ProjectionStatus:
        return await self._call(lambda projector: projector.status.remote())

    async def wait_for_position(self, position: int, timeout_s: float) -> bool:
        """Read-your-writes: True once the read model has applied ``position``."""
        return await self._call(
            lambda projector: projector.wait_for_position.remote(position, timeout_s)
        )

    async def rebuild(self) -> int:
        return await self._call(lambda projector: projector.rebuild.remote())

    async def _call(self, call: Callable[[ActorHandle[Any]], Awaitable[T]]) -> T:
        return await call_through_restarts(
            lambda: self.handle, call, timeout_s=self._settings.actor_retry_timeout_s
        )


async def _open_projector(config: ProjectorConfig) -> Projector:
    event_store = await open_event_store(config.event_store_url)
    try:
        return Projector(event_store, await open_read_model(config.read_model_url))
    except BaseException:
        await event_store.close()
        raise


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    log.warning("projector stopped (%r); resuming from its checkpoint", error)


def _projector_handle(settings: Settings) -> ActorHandle[Any]:
    """Get (or start) the one detached projector of this namespace."""
    config = ProjectorConfig(
        event_store_url=settings.event_store_url, read_model_url=settings.read_model_url
    )
    handle: ActorHandle[Any] = ProjectorActor.options(  # type: ignore[attr-defined]
        name=PROJECTOR_NAME,
        namespace=settings.ray_namespace,
        lifetime="detached",
        get_if_exists=True,
        max_restarts=-1,
        max_concurrency=100,
        num_cpus=0,
    ).remote(config)
    return handle
