"""The HTTP API in this process (no Ray): a fresh app, log and read model for every test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.support.api_client import SECRET
from tests.support.inprocess_api import InProcessApi, inprocess_api


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[InProcessApi]:
    async with inprocess_api(tmp_path, secret=SECRET, max_body_bytes=4096) as opened:
        yield opened


@pytest.fixture
def http(api: InProcessApi) -> httpx.AsyncClient:
    return api.http
