"""The legacy routes: each answers a legacy call by running the agent flow on the caller's
agent of the session's type, and reads the agent session back in the legacy shape."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from sse_starlette import EventSourceResponse

from application.replies import SessionReply
from application.use_cases import AnswerWidget, LocateSession, StartSessionOfType
from domain import commands
from domain.commands import TerminateSession
from domain.enums import AGENT_TYPE_OF_SESSION_TYPE, SessionStatus
from domain.errors import AgentNotFound
from domain.ids import agent_id_for
from domain.session import Session, SessionConfig
from projections.documents import SessionDocument
from serve_app.auth import Principal
from serve_app.backend import Backend
from serve_app.dependencies import BackendDep, PrincipalDep, ResumeAfter
from serve_app.idempotency import IdempotencyDep
from serve_app.legacy.middleware import PREFIX
from serve_app.legacy.schemas import (
    STREAM_EXAMPLE,
    LegacyAccepted,
    LegacyRespondRequest,
    LegacySession,
    LegacyStarted,
    LegacyStartRequest,
    LegacyState,
    LegacySummary,
    LegacyTerminated,
)
from serve_app.legacy.stream import legacy_events
from serve_app.legacy.translation import (
    detail_of,
    session_from_view,
    state_of,
    summary_of,
    terminated_reason_of,
)
from serve_app.limits import Identifier, Reason
from serve_app.problems import NotFound, Problem
from serve_app.read_your_writes import caught_up

SESSION_LIST_LIMIT = 200
"""The most sessions ``GET /api/session`` answers with (its docstring, in OpenAPI, says 200):
the legacy API never paged, so the bound is the one ``/api/agents/{id}/sessions`` has."""

PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "description": description}
    for code, description in (
        (401, "No valid bearer token"),
        (403, "Your role may read this session but not act on it"),
        (404, "No such session, or not yours: the same answer either way"),
        (409, "The session's state refuses this now (e.g. it has ended)"),
        (422, "Invalid input, or a session type no agent can run here (nothing was changed)"),
        (503, "A store, actor or LLM is unavailable: retry with the same Idempotency-Key"),
    )
}
router = APIRouter(
    prefix=PREFIX, tags=["legacy sessions (deprecated)"], deprecated=True, responses=PROBLEMS
)
SessionId = Annotated[Identifier, Path(description="The session's id.")]

# ---------------------------------------------------------------------- lookups


def session_not_found(session_id: str) -> NotFound:
    """The one 404 for a session, whether it is missing or belongs to someone else."""
    return NotFound(
        "Session not found", f"session {session_id} does not exist", code="session_not_found"
    )


@contextlib.contextmanager
def _answered_as_the_session(session_id: str) -> Iterator[None]:
    """An agent the caller may not see is, to a legacy client, a session that is not there."""
    try:
        yield
    except AgentNotFound:
        raise session_not_found(session_id) from None


async def _agent_of(backend: Backend, session_id: str) -> SessionDocument:
    """The read model's view of the session: it says which agent runs it (that never changes)."""
    view = await backend.read_model.get_session(session_id)
    if view is None:
        raise session_not_found(session_id)
    return view


async def _visible_session(
    backend: Backend, session_id: str, who: Principal
) -> tuple[str, Session]:
    """The session and its owner, if the caller may see it: the agent's activation says how
    it stands now (so a query right after a write sees it); a session the aggregate's history
    has dropped is read back from the read model."""
    view = await _agent_of(backend, session_id)
    with _answered_as_the_session(session_id):
        located = await backend.runtime.handle(
            LocateSession(agent_id=view.agent_id, caller=who.caller, session_id=session_id)
        )
    if located is None:
        raise session_not_found(session_id)
    return located.owner_user_id, located.session or session_from_view(view)


async def _session_after_drive(
    backend: Backend, reply: SessionReply, session_id: str, who: Principal
) -> Session:
    """The session where its drive left it (the drive reports only a still-active one)."""
    # Legacy clients never learnt log positions: a write answers once the read model shows
    # all it wrote (its drive included), so any query that follows sees it.
    await caught_up(backend, reply.position)
    if reply.session is not None and reply.session.session_id == session_id:
        return reply.session
    located = await backend.runtime.handle(
        LocateSession(agent_id=reply.result.agent_id, caller=who.caller, session_id=session_id)
    )
    if located is None or located.session is None:
        raise session_not_found(session_id)
    return located.session


# ---------------------------------------------------------------------- routes


