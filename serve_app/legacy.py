"""The deprecated legacy Session API under /api/session, answered by the agent flow.

Clients written against the old ``Session`` aggregate (``/work/shared/legacy-sessions.md``)
keep working while they move to ``/api/agents``: there is no second model behind these
routes. A legacy session *is* an agent session (the same ``session_id``), run by the caller's
agent of the type its session type maps to, got or created on first use:

| session_type | agent type | why |
|---|---|---|
| thought | thought | the same purpose |
| learning | tutor | teaches, grades answers |
| validation, survey | evaluator | both ask a fixed set of questions and record the answers |
| workflow, approval | planner | both step through a process towards a decision |

Planner agents have no default template, so with no LLM configured a workflow or approval
session is refused (422 ``invalid_command``) unless its config names a ``template_id``.
Because one agent runs one session at a time, a second active session of a type that maps to
the same agent (e.g. validation then survey) is a 409, whatever ``allow_concurrent_sessions``
says. Every answer carries ``Deprecation``, ``Sunset`` and a successor ``Link``
(docs/legacy-api.md has the whole story).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from pydantic import BaseModel, ConfigDict, Field, JsonValue
from ray.exceptions import RayError
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from actors.agent_host import Drive
from domain.commands import GetOrCreateAgent, StartSession, TerminateSession
from domain.enums import (
    AGENT_TYPE_OF_SESSION_TYPE,
    ControlMode,
    SessionStatus,
    SessionType,
)
from domain.errors import SessionMismatch
from domain.session import ClientAction, ClientResponse, Session, SessionConfig, SessionItem
from domain.state import AgentState
from eventstore.port import EventStoreError
from projections.documents import SessionView
from serve_app.access import actionable, may_see
from serve_app.agents import IdempotencyKey, PrincipalDep, ServicesDep, caught_up
from serve_app.auth import Principal
from serve_app.problems import NotFound, Problem
from serve_app.services import Services
from serve_app.streams import agent_events

PREFIX = "/api/session"

DEPRECATED_SINCE = datetime(2026, 11, 25, tzinfo=UTC)
"""The day /api/agents replaced this API."""
SUNSET_AT = datetime(2027, 6, 1, tzinfo=UTC)
"""About six months later, these routes go away."""
SUCCESSOR = "/api/agents"
DEPRECATION_HEADERS: Mapping[str, str] = {
    "Deprecation": f"@{int(DEPRECATED_SINCE.timestamp())}",  # RFC 9745
    "Sunset": format_datetime(SUNSET_AT, usegmt=True),  # RFC 8594
    "Link": f'<{SUCCESSOR}>; rel="successor-version"',
}
_RAW_HEADERS = [(k.lower().encode(), v.encode()) for k, v in DEPRECATION_HEADERS.items()]

_SESSION_ENDED_EVENT = {
    SessionStatus.COMPLETED: "session_completed",
    SessionStatus.TERMINATED: "session_terminated",
    SessionStatus.EXPIRED: "session_expired",
}


class DeprecationHeaders:
    """Adds the deprecation headers to every answer under the legacy prefix, errors included:
    problem answers are rendered by the app's exception handlers, and unknown sub-paths, 405s
    and 413s are answered before any route runs, so no route or dependency could add them.
    Pure ASGI, so SSE passes through unbuffered.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path != PREFIX and not path.startswith(PREFIX + "/"):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *_RAW_HEADERS]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


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

