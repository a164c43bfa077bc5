"""Access to read-model documents: the same rule the domain applies to commands.

Writes and strongly consistent reads are decided inside the agent's activation
(``domain.access``); queries answered from the read model check the document here, with the
same function, so the two can never disagree. Someone who may not see an agent gets exactly
the answer a missing agent gets (404).
"""

from __future__ import annotations

from typing import TypeVar

from domain.access import Membership, Permission, may
from serve_app.auth import Principal
from serve_app.problems import agent_not_found

AgentT = TypeVar("AgentT", bound=Membership)


def visible(agent: AgentT | None, agent_id: str, principal: Principal) -> AgentT:
    """The agent if the principal may see it; otherwise the missing-agent 404."""
    if agent is None or not may(agent, principal.caller, Permission.READ):
        raise agent_not_found(agent_id)
    return agent
