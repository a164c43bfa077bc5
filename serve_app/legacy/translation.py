"""Agent sessions in legacy shapes: the documents the routes answer with, and the agent stream's
events under the names and payloads the legacy stream used.

Nothing here reads a store or an actor, so every mapping is a plain function of its input.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sse_starlette import ServerSentEvent

from domain.enums import SessionStatus
from domain.session import Session
from projections.documents import SessionDocument
from serve_app.legacy.schemas import LegacySession, LegacyState, LegacySummary, LegacyUiState

_SESSION_ENDED_EVENT = {
    SessionStatus.COMPLETED: "session_completed",
    SessionStatus.TERMINATED: "session_terminated",
    SessionStatus.EXPIRED: "session_expired",
}

# ---------------------------------------------------------------------- documents


def session_from_view(view: SessionDocument) -> Session:
    """A read-model document as the domain session, for sessions no activation holds."""
    return Session.model_validate(view.model_dump(include=set(Session.model_fields)))


def ui_state_of(session: Session) -> LegacyUiState:
    item = session.current_item
    pending = session.pending_action
    return LegacyUiState(
        input_locked=pending is not None and pending.lock_input,
        current_item_id=item.item_id if item is not None else None,
    )


def state_of(session: Session) -> LegacyState:
    return LegacyState(
        status=session.status,
        pending_action=session.pending_action,
        current_item=session.current_item,
        ui_state=ui_state_of(session),
    )


def summary_of(session: Session) -> LegacySummary:
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


def terminated_reason_of(session: Session) -> str | None:
    """The end reason, only for a session ended early: the legacy field meant just that."""
    ended_early = session.status in (SessionStatus.TERMINATED, SessionStatus.EXPIRED)
    return session.end_reason if ended_early else None


def detail_of(session: Session, user_id: str) -> LegacySession:
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
        ui_state=ui_state_of(session),
        pending_action=session.pending_action,
        created_at=session.started_at,
        started_at=session.started_at,
        completed_at=session.ended_at,
        terminated_reason=terminated_reason_of(session),
    )


# ---------------------------------------------------------------------- stream events


def connected_event(session: Session) -> ServerSentEvent:
    """The stream's first event: the state at connect time, to restore the input area from."""
    state = state_of(session).model_dump(mode="json")
    return _event("connected", {"session_id": session.session_id, **state})


def ended_event(session: Session) -> ServerSentEvent:
    """The final event of a session that had ended before the client connected."""
    payload = {
        "session_id": session.session_id,
        "status": session.status.value,
        "reason": session.end_reason,
        "summary": session.summary,
    }
    return _event(_SESSION_ENDED_EVENT[session.status], payload)


def stream_failed_event(session_id: str, error_id: str) -> ServerSentEvent:
    """The last event when the store or the agent's host fails mid-stream: a fixed text (what
    failed may name hosts, DSNs or Ray workers) and the ``error_id`` of the log line that
    says what it was."""
    payload = {
        "session_id": session_id,
        "code": "stream_failed",
        "detail": "The stream failed on the server; reconnect with Last-Event-ID to resume.",
        "error_id": error_id,
    }
    return _event("error", payload)


def legacy_event_of(sse: ServerSentEvent, session_id: str) -> ServerSentEvent | None:
    """An agent stream event under its legacy name; None for what the legacy stream never
    showed. Durable events (which have an id, their log position) keep it."""
    if sse.id is None:
        return _ephemeral_event(sse, session_id)
    return _durable_event(sse, session_id)


def _event(name: str, data: Mapping[str, Any], position: str | None = None) -> ServerSentEvent:
    return ServerSentEvent(data=json.dumps(data), event=name, id=position)


def _ephemeral_event(sse: ServerSentEvent, session_id: str) -> ServerSentEvent:
    """Token deltas and tool progress: their kinds are the legacy names already."""
    event = json.loads(str(sse.data))
    return _event(str(sse.event), {"session_id": session_id, **event["data"]})


def _durable_event(sse: ServerSentEvent, session_id: str) -> ServerSentEvent | None:
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
