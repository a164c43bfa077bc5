"""Who may see and who may act on an agent: its owner and assigned users by role, and admins.

Someone with no access gets exactly the answer a missing agent gets (404): an agent id never
reveals that the agent exists. An observer sees everything but acts on nothing (403).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

from domain.enums import AssignmentRole
from serve_app.auth import Principal
from serve_app.problems import Forbidden, agent_not_found


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


AgentT = TypeVar("AgentT", bound=Membership)


def role_of(agent: Membership, principal: Principal) -> AssignmentRole | None:
    if principal.user_id == agent.owner_user_id:
        return AssignmentRole.PRIMARY
    for assignment in agent.assignments:
        if assignment.user_id == principal.user_id:
            return assignment.role
    return None


def may_see(agent: Membership, principal: Principal) -> bool:
    return principal.is_admin or role_of(agent, principal) is not None


def visible(agent: AgentT | None, agent_id: str, principal: Principal) -> AgentT:
    """The agent if the principal may see it; otherwise the missing-agent 404."""
    if agent is None or not may_see(agent, principal):
        raise agent_not_found(agent_id)
    return agent


def actionable(agent: AgentT | None, agent_id: str, principal: Principal) -> AgentT:
    """The agent if the principal may act on it: 404 as above, 403 for a read-only role."""
    seen = visible(agent, agent_id, principal)
    role = role_of(seen, principal)
    if not principal.is_admin and (role is None or not role.can_act):
        raise Forbidden(f"your role on agent {agent_id} ({role}) may read but not act")
    return seen
