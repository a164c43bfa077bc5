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
from typing import Any, Literal, TypeVar

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

from actors.placement import projector_name
from actors.restarts import TASK_RETRIES_THROUGH_RESTARTS, call_through_restarts
from actors.rollout import fence, refuse_if_retired
from actors.settings import Settings
from eventstore.factory import open_event_store
from eventstore.port import StoreUnavailable
from projections.factory import open_read_model
from projections.projector import PoisonEvent, Projector
from projections.store import ReadModelUnavailable

log = logging.getLogger(__name__)
FOLLOW_RETRY_MAX_WAIT_S = 10.0
T = TypeVar("T")


class ProjectorConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    event_store_url: str
    read_model_url: str


StopReason = Literal["poison_event", "store_unavailable", "failed"]
"""Why following stopped, as a stable code: ``poison_event`` (an event it cannot project,
the only way the actor stops), or, for a projector without the actor's retries,
``store_unavailable`` or ``failed``."""


class ProjectionStatus(BaseModel):
    """How far the read model follows the log. Codes and positions only: no exception text and
    nothing of an event's data, so it can be shown to operators and probes as it is."""

    checkpoint: int
    last_position: int
    pid: int
    stopped_by: StopReason | None = None
    stopped_at: int | None = None
    """The position of the poison event following stopped at (never skipped)."""
    stopped_event_type: str | None = None

    @property
    def lag(self) -> int:
        return self.last_position - self.checkpoint


async def projection_status(
    projector: Projector, following: asyncio.Task[None], *, pid: int
) -> ProjectionStatus:
    """The status of ``projector`` as its ``following`` task has left it (the actor's and the
    in-process projector's alike)."""
    status = ProjectionStatus(
        checkpoint=await projector.read_model.checkpoint(),
        last_position=await projector.event_store.last_position(),
        pid=pid,
    )
    stopped = following.exception() if following.done() and not following.cancelled() else None
    if isinstance(stopped, PoisonEvent):
        return status.model_copy(
            update={
                "stopped_by": "poison_event",
                "stopped_at": stopped.position,
                "stopped_event_type": stopped.event_type,
            }
        )
    if isinstance(stopped, ReadModelUnavailable | StoreUnavailable):
        return status.model_copy(update={"stopped_by": "store_unavailable"})
    if stopped is not None:
        return status.model_copy(update={"stopped_by": "failed"})
    return status


@ray.remote
class ProjectorActor:
    async def __init__(self, config: ProjectorConfig, namespace: str, generation: str) -> None:  # type: ignore[misc]
        # An old generation's projector would write the read model beside the new one's.
        await refuse_if_retired(namespace, generation)
        # Ray runs an async actor's __init__ on its event loop: tasks can start here.
        self._config = config
        self._projector: asyncio.Future[Projector] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._follow())

    async def _follow(self) -> None:
        """Open the stores and follow the log; a store failure is retried with backoff
        (the checkpoint makes resuming exact), a PoisonEvent stops following loudly: the
        stores classify what they refuse for its data as one, so no batch is retried forever."""
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type(Exception) & retry_if_not_exception_type(PoisonEvent),
                wait=wait_exponential(multiplier=0.1, max=FOLLOW_RETRY_MAX_WAIT_S),
                before_sleep=_log_retry,
            ):
                with attempt:
                    if not self._projector.done():
                        self._projector.set_result(await _open_projector(self._config))
                    await self._projector.result().run()
        except PoisonEvent:
            log.exception("projector stopped at a poison event; an operator must fix it")
            raise

    async def status(self) -> ProjectionStatus:
        return await projection_status(await self._projector, self._task, pid=os.getpid())

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
            lambda: self.handle,
            call,
            timeout_s=self._settings.actor_retry_timeout_s,
            fence=lambda: fence(self._settings),
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
        name=projector_name(settings.generation),
        namespace=settings.ray_namespace,
        lifetime="detached",
        get_if_exists=True,
        max_restarts=-1,
        max_task_retries=TASK_RETRIES_THROUGH_RESTARTS,
        max_concurrency=100,
        num_cpus=0,
    ).remote(config, settings.ray_namespace, settings.generation)
    return handle
