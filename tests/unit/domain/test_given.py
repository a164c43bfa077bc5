"""The given/when/then helper: its streams are real ones, and it fails when it should."""

from __future__ import annotations

import pytest

from domain.agent import Agent
from domain.commands import ArchiveAgent
from domain.errors import InvalidCommand, NoActiveSession

from .builders import (
    AGENT_ID,
    agent_archived,
    agent_created,
    new_agent,
    session_events,
    suspended,
    suspended_events,
    with_session,
)
from .given import NOW, given


def test_the_builders_streams_are_what_their_agents_stored() -> None:
    assert Agent.replay([agent_created()]).state == new_agent().state
    assert Agent.replay(session_events()).state == with_session().state
    replayed, built = Agent.replay(suspended_events()), suspended()
    assert replayed.state == built.state
    assert replayed.version == built.version


def test_then_fails_on_other_events_and_on_a_refusal() -> None:
    archive = ArchiveAgent(agent_id=AGENT_ID, reason="reset")
    with pytest.raises(AssertionError):
        given(agent_created()).when(archive).then(agent_archived("other", NOW))
    with pytest.raises(AssertionError):
        given(agent_created()).when(archive).then()
    with pytest.raises(AssertionError, match="refused"):
        given().when(archive).then(agent_archived("reset", NOW))


def test_then_refuses_fails_on_emitted_events_and_on_another_error() -> None:
    archive = ArchiveAgent(agent_id=AGENT_ID, reason="reset")
    with pytest.raises(AssertionError, match="emitted"):
        given(agent_created()).when(archive).then_refuses(InvalidCommand)
    blank = ArchiveAgent(agent_id=AGENT_ID, reason=" ")
    with pytest.raises(AssertionError, match="InvalidCommand"):
        given(agent_created()).when(blank).then_refuses(NoActiveSession)
    with pytest.raises(AssertionError):
        given(agent_created()).when(blank).then_refuses(InvalidCommand, match="archived")
