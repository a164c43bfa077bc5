"""Request bodies of the agent API (responses are the read model's documents).

Every string, key, list and map a request carries is bounded and clean (``serve_app.limits``).
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

from domain.enums import AgentType, AssignmentRole, SessionType
from domain.session import Session, SessionConfig
from execution.agent_profiles import InvalidPreferences, agent_profile
from execution.executor import Outcome
from serve_app.limits import (
    BoundedJson,
    BoundedSessionConfig,
    Identifier,
    Name,
    Preferences,
    Prompt,
    Reason,
    ResponseTimeMs,
    refuse,
)

NotReadyReason = Literal[
    "poison_event",
    "projector_stopped",
    "projector_unavailable",
    "read_model_unavailable",
    "event_store_unavailable",
]


class Health(BaseModel):
    """Liveness (``ok``) or readiness. Not ready names why with a stable code and, for a
    poison event, where the projector stopped: never an exception's text or anyone's data,
    so probes and dashboards may show it as it is."""

    status: Literal["ok", "ready", "not_ready"]
    projection_lag: int | None = Field(
        default=None, description="Log positions the read model is behind."
    )
    reason: NotReadyReason | None = Field(
        default=None,
        description="Why not ready: the projector stopped (at a poison event, or otherwise),"
        " or the projector, this replica's read model or its event store did not answer.",
    )
    stopped_at_position: int | None = Field(
        default=None, description="The log position of the event the projector stopped at."
    )
    stopped_at_event_type: str | None = Field(default=None, description="That event's type.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"status": "ready", "projection_lag": 0},
                {
                    "status": "not_ready",
                    "projection_lag": 12,
                    "reason": "poison_event",
                    "stopped_at_position": 1042,
                    "stopped_at_event_type": "agent.preferences.updated.v1",
                },
                {"status": "not_ready", "reason": "read_model_unavailable"},
            ]
        }
    )


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateAgentRequest(Request):
    agent_type: AgentType
    name: Name | None = None
    preferences: Preferences = Field(default_factory=dict)

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"agent_type": "tutor", "preferences": {"language": "en"}}]
        },
    )

    @model_validator(mode="after")
    def _fit_the_profile(self) -> Self:
        """A preference the agent's profile refuses would only fail later, at a drive."""
        try:
            agent_profile(self.agent_type, self.preferences)
        except InvalidPreferences as error:
            key, reason = next(iter(error.problems.items()))
            refuse(("preferences", key), self.preferences.get(key), "invalid_preference", reason)
        return self


class StartSessionRequest(Request):
    session_type: SessionType | None = None
    system_prompt: Prompt | None = None
    config: BoundedSessionConfig = Field(default_factory=SessionConfig)

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"config": {"template_id": "arithmetic-basics"}}]},
    )


class RespondRequest(Request):
    tool_call_id: Identifier
    response: BoundedJson
    response_time_ms: ResponseTimeMs | None = None

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"tool_call_id": "times-7x8", "response": {"selection": "56"}}]
        },
    )


class AssignUserRequest(Request):
    user_id: Identifier
    role: AssignmentRole

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"user_id": "bob", "role": "observer"}]}
    )


class PreferencesRequest(Request):
    changes: Preferences
    """``None`` removes a key; the merged map is checked against the agent's profile."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"changes": {"language": "fr"}}]}
    )


class ArchiveRequest(Request):
    reason: Reason

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
