"""The legacy request and response shapes, field for field as the old Session API had them,
with the OpenAPI examples that show them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from domain.enums import ControlMode, SessionStatus, SessionType
from domain.session import ClientAction, SessionConfig, SessionItem
from serve_app.legacy.middleware import PREFIX
from serve_app.limits import BoundedJson, BoundedSessionConfig, Identifier, Prompt, ResponseTimeMs

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
STREAM_EXAMPLE = (  # the stream route's OpenAPI example: SSE has no schema to derive one from
    'event: connected\ndata: {"session_id": "...", "status": "awaiting_client_action", ...}\n\n'
    'event: content_chunk\ndata: {"session_id": "...", "delta": "Let me "}\n\n'
    'id: 57\nevent: client_action\ndata: {"session_id": "...", "tool_call_id": ...}\n\n'
    'id: 58\nevent: run_suspended\ndata: {"session_id": "...", "tool_call_id": ...}\n\n'
    ": ping\n\n"
)


class LegacyRequest(BaseModel):
    """Unknown fields are refused, so a misspelt one is a 422 rather than silently ignored."""

    model_config = ConfigDict(extra="forbid")


class LegacyStartRequest(LegacyRequest):
    session_type: SessionType
    system_prompt: Prompt | None = None
    config: BoundedSessionConfig | None = Field(
        default=None,
        description="The legacy SessionConfig; template_id (an addition) picks a template.",
    )
    model_id: Identifier | None = Field(default=None, description="Overrides config.model_id.")

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"session_type": "learning", "config": {"max_items": 4}}]},
    )


class LegacyRespondRequest(LegacyRequest):
    tool_call_id: Identifier
    response: BoundedJson
    response_time_ms: ResponseTimeMs | None = None


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
