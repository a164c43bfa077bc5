"""Wires one application from plain settings: its store, its LLM, its server tools.

The one place that turns configuration into collaborators (as ``bootstrap.py`` does in
*Architecture Patterns with Python*): host actors, in-process tests and benchmarks all build
their application here, so they run exactly the same code.
"""

from __future__ import annotations

from functools import partial

from pydantic import BaseModel, ConfigDict, Field

from application.service import AgentApplication
from eventstore.factory import open_event_store
from execution.llm.settings import LlmSettings, provider_from_settings
from execution.server_tools import ServerToolRegistry


class HostConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    event_store_url: str
    snapshot_every: int = 100
    idle_timeout_s: float = 300.0
    max_activations: int = 10_000
    llm: LlmSettings = Field(default_factory=lambda: LlmSettings(base_url=None))
    """The executor's LLM (no base URL: templated sessions only)."""
    exit_when_idle: bool = False
    """The host leaves for good once it holds nothing (dedicated placement: one actor per
    agent, so an idle agent would otherwise keep a process forever)."""


def build_application(config: HostConfig) -> AgentApplication:
    return AgentApplication(
        partial(open_event_store, config.event_store_url),
        snapshot_every=config.snapshot_every,
        idle_timeout_s=config.idle_timeout_s,
        max_activations=config.max_activations,
        llm=provider_from_settings(config.llm),
        tools=ServerToolRegistry.with_installed(),
    )
