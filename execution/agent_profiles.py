"""How each agent type behaves by default, and how an agent's preferences override that.

Defaults are data (``agent_types.yaml``), so an operator tunes prompts without touching code;
an agent's own preferences (same keys) win over its type's defaults, and the agent's
``system_prompt_override`` wins over both for the prompt.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Mapping
from importlib import resources
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from domain.enums import AgentType
from domain.state import AgentState
from execution.templates.loader import TemplateError, get_template

log = logging.getLogger(__name__)

DEFAULT_KEY = "default"
MAX_PREFERENCES = 64
"""Keys an agent's preferences may hold (profile keys and UI settings together)."""
MAX_PREFERENCES_BYTES = 32 * 1024
"""The whole preference map, as compact UTF-8 JSON: every preferences event holds all of it."""


class AgentProfile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    system_prompt: str = Field(min_length=1, max_length=20_000)
    max_iterations: int = Field(ge=1, le=100)
    memory_sessions: int = Field(ge=0, le=50)
    """How many past session summaries go into a new session's context."""
    temperature: float | None = Field(default=None, ge=0, le=2)
    default_template: str | None = None
    """Template a session of this type runs when no LLM is configured and none is named."""
    server_tools: tuple[str, ...] = Field(default=(), max_length=32)
    language: str | None = Field(default=None, max_length=64)
    """Preferred language of the user, if known: added to the system prompt."""
    response_policy: Literal["reject", "queue"] = "reject"
    """An answer that arrives while the executor is still working on the session: refused
    (409, the client shows the state and tries again) or held until the executor rests,
    then applied in arrival order."""

    @field_validator("default_template")
    @classmethod
    def _known_template(cls, template_id: str | None) -> str | None:
        """A session started on an unknown template would fail at its first step."""
        if template_id is not None:
            try:
                get_template(template_id)
            except TemplateError as error:
                raise ValueError(str(error)) from None
        return template_id


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


class InvalidPreferences(ValueError):
    """Preferences the profile refuses; ``problems`` maps each refused key to why."""

    def __init__(self, agent_type: AgentType, problems: Mapping[str, str]) -> None:
        self.problems = dict(problems)
        listed = "; ".join(f"{key}: {reason}" for key, reason in self.problems.items())
        super().__init__(f"invalid preferences for a {agent_type.value} agent: {listed}")


def agent_profile(
    agent_type: AgentType,
    preferences: Mapping[str, Any] | None = None,
    system_prompt_override: str | None = None,
) -> AgentProfile:
    """The effective profile: packaged default < type default < preferences < override.

    Unknown preference keys are ignored (preferences also hold UI settings); a value the
    profile refuses raises InvalidPreferences naming its key.
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
        problems = {
            str(detail["loc"][0]) if detail["loc"] else "preferences": _reason(detail["msg"])
            for detail in error.errors(include_url=False)
        }
        raise InvalidPreferences(agent_type, problems) from None


def profile_of(state: AgentState) -> AgentProfile:
    """The effective profile of an agent, from its type, preferences and prompt override.

    Preferences stored before they were checked may hold values the profile refuses: those
    keys fall back to the type's defaults (and a refused override to the preferred or default
    prompt), so a drive, an answer or the sweeper never fails on them; the owner sees them
    and may repair them.
    """
    try:
        return agent_profile(state.agent_type, state.preferences, state.system_prompt_override)
    except InvalidPreferences as error:
        log.warning("agent %s: preferences %s refused, defaults used", state.id, error)
        usable = {k: v for k, v in state.preferences.items() if k not in error.problems}
        override = None if "system_prompt" in error.problems else state.system_prompt_override
        return agent_profile(state.agent_type, usable, override)


def check_preferences(
    agent_type: AgentType,
    preferences: Mapping[str, Any],
    changes: Mapping[str, Any],
    system_prompt_override: str | None = None,
) -> dict[str, Any]:
    """The preferences once ``changes`` are merged in (``None`` removes a key, as the
    aggregate merges them); raises InvalidPreferences if a key the change sets is refused by
    the profile, if ``server_tools`` names a tool the agent type is not offered (preferences
    may narrow the operator's choice, never widen it), or if the change grows the map past
    ``MAX_PREFERENCES`` keys or ``MAX_PREFERENCES_BYTES``. A key refused before the change
    and left alone by it does not block it, nor does a map already past a bound that the
    change does not grow."""
    merged = dict(preferences)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    try:
        agent_profile(agent_type, merged, system_prompt_override)
    except InvalidPreferences as error:
        refused = {k: why for k, why in error.problems.items() if changes.get(k) is not None}
        if refused:
            raise InvalidPreferences(agent_type, refused) from None
    tools = changes.get("server_tools")
    if isinstance(tools, list | tuple):
        offered = agent_profile(agent_type).server_tools
        unoffered = sorted({str(tool) for tool in tools} - set(offered))
        if unoffered:
            why = f"not offered to {agent_type.value} agents: {', '.join(unoffered)}"
            raise InvalidPreferences(agent_type, {"server_tools": why})
    if len(merged) > max(MAX_PREFERENCES, len(preferences)):
        raise InvalidPreferences(
            agent_type, {"preferences": f"at most {MAX_PREFERENCES} keys may be kept"}
        )
    size = _json_bytes(merged)
    if size > MAX_PREFERENCES_BYTES and size > _json_bytes(preferences):
        raise InvalidPreferences(
            agent_type, {"preferences": f"at most {MAX_PREFERENCES_BYTES} bytes may be kept"}
        )
    return merged


def _reason(message: str) -> str:
    return message.removeprefix("Value error, ")


def _json_bytes(preferences: Mapping[str, Any]) -> int:
    text = json.dumps(dict(preferences), ensure_ascii=False, separators=(",", ":"))
    return len(text.encode("utf-8", "surrogatepass"))
