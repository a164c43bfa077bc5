"""The read-model port: what the projector writes and what queries read, whatever the store.

Every adapter keeps the checkpoint (the global position the documents reflect) with the
documents, so a projector restarted after a crash resumes where the documents are and never
applies an event twice. Listing order is newest first with the id as tie-breaker, so every
adapter returns the same order.
"""

from __future__ import annotations

import abc
import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from domain.enums import SessionStatus
from projections.documents import AgentDocument, SessionDocument

DEFAULT_SESSION_LIMIT = 50
WAIT_POLL_INTERVAL_S = 0.02
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class ReadModelUnavailable(Exception):
    """The read model did not answer (connection lost, server down, timeout, store closed):
    transient, so the projector retries from its checkpoint and a query answers 503."""


class DocumentRefused(Exception):
    """The store cannot hold what a batch's documents contain (a NUL character in PostgreSQL
    text, a key MongoDB refuses, a string UTF-8 cannot encode, a document over a size limit):
    the same data fails the same way every time, so retrying the batch cannot help."""


class ReadModelStore(abc.ABC):
    """Adapters raise ``ReadModelUnavailable`` for connection-level failures and, from
    ``apply``, ``DocumentRefused`` for data they cannot hold, never a driver's own error for
    either, so callers can tell an outage from a poison event."""

    @abc.abstractmethod
    async def apply(
        self, position: int, agents: Sequence[AgentDocument], sessions: Sequence[SessionDocument]
    ) -> bool:
        """Upsert the documents and advance the checkpoint to ``position``, atomically.

        A batch at or below the stored checkpoint is a no-op (returns False): a projector
        that re-reads events it had already applied cannot apply them twice. A refused batch
        (``DocumentRefused``) leaves the checkpoint where it was.
        """

    @abc.abstractmethod
    async def checkpoint(self) -> int:
        """Global position of the last event the documents reflect (0 when empty)."""

    @abc.abstractmethod
    async def get_agent(self, agent_id: str) -> AgentDocument | None: ...

    @abc.abstractmethod
    async def list_agents(
        self, user_id: str, *, include_archived: bool = False, agent_type: str | None = None
    ) -> list[AgentDocument]:
        """Agents the user owns or is assigned to, newest (``created_at``) first."""

    @abc.abstractmethod
    async def agents_with_active_session(
        self, *, after_id: str = "", limit: int = DEFAULT_SESSION_LIMIT
    ) -> list[AgentDocument]:
        """Agents that have an active session, by id, for sweeps that page with ``after_id``."""

    @abc.abstractmethod
    async def get_session(self, session_id: str) -> SessionDocument | None: ...

    @abc.abstractmethod
    async def list_sessions(
        self, agent_id: str, *, limit: int = DEFAULT_SESSION_LIMIT, before: datetime | None = None
    ) -> list[SessionDocument]:
        """The agent's sessions (ended and active), newest first; ``before`` pages by start."""

    @abc.abstractmethod
    async def list_sessions_of_owner(
        self,
        owner_user_id: str,
        *,
        status: SessionStatus | None = None,
        limit: int = DEFAULT_SESSION_LIMIT,
    ) -> list[SessionDocument]:
        """Sessions of every agent ``owner_user_id`` owns (archived agents' too, but not of
        agents the user is only assigned to), newest first, in ``status`` if given: one query
        where listing the agents and then each agent's sessions would take one per agent."""

    @abc.abstractmethod
    async def reset(self) -> None:
        """Drop every document and the checkpoint, for a rebuild from the log."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    async def wait_for_position(
        self,
        position: int,
        timeout: float,  # noqa: ASYNC109 - a bound the answer reports (False), not an error
        *,
        poll_interval: float = WAIT_POLL_INTERVAL_S,
    ) -> bool:
        """Read-your-writes: True once the checkpoint reaches ``position``, False on timeout."""
        deadline = time.monotonic() + timeout
        while await self.checkpoint() < position:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            await asyncio.sleep(min(poll_interval, remaining))
        return True


def epoch_us(moment: datetime) -> int:
    """Sort key for time columns: exact (microseconds) and independent of the UTC offset."""
    if moment.tzinfo is None:
        raise ValueError("read-model times must be timezone-aware")
    return (moment - _EPOCH) // _MICROSECOND


def check_limit(limit: int) -> None:
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
