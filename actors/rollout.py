"""Redeploys: one generation of actors at a time, the new one starting after the old is gone.

Actors are named after their deployment's generation (``actors.placement``). A rollout
claims the new generation in the namespace's registry, then kills every actor of another
generation (hosts, projector, sweeper) and waits until they are gone; only then does the new
deployment start serving, and with it the new generation's actors. So no agent is ever held
by an old and a new host at once.

Old Serve replicas may still run while the new ones start. They cannot bring an old actor
back: a host checks the registry as it starts and refuses to run for a generation that is not
the current one, and a caller whose actor died asks the registry before retrying
(``fence``): retired, it answers ``DeploymentRetired`` (a retryable 503) at once instead of
retrying into the old generation.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import ray
from ray.actor import ActorHandle
from ray.util import list_named_actors

from actors.placement import generation_of
from actors.settings import Settings

log = logging.getLogger(__name__)

REGISTRY_NAME = "agent-deployment"
RETIRE_TIMEOUT_S = 60.0


class DeploymentRetired(Exception):
    """This process serves a generation a newer deployment replaced: retry (the request will
    reach the new deployment's replicas), nothing was done here."""


@ray.remote
class DeploymentRegistry:
    """The namespace's current generation. It lives in memory: if its node dies the
    registry restarts knowing none, and every generation is accepted until the next rollout
    claims one (docs/operations.md)."""

    def __init__(self) -> None:
        self._current: str | None = None

    def claim(self, generation: str) -> None:
        self._current = generation

    def current(self) -> str | None:
        return self._current


def registry(namespace: str) -> ActorHandle[Any]:
    handle: ActorHandle[Any] = DeploymentRegistry.options(  # type: ignore[attr-defined]
        name=REGISTRY_NAME,
        namespace=namespace,
        lifetime="detached",
        get_if_exists=True,
        max_restarts=-1,
        num_cpus=0,
    ).remote()
    return handle


async def is_retired(namespace: str, generation: str) -> bool:
    """Whether a newer rollout replaced ``generation`` (unknown counts as current)."""
    current = await registry(namespace).current.remote()
    return current is not None and current != generation


async def fence(settings: Settings) -> None:
    """Raise DeploymentRetired if ``settings``' generation was replaced."""
    if await is_retired(settings.ray_namespace, settings.generation):
        raise DeploymentRetired(f"deployment generation {settings.generation} was replaced")


async def refuse_if_retired(namespace: str, generation: str) -> None:
    """A detached actor's first step: started by an old deployment's caller after a rollout
    retired its generation, it must not run (it would work beside the new generation's
    actors), so it raises DeploymentRetired; a constructor that raises is not restarted and
    its caller fences. A restart skips the check (callers wait on it): a rollout kills
    restarting actors by name, for good, like running ones."""
    if ray.get_runtime_context().was_current_actor_reconstructed:
        return
    if await is_retired(namespace, generation):
        raise DeploymentRetired(f"generation {generation} was replaced")


def roll_out(settings: Settings, timeout_s: float = RETIRE_TIMEOUT_S) -> list[str]:
    """Make ``settings``' generation the current one and retire every other; returns the
    names of the actors retired. Blocks until they are gone (their names are free)."""
    namespace, generation = settings.ray_namespace, settings.generation
    ray.get(registry(namespace).claim.remote(generation))
    retired: list[str] = []
    deadline = time.monotonic() + timeout_s
    while stale := _stale_actors(namespace, generation):
        if time.monotonic() > deadline:
            raise TimeoutError(f"actors of older generations still running: {stale}")
        for name in stale:
            try:
                ray.kill(ray.get_actor(name, namespace=namespace), no_restart=True)
            except ValueError:  # gone meanwhile
                continue
            if name not in retired:
                retired.append(name)
        time.sleep(0.05)
    if retired:
        log.info("rollout to generation %s retired %s", generation, retired)
    return retired


def _stale_actors(namespace: str, generation: str) -> list[str]:
    return sorted(
        entry["name"]
        for entry in list_named_actors(all_namespaces=True)
        if entry["namespace"] == namespace
        and generation_of(entry["name"]) not in (None, generation)
    )
