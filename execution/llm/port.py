"""The executor's view of an LLM: one completed assistant turn per call, whatever the vendor.

The executor is stateless and replays nothing, so a provider must either return a whole turn or
raise an error that says whether trying again later can help (``LlmUnavailable``) or not
(``LlmRejected``): that decides whether the session stays resumable or needs an operator.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from pydantic import Field

from domain.execution_state import LlmMessage, ToolCall
from domain.value_object import ValueObject


class ToolSpec(ValueObject):
    """A tool the model may call: its parameters are a JSON Schema object."""

    name: str = Field(min_length=1)
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})

    def to_openai(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


class LlmTurn(ValueObject):
    """The completed assistant message plus what the server said about how it ended."""

    message: LlmMessage
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        return self.message.tool_calls


class LlmError(Exception):
    """Base of provider failures; the message is safe to log and show (no secrets)."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code

    def __reduce__(self) -> tuple[type[LlmError], tuple[str, int | None]]:
        # Errors cross Ray process boundaries: keep the status code through pickling.
        return type(self), (self.message, self.status_code)


class LlmUnavailable(LlmError):
    """Network, timeout, overload or server failure: the same request may succeed later."""


class LlmRejected(LlmError):
    """The server refused the request or answered outside the protocol: retrying won't help."""


class LlmProvider(Protocol):
    async def complete(
        self,
        messages: Sequence[LlmMessage],
        tools: Sequence[ToolSpec],
        *,
        on_delta: Callable[[str], Awaitable[None]] | None = None,
    ) -> LlmTurn:
        """Run one assistant turn; ``on_delta`` receives each content fragment as it streams."""
        ...
