"""A session is a value object owned by the Agent: its items, pending widget and transcript."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import Field, JsonValue, field_validator

from domain.enums import ControlMode, SessionStatus, SessionType
from domain.execution_state import LlmMessage
from domain.value_object import ValueObject

_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


class SessionConfig(ValueObject):
    """Limits and criteria of one session (the legacy SessionConfig, every field optional)."""

    time_limit_seconds: int | None = Field(default=None, gt=0)
    item_time_limit_seconds: int | None = Field(default=None, gt=0)
    max_items: int | None = Field(default=None, gt=0)
    completion_criteria: dict[str, Any] = Field(default_factory=dict)
    allow_skip: bool = False
    allow_back: bool = False
    allow_concurrent_sessions: bool = False
    model_id: str | None = None
    template_id: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("model_id", "template_id", "completion_criteria", "extra")
    @classmethod
    def _storable(cls, value: object) -> object:
        """No NUL and no lone surrogate anywhere: the edge refuses them with a 422 already;
        this stops a script or the migration from storing what no read model can hold."""
        stack = [value]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                stack.extend(node.keys())
                stack.extend(node.values())
            elif isinstance(node, list | tuple):
                stack.extend(node)
            elif isinstance(node, str) and _UNSTORABLE.search(node):
                raise ValueError("must not contain NUL or lone surrogate characters")
        return value


class ClientAction(ValueObject):
    """A widget the browser must show; the session waits for its answer."""

    tool_call_id: str = Field(min_length=1)
    tool_name: str = Field(min_length=1)
    widget_type: str = Field(min_length=1)
    props: dict[str, Any] = Field(default_factory=dict)
    lock_input: bool = True


class ClientResponse(ValueObject):
    """The user's answer to a client action."""

    tool_call_id: str = Field(min_length=1)
    response: JsonValue
    response_time_ms: float | None = Field(default=None, ge=0)


class SessionItem(ValueObject):
    """One question/answer exchange: opened by a client action, closed by its response."""

    item_id: str = Field(min_length=1)
    sequence: int = Field(ge=1)
    agent_prompt: str = ""
    client_action: ClientAction | None = None
    started_at: datetime
    user_response: JsonValue = None
    response_time_ms: float | None = None
    evaluation: dict[str, Any] | None = None
    completed_at: datetime | None = None


class Session(ValueObject):
    session_id: str = Field(min_length=1)
    conversation_id: str = Field(min_length=1)
    session_type: SessionType
    control_mode: ControlMode
    status: SessionStatus
    system_prompt: str | None = None
    config: SessionConfig = Field(default_factory=SessionConfig)
    items: tuple[SessionItem, ...] = ()
    pending_action: ClientAction | None = None
    transcript: tuple[LlmMessage, ...] = ()
    started_at: datetime
    ended_at: datetime | None = None
    end_reason: str | None = None
    summary: dict[str, Any] | None = None

    @property
    def current_item(self) -> SessionItem | None:
        last = self.items[-1] if self.items else None
        return last if last is not None and last.completed_at is None else None

    @property
    def items_completed(self) -> int:
        return sum(1 for item in self.items if item.completed_at is not None)


def session_score(summary: dict[str, Any] | None) -> float | None:
    """The session's score if its summary reports one: ``summary["score"]``, a fraction in
    [0, 1] (templates and evaluators write it); anything else is not a score."""
    score = (summary or {}).get("score")
    if isinstance(score, int | float) and not isinstance(score, bool) and 0 <= score <= 1:
        return float(score)
    return None
