"""The Ray Serve deployment of the API: each replica builds the app from its environment.

Replicas read the same AGENTHOST_* settings as the launcher (``deploy`` ships them in the
replicas' runtime environment), so scaling out is only a matter of ``AGENTHOST_API_REPLICAS``.
"""

from __future__ import annotations

import os

from fastapi import FastAPI
from pydantic import SecretStr
from ray import serve

from actors.projector_actor import ProjectorClient
from actors.rollout import roll_out
from actors.settings import Settings
from serve_app.app import create_app
from serve_app.auth import AuthSettings
from serve_app.backend import open_backend
from serve_app.settings import ApiSettings

APP_NAME = "agenthost"
ENV_PREFIX = "AGENTHOST_"


def build_app() -> FastAPI:
    settings, api, auth = Settings(), ApiSettings(), AuthSettings()
    return create_app(
        lambda: open_backend(settings, api, auth), api.max_body_bytes, api.web_dir, auth
    )


@serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=200)
@serve.ingress(build_app)
class AgentApi:
    """One replica of the HTTP front (the routes live in ``serve_app.agents``)."""


def deploy(api: ApiSettings, settings: Settings, env: dict[str, str] | None = None) -> str:
    """Roll out ``settings``' generation, start its projector, then Serve's HTTP proxy and the
    API on the connected Ray cluster; returns its URL.

    The rollout first (``actors.rollout``): the actors of any older generation are gone
    before this one's start, so no agent is ever held by two hosts. ``env`` (default: this
    process's AGENTHOST_* variables; it must hold ``settings``) is what every replica sees.
    """
    shipped = env if env is not None else _agenthost_env()
    roll_out(settings)
    ProjectorClient(settings).handle  # noqa: B018 - this generation's projector, started now
    serve.start(http_options={"host": api.host, "port": api.port})
    serve.run(
        AgentApi.options(  # type: ignore[attr-defined]
            num_replicas=api.replicas,
            ray_actor_options={"num_cpus": 0, "runtime_env": {"env_vars": shipped}},
        ).bind(),
        name=APP_NAME,
        route_prefix="/",
    )
    return f"http://{api.host}:{api.port}"


def settings_env(settings: Settings) -> dict[str, str]:
    """``settings`` as the AGENTHOST_* variables a replica reads them back from."""
    env = {
        f"{ENV_PREFIX}{name.upper()}": str(value)
        for name, value in settings.model_dump(exclude={"llm"}).items()
    }
    for name, value in settings.llm.model_dump().items():
        if value is not None:
            secret = value.get_secret_value() if isinstance(value, SecretStr) else value
            env[f"{ENV_PREFIX}LLM_{name.upper()}"] = str(secret)
    return env


def _agenthost_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key.startswith(ENV_PREFIX)}
