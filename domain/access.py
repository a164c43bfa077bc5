"""Who may do what to an agent, decided by the domain against the agent's own state.

Commands and queries carry the ``Caller`` that sent them; the agent's activation checks it
under the agent's lock, in the same turn that decides the command, so an assignment that is
revoked between a check and a write cannot slip through (no check-then-act).

Someone who may not see an agent is told exactly what a missing agent tells (``AgentNotFound``):
an agent id never reveals that the agent exists. Someone who may see but not do is refused with
``AccessDenied``.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    """Change the agent: sessions, answers, preferences, assignments, archive."""


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
    if role is None:
        return False
    return permission is Permission.READ or role.can_act


def authorize(
    agent: Membership | None, agent_id: str, caller: Caller, permission: Permission
) -> None:
    """Refuse unless ``caller`` has ``permission`` on ``agent`` (None: it does not exist)."""
    if agent is None or not may(agent, caller, Permission.READ):
        raise AgentNotFound(f"agent {agent_id} does not exist")
    if not may(agent, caller, permission):
        role = role_of(agent, caller)
        raise AccessDenied(f"your role on agent {agent_id} ({role}) may read but not act")
