"""Domain tests as the ADR promises them: given these events, when this command, then these
events (exactly) or this refusal (and nothing emitted, nothing changed).

    given(*session_events()).when(CompleteSession(agent_id=AGENT_ID)).then(session_completed(...))

The command runs through ``Command.decide(agent, NOW)``, so its ``caller`` is checked first.
An Agent method the API has no command for (``resume_execution``) can be given as a callable
``(agent, now) -> object`` instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from domain.agent import Agent
from domain.commands import Command
from domain.errors import DomainError
from domain.events import DomainEvent
from domain.state import AgentState

from .builders import at

NOW = at(60)
"""The ``now`` every command is decided at (after every given event of the builders)."""

COMMAND_ID = UUID("5d0c1f4e-2b7a-4c55-8e1f-9a3b6c7d8e90")
"""A fixed command id, so the ids a command derives from it (a session's) are known."""

Action = Command | Callable[[Agent, datetime], object]


def given(*events: DomainEvent) -> Given:
    return Given(events)


@dataclass(frozen=True)
class Given:
    events: tuple[DomainEvent, ...]

    def when(self, action: Action) -> Outcome:
        agent = Agent.replay(self.events)
        before = agent.state if agent.exists else None
        try:
            if isinstance(action, Command):
                action.decide(agent, NOW)
            else:
                action(agent, NOW)
        except DomainError as error:
            return Outcome(self.events, agent, before, error)
        return Outcome(self.events, agent, before, None)


@dataclass(frozen=True)
class Outcome:
    given: tuple[DomainEvent, ...]
    agent: Agent
    before: AgentState | None
    error: DomainError | None

    def then(self, *expected: DomainEvent) -> Agent:
        """The command emitted exactly ``expected``; returns the agent for checks on its state."""
        if self.error is not None:
            raise AssertionError(f"expected events, but it was refused: {self.error!r}")
        assert list(self.agent.pending_events) == list(expected)
        assert self.agent.version == len(self.given)
        if self.agent.exists:  # what was decided is what a replay of the stream rebuilds
            assert Agent.replay([*self.given, *expected]).state == self.agent.state
        return self.agent

    def then_refuses(self, error_type: type[DomainError], match: str | None = None) -> Agent:
        """The command raised ``error_type`` (message matching ``match``), emitting nothing and
        changing nothing; returns the agent."""
        if self.error is None:
            raise AssertionError(
                f"expected {error_type.__name__}, but it emitted {list(self.agent.pending_events)}"
            )
        if not isinstance(self.error, error_type):
            raise AssertionError(
                f"expected {error_type.__name__}, but it was refused with {self.error!r}"
            ) from self.error
        if match is not None:
            assert re.search(match, str(self.error)), f"{match!r} not in {str(self.error)!r}"
        assert self.agent.pending_events == ()
        assert (self.agent.state if self.agent.exists else None) == self.before
        return self.agent
