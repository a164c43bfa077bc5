"""One local Ray instance for the whole test session; per-test namespaces and stores."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from uuid import uuid4

import pytest
import ray
from ray.util import list_named_actors

from actors.settings import Settings
from tests.postgres_support import drop_schema, require_postgres


@pytest.fixture(scope="session")
def ray_instance() -> Iterator[None]:
    ray.init(
        address="local",  # a fresh instance: never a developer's running cluster
        num_cpus=2,
        include_dashboard=False,
        logging_level="WARNING",
        log_to_driver=False,
    )
    yield
    ray.shutdown()


def kill_namespace(namespace: str) -> None:
    """Detached actors outlive their creator: tests clean up the ones they started."""
    for entry in list_named_actors(all_namespaces=True):
        if entry["namespace"] == namespace:
            ray.kill(ray.get_actor(entry["name"], namespace=namespace), no_restart=True)


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    fields: dict[str, object] = {
        "event_store_url": f"sqlite:///{tmp_path / 'events.db'}",
        "read_model_url": f"sqlite:///{tmp_path / 'read_model.db'}",
        "ray_namespace": f"test-{uuid4().hex[:10]}",
        "hosts": 2,
        "actor_retry_timeout_s": 60.0,
    }
    fields.update(overrides)
    return Settings(**fields)  # type: ignore[arg-type]


@pytest.fixture
def ray_settings(ray_instance: None, tmp_path: Path) -> Iterator[Settings]:
    settings = make_settings(tmp_path)
    yield settings
    kill_namespace(settings.ray_namespace)


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    """A fresh PostgreSQL schema name, dropped afterwards (skipped without a server)."""
    require_postgres()
    name = f"test_{uuid4().hex[:12]}"
    yield name
    await drop_schema(name)
