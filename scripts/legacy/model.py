"""The legacy Session streams as data: event types, the fold that reads one stream, and the
session type -> agent type mapping.

Kept apart from the planner so the validator reads legacy data exactly as the migration does,
yet checks the result against the Agent streams by its own replay.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.enums import (
    AGENT_TYPE_OF_SESSION_TYPE,
    AgentType,
    ControlMode,
    SessionStatus,
    SessionType,
)
from eventstore.port import RecordedEvent

STREAM_PREFIX = "session-"
LEGACY_SOURCE = "urn:legacy-agent-host"

CREATED = "session.created.v1"
STARTED = "session.started.v1"
ITEM_STARTED = "session.item.started.v1"
ITEM_COMPLETED = "session.item.completed.v1"
PENDING_SET = "session.pending_action.set.v1"
PENDING_CLEARED = "session.pending_action.cleared.v1"
RESPONSE_SUBMITTED = "session.response.submitted.v1"
STATUS_CHANGED = "session.status.changed.v1"
COMPLETED = "session.completed.v1"
TERMINATED = "session.terminated.v1"
EXPIRED = "session.expired.v1"

REQUIRED_FIELDS: Mapping[str, tuple[str, ...]] = {
    CREATED: (
        "aggregate_id",
        "user_id",
        "conversation_id",
        "session_type",
        "control_mode",
        "created_at",
    ),
    STARTED: ("aggregate_id", "started_at"),
    ITEM_STARTED: ("aggregate_id", "item_id", "sequence", "agent_prompt", "started_at"),
    ITEM_COMPLETED: ("aggregate_id", "item_id", "user_response", "completed_at"),
    PENDING_SET: ("aggregate_id", "tool_call_id", "tool_name", "widget_type", "props", "set_at"),
    PENDING_CLEARED: ("aggregate_id", "tool_call_id", "cleared_at"),
    RESPONSE_SUBMITTED: (
        "aggregate_id",
        "tool_call_id",
        "response",
        "validation_status",
        "submitted_at",
    ),
    STATUS_CHANGED: ("aggregate_id", "old_status", "new_status", "changed_at"),
    COMPLETED: ("aggregate_id", "completed_at", "completion_reason"),
    TERMINATED: ("aggregate_id", "terminated_at", "reason"),
    EXPIRED: ("aggregate_id", "expired_at", "reason"),
}


class LegacyDataError(ValueError):
    """A legacy stream the migration cannot read faithfully: reported, then skipped."""


@dataclass(frozen=True)
class LegacyItem:
    item_id: str
    sequence: int
    agent_prompt: str
    client_action: Mapping[str, Any]
    started_at: datetime
    user_response: Any = None
    response_time_ms: float | None = None
    evaluation: Mapping[str, Any] | None = None
    completed_at: datetime | None = None


@dataclass(frozen=True)
class LegacyEnd:
    status: SessionStatus
    at: datetime
    reason: str
    summary: Mapping[str, Any] | None = None


@dataclass
class LegacySession:
    stream: str
    session_id: str
    user_id: str
    conversation_id: str
    session_type: SessionType
    control_mode: ControlMode
    system_prompt: str | None
    config: Mapping[str, Any]
    created_at: datetime
    started_at: datetime | None = None
    items: list[LegacyItem] = field(default_factory=list)
    pending_action: Mapping[str, Any] | None = None
    pending_set_at: datetime | None = None
    end: LegacyEnd | None = None
    rejected_responses: int = 0
    event_ids: tuple[str, ...] = ()

    @property
    def status(self) -> SessionStatus:
        if self.end is not None:
            return self.end.status
        if self.pending_action is not None:
            return SessionStatus.AWAITING_CLIENT_ACTION
        return SessionStatus.ACTIVE if self.started_at is not None else SessionStatus.PENDING

    @property
    def agent_type(self) -> AgentType:
        return AGENT_TYPE_OF_SESSION_TYPE[self.session_type]


def _time(data: Mapping[str, Any], key: str) -> datetime:
    value = data[key]
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise LegacyDataError(f"{key} is not a timezone-aware ISO time: {value!r}")
    return parsed


def read_session(stream: str, events: Sequence[RecordedEvent]) -> LegacySession:
    """Fold one legacy stream; raise LegacyDataError on anything it cannot carry over as is."""
    if not events:
        raise LegacyDataError("empty stream")
    for event in events:
        required = REQUIRED_FIELDS.get(event.type)
        if required is None:
            raise LegacyDataError(f"unknown event type {event.type!r} (version {event.version})")
        missing = [name for name in required if name not in event.data]
        if missing:
            raise LegacyDataError(f"{event.type} (version {event.version}) lacks {missing}")
    first = events[0]
    if first.type != CREATED:
        raise LegacyDataError(f"no {CREATED} event first (found {first.type})")
    data = first.data
    try:
        session = LegacySession(
            stream=stream,
            session_id=str(data["aggregate_id"]),
            user_id=str(data["user_id"]),
            conversation_id=str(data["conversation_id"]),
            session_type=SessionType(data["session_type"]),
            control_mode=ControlMode(data["control_mode"]),
            system_prompt=data.get("system_prompt"),
            config=dict(data.get("config") or {}),
            created_at=_time(data, "created_at"),
            event_ids=tuple(str(e.id) for e in events),
        )
    except ValueError as error:
        raise LegacyDataError(f"bad {CREATED}: {error}") from None
    if stream != f"{STREAM_PREFIX}{session.session_id}":
        raise LegacyDataError(f"aggregate_id {session.session_id} does not match the stream")
    for event in events[1:]:
        _apply(session, event)
    return session


def _apply(session: LegacySession, event: RecordedEvent) -> None:
    data = event.data
    if data["aggregate_id"] != session.session_id:
        raise LegacyDataError(f"{event.type} (version {event.version}) names another session")
    if session.end is not None and event.type != STATUS_CHANGED:
        raise LegacyDataError(f"{event.type} after the session ended")
    match event.type:
        case "session.created.v1":
            raise LegacyDataError("a second created event")
        case "session.started.v1":
            session.started_at = _time(data, "started_at")
        case "session.item.started.v1":
            action = data.get("client_action")
            if not isinstance(action, Mapping) or not action.get("tool_call_id"):
                raise LegacyDataError(f"item {data['item_id']} has no client action")
            if session.items and session.items[-1].completed_at is None:
                raise LegacyDataError(f"item {data['item_id']} started before the last ended")
            session.items.append(
                LegacyItem(
                    item_id=str(data["item_id"]),
                    sequence=int(data["sequence"]),
                    agent_prompt=str(data["agent_prompt"]),
                    client_action=dict(action),
                    started_at=_time(data, "started_at"),
                )
            )
        case "session.item.completed.v1":
            if not session.items or session.items[-1].item_id != data["item_id"]:
                raise LegacyDataError(f"item {data['item_id']} completed but not the open one")
            item = session.items[-1]
            session.items[-1] = LegacyItem(
                item_id=item.item_id,
                sequence=item.sequence,
                agent_prompt=item.agent_prompt,
                client_action=item.client_action,
                started_at=item.started_at,
                user_response=data["user_response"],
                response_time_ms=data.get("response_time_ms"),
                evaluation=data.get("evaluation"),
                completed_at=_time(data, "completed_at"),
            )
        case "session.pending_action.set.v1":
            session.pending_action = {
                "tool_call_id": data["tool_call_id"],
                "tool_name": data["tool_name"],
                "widget_type": data["widget_type"],
                "props": dict(data["props"]),
                "lock_input": bool(data.get("lock_input", True)),
            }
            session.pending_set_at = _time(data, "set_at")
        case "session.pending_action.cleared.v1":
            session.pending_action = None
            session.pending_set_at = None
        case "session.response.submitted.v1":
            if data["validation_status"] == "invalid":
                session.rejected_responses += 1
        case "session.status.changed.v1":
            SessionStatus(data["new_status"])
        case "session.completed.v1":
            session.end = LegacyEnd(
                SessionStatus.COMPLETED,
                _time(data, "completed_at"),
                str(data["completion_reason"]),
                data.get("summary"),
            )
        case "session.terminated.v1":
            session.end = LegacyEnd(
                SessionStatus.TERMINATED, _time(data, "terminated_at"), str(data["reason"])
            )
        case "session.expired.v1":
            session.end = LegacyEnd(
                SessionStatus.EXPIRED, _time(data, "expired_at"), str(data["reason"])
            )


@dataclass(frozen=True)
class AgentSessions:
    """The legacy sessions one agent receives: finished ones in time order, then the active."""

    finished: tuple[LegacySession, ...]
    active: LegacySession | None
    superseded: tuple[LegacySession, ...]
    """Older unfinished sessions: an agent holds one active session, so these are reported
    and not migrated."""


def select_sessions(sessions: Sequence[LegacySession]) -> AgentSessions:
    """Order one agent's sessions; the newest unfinished one becomes the active session."""
    ordered = sorted(sessions, key=lambda s: (s.created_at, s.session_id))
    finished = tuple(s for s in ordered if s.end is not None)
    unfinished = [s for s in ordered if s.end is None]
    return AgentSessions(
        finished=finished,
        active=unfinished[-1] if unfinished else None,
        superseded=tuple(unfinished[:-1]),
    )