_SID = "fd34ef7c-5e2d-5b93-9e3e-6909d36fd74a"
_STARTED_AT = "2026-11-25T16:10:00Z"
_PENDING_EXAMPLE: dict[str, JsonValue] = {
    "tool_call_id": "divide-144-by-12",
    "tool_name": "request_free_text",
    "widget_type": "free_text",
    "props": {"prompt": "What is 144 ÷ 12?", "placeholder": "a number"},
    "lock_input": True,
}
_ITEMS_EXAMPLE: list[JsonValue] = [
    {
        "item_id": "times-7x8",
        "sequence": 1,
        "agent_prompt": "What is 7 times 8?",
        "client_action": {
            "tool_call_id": "times-7x8",
            "tool_name": "present_choices",
            "widget_type": "multiple_choice",
            "props": {"prompt": "What is 7 times 8?", "options": ["54", "56", "63", "64"]},
            "lock_input": True,
        },
        "started_at": _STARTED_AT,
        "user_response": {"selection": "56", "index": 1},
        "response_time_ms": 3200.0,
        "evaluation": {"correct": True, "points": 1},
        "completed_at": "2026-11-25T16:10:04Z",
    },
    {
        "item_id": "divide-144-by-12",
        "sequence": 2,
        "agent_prompt": "What is 144 ÷ 12?",
        "client_action": _PENDING_EXAMPLE,
        "started_at": "2026-11-25T16:10:04Z",
    },
]
_UI_EXAMPLE: dict[str, JsonValue] = {"input_locked": True, "current_item_id": "divide-144-by-12"}
_SSE_EXAMPLE = (
    'event: connected\ndata: {"session_id": "...", "status": "awaiting_client_action", ...}\n\n'
    'event: content_chunk\ndata: {"session_id": "...", "delta": "Let me "}\n\n'
    'id: 57\nevent: client_action\ndata: {"session_id": "...", "tool_call_id": ...}\n\n'
    'id: 58\nevent: run_suspended\ndata: {"session_id": "...", "tool_call_id": ...}\n\n'
    ": ping\n\n"
)


# ---------------------------------------------------------------------- shapes


class LegacyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LegacyStartRequest(LegacyRequest):
    session_type: SessionType
    system_prompt: str | None = Field(default=None, max_length=20_000)
    config: SessionConfig | None = Field(
        default=None,
        description="The legacy SessionConfig; template_id (an addition) picks a template.",
    )
    model_id: str | None = Field(default=None, description="Overrides config.model_id.")

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"session_type": "learning", "config": {"max_items": 4}}]},
    )


class LegacyRespondRequest(LegacyRequest):
    tool_call_id: str = Field(min_length=1)
    response: JsonValue
    response_time_ms: float | None = Field(default=None, ge=0)


class LegacyStarted(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "session_id": _SID,
                    "conversation_id": "917fa823-08fa-5130-8c7c-a34e766c6dbb",
                    "status": "awaiting_client_action",
                    "control_mode": "proactive",
                    "stream_url": f"{PREFIX}/{_SID}/stream",
                }
            ]
        }
    )

    session_id: str
    conversation_id: str
    status: SessionStatus
    control_mode: ControlMode
    stream_url: str


class LegacySummary(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": _SID,
                    "session_type": "learning",
                    "control_mode": "proactive",
                    "status": "completed",
                    "items_completed": 8,
                    "created_at": _STARTED_AT,
                    "started_at": _STARTED_AT,
                    "completed_at": "2026-11-25T16:14:30Z",
                }
            ]
        }
    )

    id: str
    session_type: SessionType
    control_mode: ControlMode
    status: SessionStatus
    items_completed: int
    created_at: datetime
    started_at: datetime
    completed_at: datetime | None


class LegacyUiState(BaseModel):
    """What a reconnecting client needs to restore its input area."""

    input_locked: bool
    current_item_id: str | None


class LegacySession(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": _SID,
                    "user_id": "alice",
                    "conversation_id": "917fa823-08fa-5130-8c7c-a34e766c6dbb",
                    "session_type": "learning",
                    "control_mode": "proactive",
                    "status": "awaiting_client_action",
                    "system_prompt": None,
                    "config": {"template_id": "arithmetic-basics"},
                    "current_item_id": "divide-144-by-12",
                    "items": _ITEMS_EXAMPLE,
                    "ui_state": _UI_EXAMPLE,
                    "pending_action": _PENDING_EXAMPLE,
                    "created_at": _STARTED_AT,
                    "started_at": _STARTED_AT,
                    "completed_at": None,
                    "terminated_reason": None,
                }
            ]
        }
    )

    id: str
    user_id: str
    conversation_id: str
    session_type: SessionType
    control_mode: ControlMode
    status: SessionStatus
    system_prompt: str | None
    config: SessionConfig
    current_item_id: str | None
    items: tuple[SessionItem, ...]
    ui_state: LegacyUiState
    pending_action: ClientAction | None
    created_at: datetime
    started_at: datetime
    completed_at: datetime | None
    terminated_reason: str | None


