"""Who may do what to an agent, decided by the domain against the agent's own state.

Commands and queries carry the ``Caller`` that sent them; the agent's activation checks it
under the agent's lock, in the same turn that decides the command, so an assignment that is
revoked between a check and a write cannot slip through (no check-then-act).

What each role may do is one table, ``ROLE_MATRIX``; a command names the permission it needs,
which may depend on its content (``Command.required``): starting a session with overrides
needs more than starting one with the defaults, a profile preference more than a personal one.

Someone who may not see an agent is told exactly what a missing agent tells (``AgentNotFound``):
an agent id never reveals that the agent exists. Someone who may see but not do is refused with
``AccessDenied``, naming their role and the action (and no one's user id).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Protocol

from domain.enums import AssignmentRole
from domain.errors import AccessDenied, AgentNotFound
from domain.value_object import ValueObject


class Caller(ValueObject):
    """The authenticated user a command or query comes from (``None`` on a command: the
    system itself, e.g. the executor's own steps)."""

    user_id: str
    is_admin: bool = False


class Permission(StrEnum):
    READ = "read"
    """See the agent, its sessions and its stream."""
    ACT = "act"
    """Use the agent as it is configured: start a session with the defaults (naming only a
    template or a session type), answer its widgets, end it, set personal preferences."""
    CONFIGURE_SESSION = "configure_session"
    """Start a session with overrides: a system prompt, limits, criteria, a model, extras."""
    CONFIGURE_AGENT = "configure_agent"
    """Set or remove a profile preference (``MANAGED_PREFERENCE_KEYS``)."""
    ASSIGN = "assign"
    """Give another user a role on the agent."""
    UNASSIGN = "unassign"
    """End another user's assignment."""
    LEAVE = "leave"
    """End one's own assignment (the owner asking is refused by the aggregate: it has one)."""
    ARCHIVE = "archive"
    """Archive the agent for good."""

    @property
    def action(self) -> str:
        """What a refusal says the role may not do."""
        return _ACTIONS[self]


_ACTIONS: Mapping[Permission, str] = {
    Permission.READ: "see it",
    Permission.ACT: "use it",
    Permission.CONFIGURE_SESSION: "start a session with overrides",
    Permission.CONFIGURE_AGENT: "change the agent's profile preferences",
    Permission.ASSIGN: "assign users",
    Permission.UNASSIGN: "unassign other users",
    Permission.LEAVE: "leave it",
    Permission.ARCHIVE: "archive it",
}

_EVERY_ROLE = frozenset(AssignmentRole)
_OWNER = frozenset({AssignmentRole.PRIMARY})

ROLE_MATRIX: Mapping[Permission, frozenset[AssignmentRole]] = {
    Permission.READ: _EVERY_ROLE,
    Permission.ACT: frozenset(
        {AssignmentRole.PRIMARY, AssignmentRole.SHARED, AssignmentRole.MENTEE}
    ),
    Permission.CONFIGURE_SESSION: frozenset({AssignmentRole.PRIMARY, AssignmentRole.SHARED}),
    Permission.CONFIGURE_AGENT: _OWNER,
    Permission.ASSIGN: _OWNER,
    Permission.UNASSIGN: _OWNER,
    Permission.LEAVE: _EVERY_ROLE,
    Permission.ARCHIVE: _OWNER,
}
"""The roles that hold each permission. Admins hold every permission on every agent; anyone
with no role holds none (and is told the agent does not exist)."""

MANAGED_PREFERENCE_KEYS = frozenset(
    {
        "system_prompt",
        "server_tools",
        "max_iterations",
        "memory_sessions",
        "temperature",
        "default_template",
        "response_policy",
    }
)
"""Preference keys that shape the agent's behaviour for every member (the executor's agent
profile, less ``language``): only the owner and admins set them. Any other key is personal.
A unit test keeps this equal to ``execution.agent_profiles.AgentProfile``'s fields."""


class Assignment(Protocol):
    @property
    def user_id(self) -> str: ...

    @property
    def role(self) -> AssignmentRole: ...


class Membership(Protocol):
    """What both the aggregate's state and the read model's document say about access."""

    @property
    def owner_user_id(self) -> str: ...

    @property
    def assignments(self) -> Sequence[Assignment]: ...


def role_of(agent: Membership, caller: Caller) -> AssignmentRole | None:
    if caller.user_id == agent.owner_user_id:
        return AssignmentRole.PRIMARY
    for assignment in agent.assignments:
        if assignment.user_id == caller.user_id:
            return assignment.role
    return None


def may(agent: Membership, caller: Caller, permission: Permission) -> bool:
    if caller.is_admin:
        return True
    role = role_of(agent, caller)
    return role is not None and role in ROLE_MATRIX[permission]


def authorize(
    agent: Membership | None, agent_id: str, caller: Caller, permission: Permission
) -> None:
    """Refuse unless ``caller`` has ``permission`` on ``agent`` (None: it does not exist)."""
    if agent is None or not may(agent, caller, Permission.READ):
        raise AgentNotFound(f"agent {agent_id} does not exist")
    if not may(agent, caller, permission):
        role = role_of(agent, caller)
        raise AccessDenied(f"your role on agent {agent_id} ({role}) may not {permission.action}")
