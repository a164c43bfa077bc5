"""Open the read model a URL names: the one setting that picks an adapter.

Adapters are imported only when chosen, so a deployment needs only its own store's client.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from eventstore.factory import split_postgres_url, sqlite_path
from projections.store import ReadModelStore

POSTGRES_SCHEMES = frozenset({"postgresql", "postgres"})
MONGODB_SCHEMES = frozenset({"mongodb", "mongodb+srv"})


async def open_read_model(url: str) -> ReadModelStore:
    """``sqlite:///path``, ``postgresql://...?schema=name``, or ``mongodb://host/database``."""
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        from projections.sqlite_store import SQLiteReadModel

        return await SQLiteReadModel.open(sqlite_path(url))
    if scheme in POSTGRES_SCHEMES:
        from projections.postgres_store import DEFAULT_SCHEMA, PostgresReadModel

        dsn, schema = split_postgres_url(url, default_schema=DEFAULT_SCHEMA)
        return await PostgresReadModel.open(dsn, schema=schema)
    if scheme in MONGODB_SCHEMES:
        from projections.mongo_store import MongoReadModel

        return await MongoReadModel.open(url)
    raise ValueError(
        f"unsupported read model URL scheme {scheme!r}: use sqlite:///, postgresql:// or mongodb://"
    )
