"""Shared by the HTTP tests, in-process or on Serve: dev tokens, the problem media type, and a
minimal SSE reader."""

from __future__ import annotations

import httpx
from pydantic import SecretStr

from serve_app.auth import AuthSettings, mint_dev_token

SECRET = "test-secret-" + "x" * 32
PROBLEM = "application/problem+json"


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
    disconnects).

    In-process (``httpx.ASGITransport``) the response arrives whole, so only streams that end
    by themselves can be read there."""
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
