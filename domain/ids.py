"""Agent identity: random UUIDs, except the one agent a user has of each type."""

from __future__ import annotations

import uuid

from domain.enums import AgentType

# Fixed forever: changing it would make get-or-create and the migration land on new agents.
AGENT_ID_NAMESPACE = uuid.UUID("5b0d6a8e-3f3c-4c57-9d0c-6a1f0e2b7c41")


def agent_id_for(owner_user_id: str, agent_type: AgentType) -> str:
    """Deterministic UUIDv5 so repeated get-or-create calls and the migration agree."""
    return str(uuid.uuid5(AGENT_ID_NAMESPACE, f"{owner_user_id}\x1f{agent_type.value}"))


def new_agent_id() -> str:
    return str(uuid.uuid4())


def stream_name(agent_id: str) -> str:
    return f"agent-{agent_id}"
