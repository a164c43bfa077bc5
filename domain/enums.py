"""The closed vocabularies of the Agent domain (values are what events and the API carry)."""

from __future__ import annotations

from enum import StrEnum


class AgentType(StrEnum):
    TUTOR = "tutor"
    THOUGHT = "thought"
    EVALUATOR = "evaluator"
    COACH = "coach"
    CONNECTOR = "connector"
    WELLNESS = "wellness"
    PLANNER = "planner"
    RESEARCHER = "researcher"


class AgentStatus(StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"  # soft-deleted: kept for audit, accepts only reads


class AssignmentRole(StrEnum):
    PRIMARY = "primary"  # the owner; exactly one, set at creation
    SHARED = "shared"  # team member: uses the agent and tunes its sessions
    MENTEE = "mentee"  # being mentored: uses the agent as configured
    OBSERVER = "observer"  # read-only


class SessionType(StrEnum):
    """Kinds of session, as the legacy Session API named them."""

    THOUGHT = "thought"
    LEARNING = "learning"
    VALIDATION = "validation"
    SURVEY = "survey"
    WORKFLOW = "workflow"
    APPROVAL = "approval"


class ControlMode(StrEnum):
    REACTIVE = "reactive"  # the user drives; the agent answers
    PROACTIVE = "proactive"  # the agent drives, asking through widgets


class SessionStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    AWAITING_CLIENT_ACTION = "awaiting_client_action"
    COMPLETED = "completed"
    EXPIRED = "expired"
    TERMINATED = "terminated"

    @property
    def is_final(self) -> bool:
        return self in _FINAL_SESSION_STATUSES


_FINAL_SESSION_STATUSES = frozenset(
    {SessionStatus.COMPLETED, SessionStatus.EXPIRED, SessionStatus.TERMINATED}
)

DEFAULT_SESSION_TYPE: dict[AgentType, SessionType] = {
    AgentType.TUTOR: SessionType.LEARNING,
    AgentType.THOUGHT: SessionType.THOUGHT,
    AgentType.EVALUATOR: SessionType.VALIDATION,
    AgentType.COACH: SessionType.LEARNING,
    AgentType.CONNECTOR: SessionType.WORKFLOW,
    AgentType.WELLNESS: SessionType.SURVEY,
    AgentType.PLANNER: SessionType.WORKFLOW,
    AgentType.RESEARCHER: SessionType.THOUGHT,
}

AGENT_TYPE_OF_SESSION_TYPE: dict[SessionType, AgentType] = {
    SessionType.THOUGHT: AgentType.THOUGHT,
    SessionType.LEARNING: AgentType.TUTOR,
    SessionType.VALIDATION: AgentType.EVALUATOR,
    SessionType.SURVEY: AgentType.EVALUATOR,
    SessionType.WORKFLOW: AgentType.PLANNER,
    SessionType.APPROVAL: AgentType.PLANNER,
}
"""Which agent a legacy session belongs to (the deprecated API and the migration agree):
surveys collect answers to judge (evaluator); workflows and approvals walk a plan of steps
(planner)."""
