"""The domain's list of profile preference keys (only the owner and admins set them) is the
executor's profile, less the personal keys: a new profile field cannot slip past the check."""

from __future__ import annotations

from domain.access import MANAGED_PREFERENCE_KEYS
from execution.agent_profiles import AgentProfile

PERSONAL_PROFILE_KEYS = {"language"}
"""Profile fields every member who may use the agent sets for themself."""


def test_managed_keys_are_the_profile_fields_but_the_personal_ones() -> None:
    profile = set(AgentProfile.model_fields)
    assert profile >= PERSONAL_PROFILE_KEYS
    assert profile - PERSONAL_PROFILE_KEYS == MANAGED_PREFERENCE_KEYS, (
        "a new AgentProfile field: add it to domain.access.MANAGED_PREFERENCE_KEYS, or here if "
        "any member may set it"
    )
