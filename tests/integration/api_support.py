"""Shared by the HTTP tests on Serve: a deployment of the API on the shared Ray instance (dev
tokens, SSE reader and shared steps: ``tests.support.api_client``, ``tests.support.api_flows``)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx
from ray import serve

from actors.settings import Settings
from execution.llm.settings import LlmSettings
from serve_app.deployment import deploy, settings_env
from serve_app.settings import ApiSettings
from tests.support.api_client import SECRET

from .conftest import kill_namespace, make_settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def deployed_api(
    workdir: Path,
    replicas: int = 1,
    auth_env: Mapping[str, str] | None = None,
    llm: LlmSettings | None = None,
) -> Iterator[tuple[str, Settings]]:
    """The API on Serve (with its projector), torn down afterwards: (base URL, settings).

    Tokens are checked against SECRET unless ``auth_env`` (AGENTHOST_AUTH_*) says otherwise.
    With ``llm``, sessions without a template are driven by that model.
    """
    settings = make_settings(workdir, **({"llm": llm} if llm else {}))
    api = ApiSettings(port=free_port(), max_body_bytes=4096, replicas=replicas)
    env = {
        **settings_env(settings),
        **(auth_env if auth_env is not None else {"AGENTHOST_AUTH_JWT_SECRET": SECRET}),
        "AGENTHOST_API_MAX_BODY_BYTES": str(api.max_body_bytes),
    }
    url = deploy(api, settings, env)
    try:
        yield url, settings
    finally:
        serve.shutdown()
        kill_namespace(settings.ray_namespace)


@asynccontextmanager
async def client(url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        yield http
