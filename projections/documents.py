"""Read-model documents: the shapes queries return, built only by the projection handlers.

Documents are plain JSON (``model_dump(mode="json")``), so every store keeps them as they are.
Each carries ``position``, the global log position of the last event applied to it: handlers
skip events at or below it, which is what makes re-applying any event harmless.
"""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from domain.enums import (
    AgentStatus,
    AgentType,
    AssignmentRole,
    ControlMode,
    SessionStatus,
    SessionType,
)
from domain.execution_state import LlmMessage
from domain.session import ClientAction, SessionConfig, SessionItem

AGENT_EXAMPLE: dict[str, Any] = {
    "id": "54bf9626-1a89-567b-a797-d2773d498b5c",
    "owner_user_id": "alice",
    "agent_type": "tutor",
    "status": "active",
    "name": "Tutor agent",
    "preferences": {"language": "en"},
    "assignments": [
        {
            "user_id": "alice",
            "role": "primary",
            "assigned_by": "alice",
            "assigned_at": "2026-11-25T16:00:43.169579Z",
        }
    ],
    "member_user_ids": ["alice"],
    "total_sessions": 3,
    "total_interactions": 24,
    "successful_completions": 2,
    "scored_sessions": 2,
    "score_total": 1.75,
    "average_score": 0.875,
    "has_active_session": False,
    "created_at": "2026-11-25T16:00:43.169579Z",
    "updated_at": "2026-11-25T16:20:02.001234Z",
    "last_interaction_at": "2026-11-25T16:19:58.500000Z",
    "position": 118,
}
SESSION_EXAMPLE: dict[str, Any] = {
    "session_id": "fd34ef7c-5e2d-5b93-9e3e-6909d36fd74a",
    "agent_id": "54bf9626-1a89-567b-a797-d2773d498b5c",
    "owner_user_id": "alice",
    "agent_type": "tutor",
    "conversation_id": "917fa823-08fa-5130-8c7c-a34e766c6dbb",
    "session_type": "learning",
    "control_mode": "proactive",
    "status": "completed",
    "config": {"template_id": "arithmetic-basics"},
    "started_at": "2026-11-25T16:10:00Z",
    "ended_at": "2026-11-25T16:19:58.5Z",
    "end_reason": "criteria_met",
    "summary": {"template_id": "arithmetic-basics", "score": 0.875, "passed": True},
    "items_completed": 8,
    "position": 118,
}


class ReadModel(BaseModel):
    """Frozen: handlers build new documents instead of changing the ones they were given."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class AssignmentDocument(ReadModel):
    user_id: str
    role: AssignmentRole
    assigned_by: str
    assigned_at: AwareDatetime


class ActiveSessionSummary(ReadModel):
    """What an agent list shows of the running session, without loading its SessionDocument."""

    session_id: str
    status: SessionStatus
    pending_action: ClientAction | None = None
    current_item: SessionItem | None = None
    items_completed: int = 0
    started_at: AwareDatetime


class LastSessionSummary(ReadModel):
    session_id: str
    status: SessionStatus
    started_at: AwareDatetime
    ended_at: AwareDatetime
    end_reason: str
    summary: dict[str, Any] | None = None


class AgentDocument(ReadModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", json_schema_extra={"examples": [AGENT_EXAMPLE]}
    )

    id: str
    owner_user_id: str
    agent_type: AgentType
    status: AgentStatus
    name: str
    preferences: dict[str, Any] = Field(default_factory=dict)
    assignments: tuple[AssignmentDocument, ...] = ()
    member_user_ids: tuple[str, ...] = Field(
        default=(), description="The owner and every assigned user: who may see the agent."
    )
    total_sessions: int = 0
    total_interactions: int = 0
    successful_completions: int = 0
    scored_sessions: int = 0
    score_total: float = 0.0
    average_score: float | None = Field(
        default=None, description="Mean score (0..1) of completed sessions that reported one."
    )
    has_active_session: bool = False
    active_session_id: str | None = None
    active_session: ActiveSessionSummary | None = None
    last_session: LastSessionSummary | None = None
    archived_at: AwareDatetime | None = None
    archive_reason: str | None = None
    created_at: AwareDatetime
    updated_at: AwareDatetime
    last_interaction_at: AwareDatetime | None = None
    position: int = Field(ge=1)


class SessionDocument(ReadModel):
    """One session, active or ended, in full: kept after the aggregate's history drops it."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", json_schema_extra={"examples": [SESSION_EXAMPLE]}
    )

    session_id: str
    agent_id: str
    owner_user_id: str
    agent_type: AgentType
    conversation_id: str
    session_type: SessionType
    control_mode: ControlMode
    status: SessionStatus
    system_prompt: str | None = None
    config: SessionConfig = Field(default_factory=SessionConfig)
    items: tuple[SessionItem, ...] = ()
    transcript: tuple[LlmMessage, ...] = ()
    pending_action: ClientAction | None = None
    started_at: AwareDatetime
    ended_at: AwareDatetime | None = None
    end_reason: str | None = None
    summary: dict[str, Any] | None = None
    items_completed: int = 0
    position: int = Field(ge=1)
