"""Open the event store a URL names: the one setting that picks an adapter.

Adapters are imported only when chosen, so a deployment needs only its own store's client.
``memory://<name>`` opens the in-memory store on the process-wide log called ``<name>`` (the
rest of the URL, whatever it holds): the same name opens the same log anywhere in the process,
so an API and the test driving it share their events; nothing is kept after the process.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from eventstore.port import EventStore

POSTGRES_SCHEMES = frozenset({"postgresql", "postgres"})
KURRENT_SCHEMES = frozenset({"kurrentdb", "kurrentdb+discover", "esdb", "esdb+discover"})
DEFAULT_POSTGRES_SCHEMA = "agenthost"


def sqlite_path(url: str) -> str:
    """``sqlite:///relative.db`` -> ``relative.db``; ``sqlite:////abs.db`` -> ``/abs.db``."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise ValueError(
            f"expected sqlite:///relative/path or sqlite:////absolute/path, got {url!r}"
        )
    return url[len(prefix) :]


def memory_name(url: str) -> str:
    """``memory://tests`` -> ``tests``, the name of the in-process log."""
    prefix = "memory://"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise ValueError(f"expected memory://<name>, got {url!r}")
    return url[len(prefix) :]


def split_postgres_url(url: str, default_schema: str = DEFAULT_POSTGRES_SCHEMA) -> tuple[str, str]:
    """Take our ``schema`` query parameter out of a libpq URL (libpq would reject it)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((value for key, value in query if key == "schema"), default_schema)
    rest = urlencode([(key, value) for key, value in query if key != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema


async def open_event_store(url: str) -> EventStore:
    """The adapter for ``url``'s scheme: sqlite, postgresql/postgres, kurrentdb/esdb, memory."""
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        from eventstore.memory import InMemoryEventStore, named_log

        return await InMemoryEventStore.open(named_log(memory_name(url)))
    if scheme == "sqlite":
        from eventstore.sqlite import SQLiteEventStore

        return await SQLiteEventStore.open(sqlite_path(url))
    if scheme in POSTGRES_SCHEMES:
        from eventstore.postgres import PostgresEventStore

        dsn, schema = split_postgres_url(url)
        return await PostgresEventStore.open(dsn, schema=schema)
    if scheme in KURRENT_SCHEMES:
        from eventstore.kurrentdb import KurrentDBEventStore

        return await KurrentDBEventStore.open(url)
    raise ValueError(
        f"unsupported event store URL scheme {scheme!r} in {url!r}: use sqlite:///path.db, "
        "postgresql://..., kurrentdb://..., esdb://... (or their +discover forms) or memory://name"
    )
