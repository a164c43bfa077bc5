"""Hostile callers against the whole API in-process: a fresh app, log and read model per test,
on the SQLite read model and (``api_on_each_read_model``) on PostgreSQL's too."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import httpx
import pytest

from tests.postgres_support import POSTGRES_URL, drop_schema, require_postgres
from tests.support.api_client import SECRET
from tests.support.inprocess_api import InProcessApi, inprocess_api


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[InProcessApi]:
    async with inprocess_api(tmp_path, secret=SECRET) as opened:
        yield opened


@pytest.fixture
def http(api: InProcessApi) -> httpx.AsyncClient:
    return api.http


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def api_on_each_read_model(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[InProcessApi]:
    """The API over each read-model store that runs here (MongoDB only where MONGODB_URL is)."""
    if request.param == "sqlite":
        async with inprocess_api(tmp_path, secret=SECRET) as opened:
            yield opened
        return
    require_postgres()
    schema = f"test_{uuid4().hex[:12]}"
    try:
        async with inprocess_api(
            tmp_path, secret=SECRET, read_model_url=f"{POSTGRES_URL}?schema={schema}"
        ) as opened:
            yield opened
    finally:
        await drop_schema(schema)
