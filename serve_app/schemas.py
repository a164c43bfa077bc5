"""Request bodies of the agent API (responses are the read model's documents)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from domain.enums import AgentType, AssignmentRole, SessionType
from domain.session import Session, SessionConfig
from execution.executor import Outcome


class Health(BaseModel):
    status: str
    projection_lag: int | None = None
    projection_stopped_by: str | None = None

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "ready", "projection_lag": 0}]}
    )


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateAgentRequest(Request):
    agent_type: AgentType
    name: str | None = Field(default=None, max_length=200)
    preferences: dict[str, JsonValue] = Field(default_factory=dict)

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"agent_type": "tutor", "preferences": {"language": "en"}}]
        },
    )


class StartSessionRequest(Request):
    session_type: SessionType | None = None
    system_prompt: str | None = Field(default=None, max_length=20_000)
    config: SessionConfig = Field(default_factory=SessionConfig)

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"config": {"template_id": "arithmetic-basics"}}]},
    )


class RespondRequest(Request):
    tool_call_id: str = Field(min_length=1)
    response: JsonValue
    response_time_ms: float | None = Field(default=None, ge=0)

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"tool_call_id": "times-7x8", "response": {"selection": "56"}}]
        },
    )


class TerminateRequest(Request):
    reason: str = Field(default="User terminated", min_length=1, max_length=500)


class AssignUserRequest(Request):
    user_id: str = Field(min_length=1)
    role: AssignmentRole

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"user_id": "bob", "role": "observer"}]}
    )


class PreferencesRequest(Request):
    changes: dict[str, JsonValue]

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"changes": {"language": "fr"}}]}
    )


class ArchiveRequest(Request):
    reason: str = Field(min_length=1, max_length=500)

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "course finished"}]}
    )


SESSION_STATE_EXAMPLE: dict[str, JsonValue] = {
    "agent_id": "54bf9626-1a89-567b-a797-d2773d498b5c",
    "position": 57,
    "outcome": "waiting_for_user",
    "session": {
        "session_id": "fd34ef7c-5e2d-5b93-9e3e-6909d36fd74a",
        "conversation_id": "917fa823-08fa-5130-8c7c-a34e766c6dbb",
        "session_type": "learning",
        "control_mode": "proactive",
        "status": "awaiting_client_action",
        "config": {"template_id": "arithmetic-basics"},
        "pending_action": {
            "tool_call_id": "divide-144-by-12",
            "tool_name": "request_free_text",
            "widget_type": "free_text",
            "props": {"prompt": "What is 144 ÷ 12?", "placeholder": "a number"},
            "lock_input": True,
        },
        "started_at": "2026-11-25T16:10:00Z",
    },
}


class SessionState(BaseModel):
    """A write's answer: the session as the aggregate holds it now, strongly consistent."""

    model_config = ConfigDict(json_schema_extra={"examples": [SESSION_STATE_EXAMPLE]})

    agent_id: str
    position: int = Field(description="Log position of the write: pass as ?after= to queries.")
    outcome: Outcome | None = None
    session: Session | None
