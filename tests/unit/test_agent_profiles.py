"""Agent types get their defaults from data; preferences and the override win, in that order."""

from __future__ import annotations

import pytest

from domain.enums import AgentType
from execution.agent_profiles import DEFAULT_KEY, agent_profile, type_defaults


@pytest.mark.parametrize("agent_type", list(AgentType))
def test_every_agent_type_has_a_valid_profile(agent_type: AgentType) -> None:
    profile = agent_profile(agent_type)
    assert profile.system_prompt
    assert profile.max_iterations >= 1


def test_tutor_thought_and_evaluator_have_their_own_prompts() -> None:
    prompts = {
        t: agent_profile(AgentType(t)).system_prompt for t in ("tutor", "thought", "evaluator")
    }
    assert len(set(prompts.values())) == 3
    assert agent_profile(AgentType.COACH).system_prompt not in prompts.values()
    assert agent_profile(AgentType.THOUGHT).temperature == 0.7


def test_a_field_a_type_leaves_out_falls_back_to_the_default() -> None:
    assert "max_iterations" not in type_defaults()[AgentType.CONNECTOR.value]
    assert (
        agent_profile(AgentType.CONNECTOR).max_iterations
        == type_defaults()[DEFAULT_KEY]["max_iterations"]
    )


def test_preferences_override_the_type_and_the_override_wins_for_the_prompt() -> None:
    preferred = agent_profile(
        AgentType.TUTOR, {"max_iterations": 3, "language": "fr", "theme": "dark"}
    )
    assert (preferred.max_iterations, preferred.language) == (3, "fr")
    overridden = agent_profile(AgentType.TUTOR, {"system_prompt": "pref"}, "override")
    assert overridden.system_prompt == "override"
    assert agent_profile(AgentType.TUTOR, {"system_prompt": "pref"}).system_prompt == "pref"


def test_a_preference_of_the_wrong_type_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="max_iterations"):
        agent_profile(AgentType.TUTOR, {"max_iterations": "many"})
