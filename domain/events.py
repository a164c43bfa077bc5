"""Domain events of the Agent aggregate, and the registry that maps CloudEvents types to them.

Events are facts: immutable, versioned by their type string (``...v1``), and never changed once
stored. A new shape gets a new type (``...v2``) plus an upcaster from the old one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Literal

from pydantic import AwareDatetime, Field

from domain.enums import AgentType, AssignmentRole, ControlMode, SessionType
from domain.errors import UnknownEventType
from domain.execution_state import ExecutionState, LlmMessage
from domain.session import ClientAction, ClientResponse, SessionConfig
from domain.value_object import ValueObject


class DomainEvent(ValueObject):
    event_type: ClassVar[str]

    agent_id: str = Field(min_length=1)
    occurred_at: AwareDatetime


class AgentCreated(DomainEvent):
    event_type = "agent.created.v1"

    owner_user_id: str = Field(min_length=1)
    agent_type: AgentType
    name: str = Field(min_length=1)
    system_prompt_override: str | None = None
    preferences: dict[str, Any] = Field(default_factory=dict)
    max_history_size: int = Field(ge=1)


class AgentArchived(DomainEvent):
    event_type = "agent.archived.v1"

    reason: str


class UserAssignedToAgent(DomainEvent):
    event_type = "agent.user.assigned.v1"

    user_id: str
    role: AssignmentRole
    assigned_by: str


class UserUnassignedFromAgent(DomainEvent):
    """A user's assignment ends: the owner or an admin removed them, or they left."""

    event_type = "agent.user.unassigned.v1"

    user_id: str
    unassigned_by: str


class AgentPreferencesUpdated(DomainEvent):
    """Carries the whole new preference map, so a projection needs no earlier event."""

    event_type = "agent.preferences.updated.v1"

    preferences: dict[str, Any]


class SessionStarted(DomainEvent):
    event_type = "agent.session.started.v1"

    session_id: str
    conversation_id: str
    session_type: SessionType
    control_mode: ControlMode
    system_prompt: str | None = None
    config: SessionConfig = Field(default_factory=SessionConfig)


class SessionMessagesRecorded(DomainEvent):
    """Completed chat messages of the session (not in the plan's 11: keeps transcripts durable)."""

    event_type = "agent.session.messages.recorded.v1"

    session_id: str
    messages: tuple[LlmMessage, ...]


class ClientActionRequested(DomainEvent):
    event_type = "agent.client.action.requested.v1"

    session_id: str
    item_id: str
    action: ClientAction


class ExecutionSuspended(DomainEvent):
    event_type = "agent.execution.suspended.v1"

    session_id: str
    execution_state: ExecutionState


class ClientResponseReceived(DomainEvent):
    event_type = "agent.client.response.received.v1"

    session_id: str
    response: ClientResponse
    evaluation: dict[str, Any] | None = None


class ExecutionResumed(DomainEvent):
    event_type = "agent.execution.resumed.v1"

    session_id: str
    tool_call_id: str


class SessionCompleted(DomainEvent):
    event_type = "agent.session.completed.v1"

    session_id: str
    reason: str
    summary: dict[str, Any] | None = None


class SessionTerminated(DomainEvent):
    """Ends a session early: by a user or operator, or by a time limit (``expired``)."""

    event_type = "agent.session.terminated.v1"

    session_id: str
    reason: str
    final_status: Literal["terminated", "expired"] = "terminated"


Upcaster = Callable[[dict[str, Any]], tuple[str, dict[str, Any]]]
"""Turns the data of an old event type into (newer type, newer data)."""


class EventRegistry:
    """Maps CloudEvents ``type`` strings to event classes, upcasting old types on the way in."""

    def __init__(self, event_classes: Iterable[type[DomainEvent]]) -> None:
        self._classes = {cls.event_type: cls for cls in event_classes}
        self._upcasters: dict[str, Upcaster] = {}

    @property
    def types(self) -> frozenset[str]:
        return frozenset(self._classes)

    def register_upcaster(self, old_type: str, upcaster: Upcaster) -> None:
        if old_type in self._classes:
            raise ValueError(f"{old_type} is a current event type; upcast only retired types")
        self._upcasters[old_type] = upcaster

    def encode(self, event: DomainEvent) -> tuple[str, dict[str, Any]]:
        return event.event_type, event.to_dict()

    def decode(self, event_type: str, data: dict[str, Any]) -> DomainEvent:
        seen: set[str] = set()
        while event_type not in self._classes:
            upcaster = self._upcasters.get(event_type)
            if upcaster is None or event_type in seen:
                raise UnknownEventType(f"no event class or upcaster for type {event_type!r}")
            seen.add(event_type)
            event_type, data = upcaster(data)
        return self._classes[event_type].from_dict(data)


AGENT_EVENT_CLASSES: tuple[type[DomainEvent], ...] = (
    AgentCreated,
    AgentArchived,
    UserAssignedToAgent,
    UserUnassignedFromAgent,
    AgentPreferencesUpdated,
    SessionStarted,
    SessionMessagesRecorded,
    ClientActionRequested,
    ExecutionSuspended,
    ClientResponseReceived,
    ExecutionResumed,
    SessionCompleted,
    SessionTerminated,
)

AGENT_EVENTS = EventRegistry(AGENT_EVENT_CLASSES)
