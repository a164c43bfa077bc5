"""What use cases answer beyond a plain ``CommandResult``."""

from __future__ import annotations

from pydantic import BaseModel

from domain.commands import CommandResult
from domain.session import Session
from execution.executor import Outcome


class SessionReply(BaseModel):
    """A command plus the drive it started, answered in one actor call: what the API returns
    after starting a session or answering a widget."""

    result: CommandResult
    outcome: Outcome | None
    """Where the drive stopped; None when the caller asked for no drive."""
    session: Session | None
    """The active session where the drive left it (None once it has ended)."""
    position: int
    """Log position of the last event the command and its drive wrote."""