class LegacyState(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "awaiting_client_action",
                    "pending_action": _PENDING_EXAMPLE,
                    "current_item": _ITEMS_EXAMPLE[-1],
                    "ui_state": _UI_EXAMPLE,
                }
            ]
        }
    )

    status: SessionStatus
    pending_action: ClientAction | None
    current_item: SessionItem | None
    ui_state: LegacyUiState


class LegacyAccepted(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "accepted": True,
                    "session_id": _SID,
                    "status": "awaiting_client_action",
                    "pending_action": _PENDING_EXAMPLE,
                }
            ]
        }
    )

    accepted: bool = True
    session_id: str
    status: SessionStatus
    pending_action: ClientAction | None = Field(description="The next widget, if any.")


class LegacyTerminated(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "session_id": _SID,
                    "status": "terminated",
                    "terminated_reason": "User terminated",
                }
            ]
        }
    )

    session_id: str
    status: SessionStatus
    terminated_reason: str | None


def _ui_state(session: Session) -> LegacyUiState:
    item = session.current_item
    pending = session.pending_action
    return LegacyUiState(
        input_locked=pending is not None and pending.lock_input,
        current_item_id=item.item_id if item is not None else None,
    )


def _state_of(session: Session) -> LegacyState:
    return LegacyState(
        status=session.status,
        pending_action=session.pending_action,
        current_item=session.current_item,
        ui_state=_ui_state(session),
    )


def _summary_of(session: Session) -> LegacySummary:
    return LegacySummary(
        id=session.session_id,
        session_type=session.session_type,
        control_mode=session.control_mode,
        status=session.status,
        items_completed=session.items_completed,
        created_at=session.started_at,  # agent sessions start as they are created
        started_at=session.started_at,
        completed_at=session.ended_at,
    )


def _terminated_reason(session: Session) -> str | None:
    ended_early = session.status in (SessionStatus.TERMINATED, SessionStatus.EXPIRED)
    return session.end_reason if ended_early else None


def _detail_of(session: Session, user_id: str) -> LegacySession:
    item = session.current_item
    return LegacySession(
        id=session.session_id,
        user_id=user_id,
        conversation_id=session.conversation_id,
        session_type=session.session_type,
        control_mode=session.control_mode,
        status=session.status,
        system_prompt=session.system_prompt,
        config=session.config,
        current_item_id=item.item_id if item is not None else None,
        items=session.items,
        ui_state=_ui_state(session),
        pending_action=session.pending_action,
        created_at=session.started_at,
        started_at=session.started_at,
        completed_at=session.ended_at,
        terminated_reason=_terminated_reason(session),
    )


# ---------------------------------------------------------------------- lookups


def session_not_found(session_id: str) -> NotFound:
    """The one 404 for a session, whether it is missing or belongs to someone else."""
    return NotFound(
        "Session not found", f"session {session_id} does not exist", code="session_not_found"
    )


def _find(state: AgentState, session_id: str) -> Session | None:
    active = state.active_session
    if active is not None and active.session_id == session_id:
        return active
    return next((s for s in state.session_history if s.session_id == session_id), None)


async def _session(svc: Services, session_id: str, who: Principal) -> tuple[AgentState, Session]:
    """The session and its agent, if the caller may see it: the read model says which agent
    runs it (that never changes), the agent's activation says how it stands now (so a query
    right after a write sees it); a session the aggregate's history has dropped is read back
    from the read model."""
    view = await svc.read_model.get_session(session_id)
    state = await svc.runtime.agent_state(view.agent_id) if view is not None else None
    if view is None or state is None or not may_see(state, who):
        raise session_not_found(session_id)
    return state, _find(state, session_id) or _from_view(view)


def _from_view(view: SessionView) -> Session:
    return Session.model_validate(view.model_dump(include=set(Session.model_fields)))


async def _rested(svc: Services, drive: Drive, session_id: str) -> Session:
    """The session where its drive left it (the drive reports only a still-active one)."""
    # Legacy clients never learnt log positions: a write answers once the read model shows
    # all it wrote (its drive included), so any query that follows sees it.
    await caught_up(svc, drive.position)
    if drive.session is not None and drive.session.session_id == session_id:
        return drive.session
    return await _current(svc, drive.result.agent_id, session_id)


async def _current(svc: Services, agent_id: str, session_id: str) -> Session:
    state = await svc.runtime.agent_state(agent_id)
    found = _find(state, session_id) if state is not None else None
    if found is None:
        raise session_not_found(session_id)
    return found


