"""Service settings, from AGENTHOST_* environment variables or a .env file."""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from execution.llm.settings import LlmSettings


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AGENTHOST_", env_file=".env", extra="ignore")

    event_store_url: str = "sqlite:///var/agenthost/events.db"
    read_model_url: str = "sqlite:///var/agenthost/read_model.db"

    placement: Literal["sharded", "dedicated"] = "sharded"
    hosts: int = Field(default=2, ge=1, description="AgentHost actors when sharded")
    ray_namespace: str = "agenthost"
    snapshot_every: int = Field(default=100, ge=1)
    idle_timeout_s: float = Field(default=300.0, gt=0)
    max_activations: int = Field(default=10_000, ge=1)
    actor_retry_timeout_s: float = Field(
        default=60.0, gt=0, description="how long a caller retries while a host restarts"
    )
    sweep_interval_s: float = Field(
        default=60.0, gt=0, description="how often sessions nobody drives are advanced"
    )
    llm: LlmSettings = Field(default_factory=LlmSettings)
    """AGENTHOST_LLM_*: read where the service starts and shipped to every host."""

    @property
    def generation(self) -> str:
        """A digest of every setting the actors are created with, in each actor's name: a
        redeploy that changes one starts new actors instead of reusing old ones that keep the
        old values. Not the namespace (it names the deployment) nor the callers' own retry
        budget. Secrets count (a rotated key must reach the hosts) but only as a digest."""
        shaping = self.model_dump(exclude={"ray_namespace", "actor_retry_timeout_s"})
        canonical = json.dumps(shaping, sort_keys=True, default=_revealed)
        return hashlib.blake2b(canonical.encode(), digest_size=5).hexdigest()


def _revealed(value: object) -> str:
    return value.get_secret_value() if isinstance(value, SecretStr) else str(value)
