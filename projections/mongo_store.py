"""MongoDB read model via pymongo's asyncio client (``AsyncMongoClient``).

A plain ``mongod`` has no multi-document transactions, so batches are made safe to redo
instead (per-document positions, conditional writes, checkpoint last); how, and what readers
may see: docs/stores.md#mongodb-read-model.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

import bson
from bson.errors import BSONError
from pymongo import AsyncMongoClient
from pymongo.errors import (
    ConnectionFailure,
    DocumentTooLarge,
    DuplicateKeyError,
    ExecutionTimeout,
    InvalidOperation,
    WriteConcernError,
    WriteError,
)

from domain.enums import SessionStatus
from projections.documents import AgentDocument, ReadModel, SessionDocument
from projections.store import (
    DEFAULT_SESSION_LIMIT,
    DocumentRefused,
    ReadModelStore,
    ReadModelUnavailable,
    check_limit,
    epoch_us,
)

DEFAULT_DATABASE = "agenthost"
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024  # MongoDB's limit on one stored document
CHECKPOINT_ID = "projector"
_SORT_KEY = "sort_key_us"  # created_at / started_at in microseconds: exact, offset-free
_HIDDEN = {"_id": 0, _SORT_KEY: 0}  # storage-only fields, not part of the documents
_NEWEST_FIRST = [(_SORT_KEY, -1), ("_id", -1)]


class MongoCursor(Protocol):
    async def to_list(self, length: int | None = None) -> list[dict[str, Any]]: ...


class MongoCollection(Protocol):
    def find(self, *args: Any, **kwargs: Any) -> MongoCursor: ...

    async def find_one(
        self, filter: Any | None = None, *args: Any, **kwargs: Any
    ) -> dict[str, Any] | None: ...

    async def replace_one(
        self, filter: Mapping[str, Any], replacement: Mapping[str, Any], upsert: bool = False
    ) -> Any: ...

    async def update_one(
        self, filter: Mapping[str, Any], update: Mapping[str, Any], upsert: bool = False
    ) -> Any: ...

    async def delete_many(self, filter: Mapping[str, Any]) -> Any: ...

    async def create_index(self, keys: Any, **kwargs: Any) -> str: ...


class MongoDatabase(Protocol):
    def __getitem__(self, name: str) -> MongoCollection: ...


class MongoReadModel(ReadModelStore):
    def __init__(
        self, database: MongoDatabase, client: AsyncMongoClient[dict[str, Any]] | None = None
    ) -> None:
        self._agents = database["agents"]
        self._sessions = database["sessions"]
        self._checkpoints = database["checkpoints"]
        self._client = client

    @classmethod
    async def open(cls, url: str) -> MongoReadModel:
        """Connect to the database named in the URL path (``agenthost`` when it names none)."""
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url)
        try:
            return await cls.attach(client.get_default_database(DEFAULT_DATABASE), client)
        except BaseException:
            await client.close()
            raise

    @classmethod
    async def attach(
        cls, database: MongoDatabase, client: AsyncMongoClient[dict[str, Any]] | None = None
    ) -> MongoReadModel:
        """Use ``database`` (creating the indexes); ``close`` closes ``client`` if given."""
        store = cls(database, client)
        await store._agents.create_index(
            [("member_user_ids", 1), *_NEWEST_FIRST], name="by_member_newest"
        )
        await store._sessions.create_index(
            [("agent_id", 1), *_NEWEST_FIRST], name="by_agent_newest"
        )
        await store._sessions.create_index(
            [("owner_user_id", 1), *_NEWEST_FIRST], name="by_owner_newest"
        )
        return store

    async def apply(
        self, position: int, agents: Sequence[AgentDocument], sessions: Sequence[SessionDocument]
    ) -> bool:
        if position <= await self.checkpoint():
            return False
        with _guarded(refusing=True):
            for agent in agents:
                await _put(self._agents, _body(agent.id, agent, epoch_us(agent.created_at)))
            for session in sessions:
                started = epoch_us(session.started_at)
                await _put(self._sessions, _body(session.session_id, session, started))
            await self._checkpoints.update_one(
                {"_id": CHECKPOINT_ID}, {"$max": {"position": position}}, upsert=True
            )
        return True

    async def checkpoint(self) -> int:
        with _guarded(refusing=False):
            stored = await self._checkpoints.find_one({"_id": CHECKPOINT_ID})
        return int(stored["position"]) if stored is not None else 0

    async def get_agent(self, agent_id: str) -> AgentDocument | None:
        with _guarded(refusing=False):
            stored = await self._agents.find_one({"_id": agent_id}, _HIDDEN)
        return AgentDocument.model_validate(stored) if stored is not None else None

    async def list_agents(
        self, user_id: str, *, include_archived: bool = False, agent_type: str | None = None
    ) -> list[AgentDocument]:
        query: dict[str, Any] = {"member_user_ids": user_id}
        if not include_archived:
            query["status"] = {"$ne": "archived"}
        if agent_type is not None:
            query["agent_type"] = agent_type
        with _guarded(refusing=False):
            found = await self._agents.find(query, _HIDDEN, sort=_NEWEST_FIRST).to_list()
        return [AgentDocument.model_validate(stored) for stored in found]

    async def agents_with_active_session(
        self, *, after_id: str = "", limit: int = DEFAULT_SESSION_LIMIT
    ) -> list[AgentDocument]:
        check_limit(limit)
        query = {"has_active_session": True, "_id": {"$gt": after_id}}
        with _guarded(refusing=False):
            found = await self._agents.find(
                query, _HIDDEN, sort=[("_id", 1)], limit=limit
            ).to_list()
        return [AgentDocument.model_validate(stored) for stored in found]

    async def get_session(self, session_id: str) -> SessionDocument | None:
        with _guarded(refusing=False):
            stored = await self._sessions.find_one({"_id": session_id}, _HIDDEN)
        return SessionDocument.model_validate(stored) if stored is not None else None

    async def list_sessions(
        self, agent_id: str, *, limit: int = DEFAULT_SESSION_LIMIT, before: datetime | None = None
    ) -> list[SessionDocument]:
        check_limit(limit)
        query: dict[str, Any] = {"agent_id": agent_id}
        if before is not None:
            query[_SORT_KEY] = {"$lt": epoch_us(before)}
        return await self._find_sessions(query, limit)

    async def list_sessions_of_owner(
        self,
        owner_user_id: str,
        *,
        status: SessionStatus | None = None,
        limit: int = DEFAULT_SESSION_LIMIT,
    ) -> list[SessionDocument]:
        check_limit(limit)
        query: dict[str, Any] = {"owner_user_id": owner_user_id}
        if status is not None:
            query["status"] = status.value
        return await self._find_sessions(query, limit)

    async def _find_sessions(self, query: dict[str, Any], limit: int) -> list[SessionDocument]:
        with _guarded(refusing=False):
            found = await self._sessions.find(
                query, _HIDDEN, sort=_NEWEST_FIRST, limit=limit
            ).to_list()
        return [SessionDocument.model_validate(stored) for stored in found]

    async def reset(self) -> None:
        # Checkpoint first: documents a crash leaves behind are skipped by position on rebuild.
        with _guarded(refusing=False):
            await self._checkpoints.delete_many({})
            await self._agents.delete_many({})
            await self._sessions.delete_many({})

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()


@contextlib.contextmanager
def _guarded(*, refusing: bool) -> Iterator[None]:
    """pymongo's failures in the port's terms. Writing (``refusing``), what MongoDB cannot
    hold is DocumentRefused: a key with a NUL character, a string UTF-8 cannot encode, a
    document over the 16 MiB limit (all BSON errors), a naive time, or a write the server
    refuses for the document. A lost connection, no server to select, a timeout, a write
    concern not met, a closed client is ReadModelUnavailable. Anything else is left as is."""
    try:
        yield
    except (BSONError, WriteError, ValueError) as error:
        if not refusing:
            raise
        raise DocumentRefused(f"MongoDB refused the batch: {type(error).__name__}") from error
    except (ConnectionFailure, ExecutionTimeout, WriteConcernError, InvalidOperation) as error:
        raise ReadModelUnavailable(f"MongoDB failed: {type(error).__name__}") from error


def _body(key: str, document: ReadModel, sort_key: int) -> dict[str, Any]:
    """What is stored for ``document``, once BSON can hold it (InvalidDocument, a
    UnicodeEncodeError or DocumentTooLarge otherwise): checked before it is sent, so a refused
    document is never half-written (mongomock, unlike a real client, would store its ``_id``)."""
    body = {"_id": key, **document.model_dump(mode="json"), _SORT_KEY: sort_key}
    if len(bson.encode(body)) > MAX_DOCUMENT_BYTES:
        raise DocumentTooLarge(f"a {type(document).__name__} over {MAX_DOCUMENT_BYTES} bytes")
    return body


async def _put(collection: MongoCollection, body: dict[str, Any]) -> None:
    """Replace the stored document only if it is older (by ``position``) than ``body``."""
    older = {"_id": body["_id"], "position": {"$lt": body["position"]}}
    try:
        await collection.replace_one(older, body, upsert=True)
    except DuplicateKeyError:
        # No older document matched, and the upsert's insert found the key taken: either a
        # newer document is stored (nothing to do), or a concurrent writer inserted an older
        # one in between, which the retry without upsert then replaces.
        await collection.replace_one(older, body)