# ---------------------------------------------------------------------- routes


@router.post(
    "", summary="Start a session (deprecated: POST /api/agents/{id}/sessions)", status_code=201
)
async def start(
    body: LegacyStartRequest,
    svc: ServicesDep,
    who: PrincipalDep,
    idempotency_key: IdempotencyKey = None,
) -> LegacyStarted:
    agent = await svc.runtime.execute(
        GetOrCreateAgent.for_user(who.user_id, AGENT_TYPE_OF_SESSION_TYPE[body.session_type])
    )
    config = body.config or SessionConfig()
    if body.model_id is not None:
        config = config.model_copy(update={"model_id": body.model_id})
    command = StartSession(
        agent_id=agent.agent_id,
        session_type=body.session_type,
        system_prompt=body.system_prompt,
        config=config,
        **({"command_id": idempotency_key} if idempotency_key is not None else {}),
    )
    session = await _rested(svc, await svc.runtime.start_and_drive(command), command.session_id)
    return LegacyStarted(
        session_id=session.session_id,
        conversation_id=session.conversation_id,
        status=session.status,
        control_mode=session.control_mode,
        stream_url=f"{PREFIX}/{session.session_id}/stream",
    )


@router.get("", summary="My sessions, newest first (deprecated: GET /api/agents)")
async def list_sessions(
    svc: ServicesDep,
    who: PrincipalDep,
    status: Annotated[
        SessionStatus | None, Query(description="Only sessions in this status.")
    ] = None,
) -> list[LegacySummary]:
    """Sessions of the agents the caller owns (a legacy session had one user), archived ones
    included: archiving an agent does not erase what its user did."""
    agents = await svc.read_model.list_agents(who.user_id, include_archived=True)
    views = [
        view
        for agent in agents
        if agent.owner_user_id == who.user_id
        for view in await svc.read_model.list_sessions(agent.id, limit=200)
        if status is None or view.status == status
    ]
    views.sort(key=lambda view: (view.started_at, view.session_id), reverse=True)
    return [_summary_of(_from_view(view)) for view in views]


@router.get("/{session_id}", summary="One session in full")
async def get_session(session_id: str, svc: ServicesDep, who: PrincipalDep) -> LegacySession:
    state, session = await _session(svc, session_id, who)
    return _detail_of(session, state.owner_user_id)


@router.get("/{session_id}/state", summary="Status, pending widget and UI state, to reconnect")
async def get_state(session_id: str, svc: ServicesDep, who: PrincipalDep) -> LegacyState:
    _, session = await _session(svc, session_id, who)
    return _state_of(session)


@router.post(
    "/{session_id}/respond",
    summary="Answer the pending widget; the session then goes on to its next step",
)
async def respond(
    session_id: str,
    body: LegacyRespondRequest,
    svc: ServicesDep,
    who: PrincipalDep,
    idempotency_key: IdempotencyKey = None,
) -> LegacyAccepted:
    state, session = await _session(svc, session_id, who)
    actionable(state, state.id, who)
    if session.status.is_final:
        raise SessionMismatch(f"session {session_id} has ended ({session.status.value})")
    answer = ClientResponse(
        tool_call_id=body.tool_call_id,
        response=body.response,
        response_time_ms=body.response_time_ms,
    )
    drive = await svc.runtime.respond_and_drive(state.id, answer, idempotency_key)
    now = await _rested(svc, drive, session_id)
    return LegacyAccepted(
        session_id=session_id, status=now.status, pending_action=now.pending_action
    )


@router.delete("/{session_id}", summary="Terminate the session")
async def terminate(
    session_id: str,
    svc: ServicesDep,
    who: PrincipalDep,
    reason: Annotated[str, Query(min_length=1, max_length=500)] = "User terminated",
    idempotency_key: IdempotencyKey = None,
) -> LegacyTerminated:
    state, _ = await _session(svc, session_id, who)
    actionable(state, state.id, who)
    command = TerminateSession(
        agent_id=state.id,
        session_id=session_id,
        reason=reason,
        **({"command_id": idempotency_key} if idempotency_key is not None else {}),
    )
    result = await svc.runtime.execute(command)
    await caught_up(svc, result.position)
    ended = result.session
    if ended is None:  # the command answers with the session it named
        raise session_not_found(session_id)
    return LegacyTerminated(
        session_id=session_id, status=ended.status, terminated_reason=_terminated_reason(ended)
    )


