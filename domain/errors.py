"""Domain refusals. Each is specific, carries a stable ``code``, and means nothing was emitted."""

from __future__ import annotations

from typing import ClassVar


class DomainError(Exception):
    """A command was refused by an invariant of the Agent aggregate."""

    code: ClassVar[str] = "domain_error"


class InvalidCommand(DomainError):
    """The command's own arguments are unusable (empty reason, bad history size, ...)."""

    code = "invalid_command"


class AgentNotFound(DomainError):
    """No such agent, or one the caller may not see: the same refusal either way."""

    code = "agent_not_found"


class AccessDenied(DomainError):
    """The caller may see the agent but its role may not do this (``domain.access.ROLE_MATRIX``:
    an observer acting, a shared user archiving)."""

    code = "forbidden"


class AgentAlreadyExists(DomainError):
    code = "agent_already_exists"


class AgentIsArchived(DomainError):
    """Archived agents accept nothing but reads."""

    code = "agent_archived"


class SessionAlreadyActive(DomainError):
    """One active session per agent at a time."""

    code = "session_already_active"


class NoActiveSession(DomainError):
    code = "no_active_session"


class SessionMismatch(DomainError):
    """The command names a session that is not the agent's active one."""

    code = "session_mismatch"


class ClientActionAlreadyPending(DomainError):
    code = "client_action_already_pending"


class NoPendingClientAction(DomainError):
    code = "no_pending_client_action"


class WrongToolCall(DomainError):
    """A response names a tool call other than the one the agent is waiting on."""

    code = "wrong_tool_call"


class InvalidResponse(DomainError):
    """The answer does not satisfy the widget it answers: nothing was recorded."""

    code = "invalid_response"

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


class SessionStuck(DomainError):
    """The session's next step is refused however often it is tried (the agent's state does
    not move): driving it again changes nothing until something else changes the agent."""

    code = "session_stuck"


class ExecutionNotSuspended(DomainError):
    code = "execution_not_suspended"


class ExecutionAlreadySuspended(DomainError):
    code = "execution_already_suspended"


class InvalidAssignment(DomainError):
    code = "invalid_assignment"


class UserAlreadyAssigned(DomainError):
    code = "user_already_assigned"


class UserNotAssigned(DomainError):
    """Unassigning a user who has no assignment on the agent (never had, or already left)."""

    code = "user_not_assigned"


class OwnerCannotLeave(DomainError):
    """The owner holds the primary role for the agent's whole life: an agent always has one
    owner, so the owner is never unassigned (archiving is how an owner lets go)."""

    code = "owner_cannot_leave"


class UnknownEventType(DomainError):
    """A stored event's type has no class and no upcaster: the log is newer than this code."""

    code = "unknown_event_type"


class CorruptStream(DomainError):
    """Stored events contradict each other (e.g. a session event with no session started)."""

    code = "corrupt_stream"
