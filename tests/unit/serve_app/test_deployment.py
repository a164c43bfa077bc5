"""Replicas rebuild the launcher's settings from the environment it ships them."""

from __future__ import annotations

import os

import pytest
from pydantic import SecretStr

from actors.settings import Settings
from execution.llm.settings import LlmSettings
from serve_app.deployment import settings_env


@pytest.mark.parametrize(
    "llm",
    [
        LlmSettings(base_url=None),
        LlmSettings(base_url="http://llm:8000/v1", model="m", api_key=SecretStr("k"), timeout_s=9),
    ],
)
def test_settings_survive_the_trip_through_the_replica_environment(
    monkeypatch: pytest.MonkeyPatch, llm: LlmSettings
) -> None:
    launcher = Settings(
        event_store_url="postgresql://db/app?schema=a",
        read_model_url="sqlite:////srv/read.db",
        ray_namespace="prod",
        placement="dedicated",
        hosts=7,
        snapshot_every=25,
        llm=llm,
    )
    for name in [n for n in os.environ if n.startswith("AGENTHOST_")]:
        monkeypatch.delenv(name)
    for name, value in settings_env(launcher).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir("/")  # no .env file may fill in anything
    assert Settings() == launcher