@router.get(
    "/{session_id}/stream",
    summary="Live events of the session (SSE, legacy event names), resumable with Last-Event-ID",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {"example": _SSE_EXAMPLE}}}},
)
async def stream(
    session_id: str,
    svc: ServicesDep,
    who: PrincipalDep,
    last_event_id_header: Annotated[int | None, Header(alias="Last-Event-ID", ge=0)] = None,
    last_event_id: Annotated[int | None, Query(ge=0)] = None,
) -> EventSourceResponse:
    after = last_event_id_header if last_event_id_header is not None else last_event_id
    # The head is read before the state, so nothing after the state escapes the stream.
    head = await svc.event_store.last_position() if after is None else after
    state, session = await _session(svc, session_id, who)
    return EventSourceResponse(
        legacy_events(svc, state.id, session, head),
        ping=svc.api.sse_heartbeat_s,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


# ---------------------------------------------------------------------- the legacy stream


async def legacy_events(
    svc: Services, agent_id: str, session: Session, after: int
) -> AsyncIterator[ServerSentEvent]:
    """``connected`` with the state at connect time, then the session's events after
    ``after`` under their legacy names (durable ones keep their log position as id), until
    the session ends; a session that had already ended gets its final event at once."""
    sid = session.session_id
    yield _event("connected", {"session_id": sid, **_state_of(session).model_dump(mode="json")})
    if session.status.is_final:
        yield _event(_SESSION_ENDED_EVENT[session.status], _ending(session))
        return
    try:
        async for sse in agent_events(svc, agent_id, after, sid):
            legacy = _legacy_ephemeral(sse, sid) if sse.id is None else _legacy_durable(sse, sid)
            if legacy is not None:
                yield legacy
    except (EventStoreError, RayError) as error:
        yield _event("error", {"session_id": sid, "code": "stream_failed", "detail": str(error)})


def _event(name: str, data: Mapping[str, Any], position: str | None = None) -> ServerSentEvent:
    return ServerSentEvent(data=json.dumps(data), event=name, id=position)


def _ending(session: Session) -> dict[str, Any]:
    return {
        "session_id": session.session_id,
        "status": session.status.value,
        "reason": session.end_reason,
        "summary": session.summary,
    }


def _legacy_ephemeral(sse: ServerSentEvent, session_id: str) -> ServerSentEvent:
    """Token deltas and tool progress: their kinds are the legacy names already."""
    event = json.loads(str(sse.data))
    return _event(str(sse.event), {"session_id": session_id, **event["data"]})


def _legacy_durable(sse: ServerSentEvent, session_id: str) -> ServerSentEvent | None:
    """A stored agent event (a CloudEvent) under its legacy name; None for what the legacy
    stream never showed (other sessions, agent bookkeeping, answers the client sent itself)."""
    cloud = json.loads(str(sse.data))
    data: dict[str, Any] = cloud["data"]
    if data.get("session_id") != session_id:
        return None
    base = {"session_id": session_id}
    match cloud["type"]:
        case "agent.client.action.requested.v1":
            return _event(
                "client_action", {**base, "item_id": data["item_id"], **data["action"]}, sse.id
            )
        case "agent.execution.suspended.v1":
            pending = data["execution_state"].get("pending_tool_call") or {}
            payload = {
                **base,
                "tool_call_id": pending.get("call_id"),
                "tool_name": pending.get("tool_name"),
            }
            return _event("run_suspended", payload, sse.id)
        case "agent.session.messages.recorded.v1":
            calls = [call for message in data["messages"] for call in message.get("tool_calls", ())]
            return (
                _event("tool_calls_detected", {**base, "tool_calls": calls}, sse.id)
                if calls
                else None
            )
        case "agent.session.completed.v1":
            payload = {
                **base,
                "status": "completed",
                "reason": data["reason"],
                "summary": data.get("summary"),
            }
            return _event("session_completed", payload, sse.id)
        case "agent.session.terminated.v1":
            final = SessionStatus(data.get("final_status", "terminated"))
            payload = {**base, "status": final.value, "reason": data["reason"], "summary": None}
            return _event(_SESSION_ENDED_EVENT[final], payload, sse.id)
    return None
