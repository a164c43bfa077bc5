"""The legacy session stream: the agent's own stream, narrowed to one session and renamed."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from uuid import uuid4

from ray.exceptions import RayError
from sse_starlette import ServerSentEvent

from domain.session import Session
from eventstore.port import EventStoreError
from serve_app.backend import Backend
from serve_app.legacy.translation import (
    connected_event,
    ended_event,
    legacy_event_of,
    stream_failed_event,
)
from serve_app.streams import agent_events

log = logging.getLogger(__name__)


async def legacy_events(
    backend: Backend, agent_id: str, session: Session, after: int, *, viewer: str, since: int
) -> AsyncIterator[ServerSentEvent]:
    """``connected`` with the state at connect time, then the session's events after
    ``after`` under their legacy names (durable ones keep their log position as id), until
    the session ends; a session that had already ended gets its final event at once."""
    sid = session.session_id
    yield connected_event(session)
    if session.status.is_final:
        yield ended_event(session)
        return
    try:
        async for sse in agent_events(backend, agent_id, after, sid, viewer=viewer, since=since):
            legacy = legacy_event_of(sse, sid)
            if legacy is not None:
                yield legacy
    except (EventStoreError, RayError) as error:
        error_id = str(uuid4())
        log.warning(
            "legacy stream failed error_id=%s agent=%s session=%s: %s: %s",
            error_id,
            agent_id,
            sid,
            type(error).__name__,
            error,
        )
        yield stream_failed_event(sid, error_id)
