"""Preferences against the agent's profile: a change the profile refuses is refused when it is
set, naming the key; one stored before that check falls back to the type's default."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from application.bootstrap import HostConfig, build_application
from application.use_cases import UpdatePreferences
from domain import commands
from domain.access import Caller
from domain.enums import AgentType
from domain.errors import InvalidCommand
from domain.state import AgentState
from execution.agent_profiles import (
    MAX_PREFERENCES,
    MAX_PREFERENCES_BYTES,
    InvalidPreferences,
    agent_profile,
    check_preferences,
    profile_of,
)
from execution.executor import Outcome, ProactiveAgentExecutor
from execution.llm.openai_compatible import OpenAICompatibleProvider
from tests.support.fake_llm_server import TextReply, running_fake_llm
from tests.unit.domain.builders import new_agent


def _state(preferences: dict[str, Any], override: str | None = None) -> AgentState:
    state = new_agent().state
    return state.replace(
        agent_type=AgentType.TUTOR, preferences=preferences, system_prompt_override=override
    )


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("max_iterations", "x"),
        ("max_iterations", 101),
        ("temperature", -1),
        ("response_policy", "later"),
        ("default_template", "no-such-template"),
        ("language", "x" * 65),
        ("system_prompt", "x" * 20_001),
        ("server_tools", "calculator"),
    ],
)
def test_a_change_the_profile_refuses_is_refused_by_key(key: str, value: Any) -> None:
    with pytest.raises(InvalidPreferences) as caught:
        check_preferences(AgentType.TUTOR, {}, {key: value, "theme": "dark"})
    assert set(caught.value.problems) == {key}
    assert key in str(caught.value)
    assert "errors.pydantic.dev" not in str(caught.value)


def test_a_valid_change_merges_and_none_removes() -> None:
    merged = check_preferences(
        AgentType.TUTOR,
        {"theme": "dark", "language": "en"},
        {"language": None, "max_iterations": 3},
    )
    assert merged == {"theme": "dark", "max_iterations": 3}


def test_a_bad_key_already_stored_does_not_block_other_changes_nor_its_repair() -> None:
    stored = {"max_iterations": "x"}
    assert check_preferences(AgentType.TUTOR, stored, {"theme": "dark"}) == {
        "max_iterations": "x",
        "theme": "dark",
    }
    assert check_preferences(AgentType.TUTOR, stored, {"max_iterations": None}) == {}
    with pytest.raises(InvalidPreferences):
        check_preferences(AgentType.TUTOR, stored, {"max_iterations": "y"})


def test_the_whole_map_is_bounded_but_may_always_shrink() -> None:
    full = {f"k{i}": i for i in range(MAX_PREFERENCES)}
    with pytest.raises(InvalidPreferences, match=str(MAX_PREFERENCES)):
        check_preferences(AgentType.TUTOR, full, {"one-more": 1})
    assert len(check_preferences(AgentType.TUTOR, full, {"k0": "changed"})) == MAX_PREFERENCES
    big = {"a": "x" * MAX_PREFERENCES_BYTES}
    with pytest.raises(InvalidPreferences, match="bytes"):
        check_preferences(AgentType.TUTOR, {}, big)
    assert check_preferences(AgentType.TUTOR, big, {"a": None}) == {}


def test_a_profile_of_stored_bad_preferences_falls_back_to_the_types_defaults() -> None:
    defaults = agent_profile(AgentType.TUTOR)
    state = _state({"max_iterations": "x", "temperature": 0.9, "response_policy": "maybe"})
    profile = profile_of(state)
    assert profile.max_iterations == defaults.max_iterations
    assert profile.response_policy == defaults.response_policy
    assert profile.temperature == 0.9  # the valid preferences still apply


def test_a_bad_override_falls_back_to_the_preferred_or_default_prompt() -> None:
    state = _state({}, override="x" * 20_001)
    assert profile_of(state).system_prompt == agent_profile(AgentType.TUTOR).system_prompt


async def test_the_use_case_refuses_a_bad_preference_before_anything_is_written() -> None:
    app = build_application(HostConfig(event_store_url=f"memory://{uuid4().hex}"))
    try:
        owner = Caller(user_id="u1")
        created = await app.execute(
            commands.GetOrCreateAgent.for_user("u1", AgentType.TUTOR, caller=owner)
        )
        with pytest.raises(InvalidCommand, match="max_iterations"):
            await app.handle(
                UpdatePreferences(
                    agent_id=created.agent_id, caller=owner, changes={"max_iterations": "x"}
                )
            )
        kept = await app.handle(
            UpdatePreferences(agent_id=created.agent_id, caller=owner, changes={"language": "fr"})
        )
        assert kept.version == created.version + 1
        state = await app.agent_state(created.agent_id)
        assert state is not None
        assert state.preferences == {"language": "fr"}
    finally:
        await app.close()


async def test_an_llm_session_drives_on_defaults_past_a_bad_stored_preference() -> None:
    app = build_application(HostConfig(event_store_url=f"memory://{uuid4().hex}"))
    try:
        agent_id = (
            await app.execute(commands.GetOrCreateAgent.for_user("u1", AgentType.THOUGHT))
        ).agent_id
        await app.execute(
            commands.UpdatePreferences(
                agent_id=agent_id, changes={"max_iterations": "x", "memory_sessions": "all"}
            )
        )
        async with running_fake_llm() as llm_server:
            provider = OpenAICompatibleProvider(llm_server.base_url, "scripted", max_attempts=1)
            run = ProactiveAgentExecutor(app, llm=provider)
            llm_server.script(TextReply(["Hello."]), TextReply(["Summary."]))
            await app.execute(commands.StartSession(agent_id=agent_id))
            assert await run.advance(agent_id) is Outcome.COMPLETED
    finally:
        await app.close()


def test_preferences_may_narrow_the_server_tools_but_never_widen_them() -> None:
    # The tutor is offered calculator and current_time (agent_types.yaml): an owner may drop
    # one, but not reach for a tool the operator installed for nobody's tutor.
    assert check_preferences(AgentType.TUTOR, {}, {"server_tools": ["calculator"]}) == {
        "server_tools": ["calculator"]
    }
    with pytest.raises(InvalidPreferences) as refused:
        check_preferences(AgentType.TUTOR, {}, {"server_tools": ["calculator", "spy"]})
    assert set(refused.value.problems) == {"server_tools"}
    assert "spy" in refused.value.problems["server_tools"]
