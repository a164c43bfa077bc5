"""HTTP front settings, from AGENTHOST_API_* environment variables or a .env file."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AGENTHOST_API_", env_file=".env", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    replicas: int = Field(
        default=2,
        ge=1,
        description="Serve replicas of the API: with two, a dying one costs only its requests",
    )
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    read_your_writes_timeout_s: float = Field(
        default=5.0, gt=0, description="how long a query waits for the projector to catch up"
    )
    sse_heartbeat_s: float = Field(default=15.0, gt=0, description="ping on idle SSE streams")
    web_dir: Path = Field(
        default=Path(__file__).resolve().parent.parent / "web" / "dist",
        description="the built web UI, served under /",
    )
    sse_retry_ms: int = Field(
        default=1000,
        ge=100,
        description="how soon a dropped client reconnects (the SSE retry field; browsers: 3 s)",
    )
    sse_poll_interval_s: float = Field(
        default=0.1, gt=0, description="how often a stream looks for new events"
    )
