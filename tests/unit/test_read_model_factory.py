"""The read-model URL picks the adapter; PostgreSQL read models default to their own schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from projections.factory import open_read_model
from projections.sqlite_store import SQLiteReadModel
from tests.postgres_support import POSTGRES_URL, drop_schema, require_postgres


async def test_a_sqlite_url_opens_the_embedded_read_model(tmp_path: Path) -> None:
    store = await open_read_model(f"sqlite:///{tmp_path / 'nested' / 'read_model.db'}")
    try:
        assert isinstance(store, SQLiteReadModel)
        assert await store.checkpoint() == 0
    finally:
        await store.close()


@pytest.mark.postgres
async def test_a_postgres_url_keeps_read_models_apart_from_the_event_store() -> None:
    require_postgres()
    from projections.postgres_store import DEFAULT_SCHEMA, PostgresReadModel

    store = await open_read_model(f"{POSTGRES_URL}?schema=test_rm_factory")
    try:
        assert isinstance(store, PostgresReadModel)
        assert DEFAULT_SCHEMA != "agenthost"  # the event store's default schema
        assert await store.checkpoint() == 0
    finally:
        await store.close()
        await drop_schema("test_rm_factory")


@pytest.mark.parametrize("url", ["redis://localhost/0", "sqlite:///", "read_model.db"])
async def test_an_unsupported_url_is_refused_with_the_choices(url: str) -> None:
    with pytest.raises(ValueError, match="sqlite"):
        await open_read_model(url)
