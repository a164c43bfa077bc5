"""Which LLM the executor talks to, from AGENTHOST_LLM_* environment variables or a .env file.

No base URL means no LLM: the embedded default then runs templated sessions, which need no
model, so a fresh checkout works without any account or GPU.
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from execution.llm.port import LlmProvider


class LlmSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AGENTHOST_LLM_", env_file=".env", env_ignore_empty=True, extra="ignore"
    )

    base_url: str | None = Field(
        default=None, description="API root, e.g. http://127.0.0.1:11434/v1; unset = no LLM"
    )
    model: str = ""
    api_key: SecretStr | None = None
    timeout_s: float = Field(default=60.0, gt=0, description="per wait on the server")
    max_attempts: int = Field(default=4, ge=1)

    @model_validator(mode="after")
    def _model_named_when_configured(self) -> Self:
        if self.base_url is not None and not self.model:
            raise ValueError("AGENTHOST_LLM_MODEL is required when AGENTHOST_LLM_BASE_URL is set")
        return self


def provider_from_settings(settings: LlmSettings) -> LlmProvider | None:
    """The configured provider, or None when no LLM is configured (templated sessions)."""
    if settings.base_url is None:
        return None
    # Imported here: the HTTP client costs a restarting host ~0.3 s it need not pay when no
    # LLM is configured, and a host's restart time is how long its agents wait.
    from execution.llm.openai_compatible import OpenAICompatibleProvider

    return OpenAICompatibleProvider(
        settings.base_url,
        settings.model,
        settings.api_key.get_secret_value() if settings.api_key is not None else None,
        timeout_s=settings.timeout_s,
        max_attempts=settings.max_attempts,
    )
