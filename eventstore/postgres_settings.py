"""PostgreSQL event store timeouts, from AGENTHOST_POSTGRES_* environment variables or a .env file.

Every append holds the store's one advisory lock: without these a client that freezes or loses
its network mid-append holds it, and blocks every write of the deployment, for hours.
"""

from __future__ import annotations

from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class PostgresSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AGENTHOST_POSTGRES_", env_file=".env", extra="ignore"
    )

    lock_timeout_ms: int = Field(
        default=5000, ge=1, le=600_000, description="longest wait for a lock (the append lock)"
    )
    statement_timeout_ms: int = Field(default=10_000, ge=1, le=3_600_000)
    idle_in_transaction_timeout_ms: int = Field(
        default=5000,
        ge=1,
        le=600_000,
        description="the server ends a session that stalls inside a transaction, freeing its locks",
    )
    keepalives_idle_s: int = Field(default=10, ge=1, le=7200)
    keepalives_interval_s: int = Field(default=5, ge=1, le=600)
    keepalives_count: int = Field(default=3, ge=1, le=100)
    tcp_user_timeout_ms: int = Field(
        default=30_000, ge=1, le=3_600_000, description="a silent server is given up after this"
    )

    def conninfo(self, dsn: str) -> str:
        """``dsn`` with these settings; ``options`` already in it come last, so they win."""
        options = (
            f"-c lock_timeout={self.lock_timeout_ms} "
            f"-c statement_timeout={self.statement_timeout_ms} "
            f"-c idle_in_transaction_session_timeout={self.idle_in_transaction_timeout_ms}"
        )
        own = conninfo_to_dict(dsn).get("options")
        return make_conninfo(
            dsn,
            options=f"{options} {own}" if own else options,
            keepalives=1,
            keepalives_idle=self.keepalives_idle_s,
            keepalives_interval=self.keepalives_interval_s,
            keepalives_count=self.keepalives_count,
            tcp_user_timeout=self.tcp_user_timeout_ms,
        )
