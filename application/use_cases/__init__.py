"""Every use case the application answers, one module each. Plain domain commands
(``domain.commands``: get-or-create, assignments, archive, terminate) need no module of
their own: the application runs them as they are (``AgentApplication.handle``)."""

from application.use_cases.answer_widget import AnswerWidget
from application.use_cases.drive_session import DriveSession
from application.use_cases.read_agent import (
    LocatedSession,
    LocateSession,
    ReadAgentState,
    ReadCurrentSession,
)
from application.use_cases.read_live_events import ReadLiveEvents
from application.use_cases.start_session import StartSession
from application.use_cases.start_session_of_type import StartSessionOfType
from application.use_cases.update_preferences import UpdatePreferences

__all__ = [
    "AnswerWidget",
    "DriveSession",
    "LocateSession",
    "LocatedSession",
    "ReadAgentState",
    "ReadCurrentSession",
    "ReadLiveEvents",
    "StartSession",
    "StartSessionOfType",
    "UpdatePreferences",
]
