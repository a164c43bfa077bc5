"""The PostgreSQL test server, shared by the contract suite and the PostgreSQL-only tests."""

from __future__ import annotations

import functools
import os

import psycopg
import pytest
from psycopg import sql

POSTGRES_URL = os.environ.get(
    "AGENTHOST_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@functools.cache
def postgres_unreachable() -> str | None:
    """Why the PostgreSQL test server cannot be used (None when it can); checked once."""
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3):
            return None
    except psycopg.OperationalError as error:
        # The URL may hold a password: name the variable, not its value.
        return f"PostgreSQL test server (AGENTHOST_TEST_POSTGRES_URL) unreachable: {error}"


def require_postgres() -> None:
    """Skip the calling test when the server is unreachable; fail it under CI, which must run
    every PostgreSQL test."""
    unreachable = postgres_unreachable()
    if unreachable is not None:
        if os.environ.get("CI"):
            pytest.fail(f"{unreachable}; CI must run the PostgreSQL tests")
        pytest.skip(unreachable)


async def drop_schema(schema: str) -> None:
    async with await psycopg.AsyncConnection.connect(POSTGRES_URL, autocommit=True) as db:
        await db.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
