"""How a widget answer is checked inside the command that records it.

The aggregate does not know widgets or templates (the execution layer does), but the check
must run against the pending action the command itself sees, in the same mailbox turn that
records the answer: checked in an earlier turn, a drive that suspends in between would get
a raw, unchecked answer recorded against its new widget.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import JsonValue

from domain.session import ClientAction, Session


@dataclass(frozen=True)
class CheckedAnswer:
    """The answer as it is recorded (normalised) and its score, if the session scores."""

    response: JsonValue
    evaluation: dict[str, JsonValue] | None = None


AnswerCheck = Callable[[Session, ClientAction, JsonValue], CheckedAnswer]
"""Raises ``InvalidResponse`` with every reason, or returns the answer to record."""