# The old controller declared its collection routes with a trailing slash; both spellings are
# answered in place (a redirect would drop a POST's body on the way).
@router.post(
    "", summary="Start a session (deprecated: POST /api/agents/{id}/sessions)", status_code=201
)
@router.post("/", status_code=201, include_in_schema=False)
async def start(
    body: LegacyStartRequest,
    backend: BackendDep,
    who: PrincipalDep,
    idempotency: IdempotencyDep,
) -> LegacyStarted:
    config = body.config or SessionConfig()
    if body.model_id is not None:
        config = config.model_copy(update={"model_id": body.model_id})
    agent_id = agent_id_for(who.user_id, AGENT_TYPE_OF_SESSION_TYPE[body.session_type])
    request = StartSessionOfType.by(
        who.caller,
        body.session_type,
        system_prompt=body.system_prompt,
        config=config,
        command_id=idempotency.command_id(agent_id),  # the agent ``by`` starts it on
        request_fingerprint=idempotency.fingerprint,
    )
    reply = await backend.runtime.handle(request)
    session_id = commands.StartSession(
        command_id=request.command_id, agent_id=request.agent_id
    ).session_id
    session = await _session_after_drive(backend, reply, session_id, who)
    return LegacyStarted(
        session_id=session.session_id,
        conversation_id=session.conversation_id,
        status=session.status,
        control_mode=session.control_mode,
        stream_url=f"{PREFIX}/{session.session_id}/stream",
    )


@router.get("", summary="My sessions, newest first (deprecated: GET /api/agents)")
@router.get("/", include_in_schema=False)
async def list_sessions(
    backend: BackendDep,
    who: PrincipalDep,
    status: Annotated[
        SessionStatus | None, Query(description="Only sessions in this status.")
    ] = None,
) -> list[LegacySummary]:
    """At most 200 sessions, newest first (only those in ``status``, if given), of every agent
    the caller owns, archived ones included: a legacy session had one user, and archiving an
    agent does not erase what its user did. Agents the caller is only assigned to are left out.
    """
    # One read-model query over every agent of the owner, filtered and bounded in the store.
    views = await backend.read_model.list_sessions_of_owner(
        who.user_id, status=status, limit=SESSION_LIST_LIMIT
    )
    return [summary_of(session_from_view(view)) for view in views]


@router.get("/{session_id}", summary="One session in full")
async def get_session(
    session_id: SessionId, backend: BackendDep, who: PrincipalDep
) -> LegacySession:
    owner_user_id, session = await _visible_session(backend, session_id, who)
    return detail_of(session, owner_user_id)


@router.get("/{session_id}/state", summary="Status, pending widget and UI state, to reconnect")
async def get_state(session_id: SessionId, backend: BackendDep, who: PrincipalDep) -> LegacyState:
    _, session = await _visible_session(backend, session_id, who)
    return state_of(session)


@router.post(
    "/{session_id}/respond",
    summary="Answer the pending widget; the session then goes on to its next step",
)
async def respond(
    session_id: SessionId,
    body: LegacyRespondRequest,
    backend: BackendDep,
    who: PrincipalDep,
    idempotency: IdempotencyDep,
) -> LegacyAccepted:
    view = await _agent_of(backend, session_id)
    with _answered_as_the_session(session_id):
        reply = await backend.runtime.handle(
            AnswerWidget(
                agent_id=view.agent_id,
                caller=who.caller,
                session_id=session_id,
                tool_call_id=body.tool_call_id,
                response=body.response,
                response_time_ms=body.response_time_ms,
                command_id=idempotency.command_id(view.agent_id),
                request_fingerprint=idempotency.fingerprint,
            )
        )
    now = await _session_after_drive(backend, reply, session_id, who)
    return LegacyAccepted(
        session_id=session_id, status=now.status, pending_action=now.pending_action
    )


@router.delete("/{session_id}", summary="Terminate the session")
async def terminate(
    session_id: SessionId,
    backend: BackendDep,
    who: PrincipalDep,
    idempotency: IdempotencyDep,
    reason: Annotated[Reason, Query(description="Why it ends (one line).")] = "User terminated",
) -> LegacyTerminated:
    view = await _agent_of(backend, session_id)
    command = TerminateSession(
        agent_id=view.agent_id,
        caller=who.caller,
        session_id=session_id,
        reason=reason,
        command_id=idempotency.command_id(view.agent_id),
        request_fingerprint=idempotency.fingerprint,
    )
    with _answered_as_the_session(session_id):
        result = await backend.runtime.handle(command)
    await caught_up(backend, result.position)
    ended = result.session
    if ended is None:  # the command answers with the session it named
        raise session_not_found(session_id)
    return LegacyTerminated(
        session_id=session_id, status=ended.status, terminated_reason=terminated_reason_of(ended)
    )


@router.get(
    "/{session_id}/stream",
    summary="Live events of the session (SSE, legacy event names), resumable with Last-Event-ID",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {"example": STREAM_EXAMPLE}}}},
)
async def stream(
    session_id: SessionId,
    backend: BackendDep,
    who: PrincipalDep,
    after: ResumeAfter,
) -> EventSourceResponse:
    # The head is read before the state, so nothing after the state escapes the stream; a
    # position past the head would hide every event after it.
    head = await backend.event_store.last_position()
    start = head if after is None else min(after, head)
    view = await _agent_of(backend, session_id)
    _, session = await _visible_session(backend, session_id, who)
    return EventSourceResponse(
        legacy_events(backend, view.agent_id, session, start, viewer=who.user_id, since=head),
        ping=backend.api.sse_heartbeat_s,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
