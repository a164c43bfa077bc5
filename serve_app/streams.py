"""The agent's live stream (SSE): durable events with their log position as the SSE id,
ephemeral ones (token deltas, tool progress) in between, heartbeats while idle.

A client that reconnects with ``Last-Event-ID`` (header, or ``?last_event_id=`` for
browsers' EventSource, which cannot set headers on the first connect) gets exactly the durable
events after that position, then live ones: positions are the store's global order, so there
is no gap and no repeat, whichever replica answers. The stream ends when the session that was
active at connect time ends (or at once, after the catch-up, if none was). ``?session_id=``
narrows it to one session's durable events: the web UI rebuilds a transcript from them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query
from sse_starlette import EventSourceResponse, ServerSentEvent

from application.use_cases import ReadCurrentSession, ReadLiveEvents
from domain.ids import stream_name
from eventstore.port import RecordedEvent
from serve_app.agents import PROBLEMS
from serve_app.backend import Backend
from serve_app.dependencies import (
    AgentId,
    BackendDep,
    PrincipalDep,
    ResumeAfter,
)

router = APIRouter(prefix="/api/agents", tags=["streams"], responses=PROBLEMS)
SSE_EXAMPLE = (
    "id: 57\nevent: agent.client.action.requested.v1\n"
    'data: {"specversion": "1.0", "type": "agent.client.action.requested.v1", ...}\n\n'
    'event: content_chunk\ndata: {"agent_id": "...", "kind": "content_chunk", '
    '"data": {"delta": "Let me "}}\n\n'
    ": ping\n\n"
)

SESSION_ENDED = frozenset({"agent.session.completed.v1", "agent.session.terminated.v1"})
USER_UNASSIGNED = "agent.user.unassigned.v1"
PUBLISHED_EXTENSIONS: frozenset[str] = frozenset()
"""Stored extension attributes a stream shows: none (request digests are the writer's)."""


@router.get(
    "/{agent_id}/stream",
    summary="Live events of the agent (SSE), resumable with Last-Event-ID",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {"example": SSE_EXAMPLE}}}},
)
async def stream(
    agent_id: AgentId,
    backend: BackendDep,
    who: PrincipalDep,
    resume: ResumeAfter,
    session_id: Annotated[
        str | None,
        Query(
            min_length=1,
            description="Only this session's events; ends after the catch-up if it is over.",
        ),
    ] = None,
) -> EventSourceResponse:
    # The head is read before access is checked: an unassign after it ends the stream.
    head = await backend.event_store.last_position()
    current = await backend.runtime.handle(ReadCurrentSession(agent_id=agent_id, caller=who.caller))
    after = min(resume or 0, head)  # a position past the head would hide every event after it
    active = current.session_id if current is not None else None
    live = active if session_id in (None, active) else None
    return EventSourceResponse(
        _reconnect_within(
            backend.api.sse_retry_ms,
            agent_events(
                backend, agent_id, after, live, only=session_id, viewer=who.user_id, since=head
            ),
        ),
        ping=backend.api.sse_heartbeat_s,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def agent_events(
    backend: Backend,
    agent_id: str,
    after: int,
    session_id: str | None,
    only: str | None = None,
    *,
    viewer: str,
    since: int,
) -> AsyncIterator[ServerSentEvent]:
    """Durable events after ``after`` (of session ``only``, if given) and live ephemeral ones
    of ``session_id``, until that session ends, or until ``viewer`` is unassigned from the
    agent after position ``since`` (where access was checked): a stream never outlives its
    viewer's access, whatever it was narrowed to."""
    stream = stream_name(agent_id)
    version = 0
    epoch, seen = "", 0
    while True:
        for recorded in await backend.event_store.read(stream, from_version=version + 1):
            version = recorded.version
            if recorded.position > since and _revokes(recorded, viewer):
                yield _durable(recorded)  # the viewer's own removal: why the stream ends
                return
            if recorded.position <= after or (
                only is not None and recorded.data.get("session_id") != only
            ):
                continue
            yield _durable(recorded)
            if _ends(recorded, session_id):
                return
        if session_id is None:
            return
        batch = await backend.runtime.handle(ReadLiveEvents(agent_id=agent_id, after=seen))
        if batch.epoch != epoch:
            connecting, epoch = not epoch, batch.epoch
            if connecting:  # what was streamed before we came is history: skip it
                seen = batch.events[-1][0] if batch.events else 0
                batch = batch.model_copy(update={"events": ()})
            else:  # the host restarted and numbers from 1 again
                batch = await backend.runtime.handle(ReadLiveEvents(agent_id=agent_id))
        for number, event in batch.events:
            seen = number
            if event.session_id == session_id:
                yield ServerSentEvent(data=json.dumps(asdict(event)), event=event.kind)
        await asyncio.sleep(backend.api.sse_poll_interval_s)


async def _reconnect_within(
    retry_ms: int, events: AsyncIterator[ServerSentEvent]
) -> AsyncIterator[ServerSentEvent]:
    """The stream, opened by a ``retry:`` field: a dropped client comes back that soon rather
    than after its own default (3 s in browsers), and then resumes with Last-Event-ID."""
    yield ServerSentEvent(retry=retry_ms)
    async for event in events:
        yield event


def _durable(recorded: RecordedEvent) -> ServerSentEvent:
    return ServerSentEvent(
        data=json.dumps(recorded.to_cloudevent(PUBLISHED_EXTENSIONS)),
        event=recorded.type,
        id=str(recorded.position),
    )


def _revokes(recorded: RecordedEvent, viewer: str) -> bool:
    return recorded.type == USER_UNASSIGNED and recorded.data.get("user_id") == viewer


def _ends(recorded: RecordedEvent, session_id: str | None) -> bool:
    return recorded.type in SESSION_ENDED and recorded.data.get("session_id") == session_id
