"""Shared by the HTTP tests: a Serve deployment of the API on the shared Ray instance, dev
tokens, and a minimal SSE reader."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx
from pydantic import SecretStr
from ray import serve

from actors.projector_actor import ProjectorClient
from actors.settings import Settings
from execution.llm.settings import LlmSettings
from serve_app.auth import AuthSettings, mint_dev_token
from serve_app.deployment import deploy, settings_env
from serve_app.settings import ApiSettings

from .conftest import kill_namespace, make_settings

SECRET = "test-secret-" + "x" * 32
PROBLEM = "application/problem+json"


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
    ProjectorClient(settings).handle  # noqa: B018 - start the projector
    url = deploy(api, env)
    try:
        yield url, settings
    finally:
        serve.shutdown()
        kill_namespace(settings.ray_namespace)


@asynccontextmanager
async def client(url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        yield http


def token(user: str, *roles: str) -> str:
    return mint_dev_token(AuthSettings(jwt_secret=SecretStr(SECRET)), user, roles=roles)


def as_user(user: str, *roles: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(user, *roles)}"}


async def read_sse(
    http: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    *,
    stop_after: int | None = None,
) -> list[dict[str, str]]:
    """The events of one SSE connection (comments, pings and field-only blocks such as
    ``retry:`` skipped), until it ends or ``stop_after`` events have arrived (then the client
    disconnects)."""
    events: list[dict[str, str]] = []
    current: dict[str, str] = {}
    async with http.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if not line:
                if "data" in current:
                    events.append(current)
                current = {}
                if stop_after is not None and len(events) >= stop_after:
                    break
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            current[name] = value.removeprefix(" ")
    return events
