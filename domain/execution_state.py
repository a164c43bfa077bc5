"""What a suspended LLM loop needs to continue in any process: the executor keeps nothing."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from domain.value_object import ValueObject


class ToolCall(ValueObject):
    """A tool call requested by the model (arguments already parsed from JSON)."""

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)


class LlmMessage(ValueObject):
    """One chat message of any role, in the shape chat-completion APIs use."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None


class PendingToolCall(ValueObject):
    """The client tool (widget) call the loop is waiting on."""

    call_id: str = Field(min_length=1)
    tool_name: str = Field(min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)


class ExecutionState(ValueObject):
    conversation_snapshot: tuple[LlmMessage, ...] = ()
    iteration: int = Field(default=0, ge=0)
    tool_calls_made: int = Field(default=0, ge=0)
    pending_tool_call: PendingToolCall | None = None
    started_at_ms: float = 0.0
    suspended_at_ms: float = 0.0
