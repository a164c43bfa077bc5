"""Strongly consistent reads through the agent's activation (queries that cannot wait for the
read model: right after a write, a reader must see it)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from application.service import AgentApplication
from application.use_case import UseCase
from domain.access import Permission, authorize
from domain.session import Session
from domain.state import AgentState


async def _readable(app: AgentApplication, query: UseCase[Any]) -> AgentState | None:
    """The state, if the caller may read it (None only for a system query of a missing one)."""
    state = await app.agent_state(query.agent_id)
    if query.caller is not None:
        authorize(state, query.agent_id, query.caller, Permission.READ)
    return state


class ReadAgentState(UseCase[AgentState | None]):
    """The whole aggregate state; None if the agent does not exist (system callers only see
    None: a user is refused with the missing-agent error instead)."""

    async def run(self, app: AgentApplication) -> AgentState | None:
        return await _readable(app, self)


class ReadCurrentSession(UseCase[Session | None]):
    """The agent's active session, with its pending widget; None when it has none."""

    async def run(self, app: AgentApplication) -> Session | None:
        state = await _readable(app, self)
        return state.active_session if state is not None else None


class LocatedSession(BaseModel):
    owner_user_id: str
    session: Session | None
    """None when the session is older than the history the aggregate keeps."""


class LocateSession(UseCase[LocatedSession | None]):
    """One session of the agent, active or in its history (what the legacy API serves)."""

    session_id: str = Field(min_length=1)

    async def run(self, app: AgentApplication) -> LocatedSession | None:
        state = await _readable(app, self)
        if state is None:
            return None
        candidates = (state.active_session, *reversed(state.session_history))
        found = next((s for s in candidates if s and s.session_id == self.session_id), None)
        return LocatedSession(owner_user_id=state.owner_user_id, session=found)
