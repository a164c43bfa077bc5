"""How each agent type behaves by default, and how an agent's preferences override that.

Defaults are data (``agent_types.yaml``), so an operator tunes prompts without touching code;
an agent's own preferences (same keys) win over its type's defaults, and the agent's
``system_prompt_override`` wins over both for the prompt.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib import resources
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from domain.enums import AgentType
from domain.state import AgentState

DEFAULT_KEY = "default"


class AgentProfile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    system_prompt: str = Field(min_length=1)
    max_iterations: int = Field(ge=1, le=100)
    memory_sessions: int = Field(ge=0, le=50)
    """How many past session summaries go into a new session's context."""
    temperature: float | None = Field(default=None, ge=0, le=2)
    default_template: str | None = None
    """Template a session of this type runs when no LLM is configured and none is named."""
    server_tools: tuple[str, ...] = ()
    language: str | None = None
    """Preferred language of the user, if known: added to the system prompt."""
    response_policy: Literal["reject", "queue"] = "reject"
    """An answer that arrives while the executor is still working on the session: refused
    (409, the client shows the state and tries again) or held until the executor rests,
    then applied in arrival order."""


@functools.cache
def type_defaults() -> dict[str, dict[str, Any]]:
    """The packaged defaults, keyed by agent type value (plus ``default``); read once."""
    text = resources.files(__package__).joinpath("agent_types.yaml").read_text("utf-8")
    raw = yaml.safe_load(text)
    if not isinstance(raw, dict) or DEFAULT_KEY not in raw:
        raise ValueError("agent_types.yaml must map agent types to settings, with a 'default'")
    unknown = set(raw) - {DEFAULT_KEY, *(t.value for t in AgentType)}
    if unknown:
        raise ValueError(f"agent_types.yaml names unknown agent types: {sorted(unknown)}")
    return {key: dict(value) for key, value in raw.items()}


def agent_profile(
    agent_type: AgentType,
    preferences: Mapping[str, Any] | None = None,
    system_prompt_override: str | None = None,
) -> AgentProfile:
    """The effective profile: packaged default < type default < preferences < override.

    Unknown preference keys are ignored (preferences also hold UI settings); a preference of
    the wrong type raises ValueError naming it, so a bad value is refused when it is set.
    """
    defaults = type_defaults()
    merged: dict[str, Any] = {**defaults[DEFAULT_KEY], **defaults.get(agent_type.value, {})}
    for key in AgentProfile.model_fields:
        if preferences is not None and key in preferences:
            merged[key] = preferences[key]
    if system_prompt_override:
        merged["system_prompt"] = system_prompt_override
    try:
        return AgentProfile.model_validate(merged)
    except ValidationError as error:
        raise ValueError(f"invalid agent preferences for {agent_type.value}: {error}") from error


def profile_of(state: AgentState) -> AgentProfile:
    """The effective profile of an agent, from its type, preferences and prompt override."""
    return agent_profile(state.agent_type, state.preferences, state.system_prompt_override)
