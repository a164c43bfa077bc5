"""Where the legacy API lives, and the deprecation headers every one of its answers carries."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import format_datetime

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PREFIX = "/api/session"

DEPRECATED_SINCE = datetime(2026, 11, 25, tzinfo=UTC)
"""The day /api/agents replaced this API."""
SUNSET_AT = datetime(2027, 6, 1, tzinfo=UTC)
"""About six months later, these routes go away."""
SUCCESSOR = "/api/agents"
DEPRECATION_HEADERS: Mapping[str, str] = {
    "Deprecation": f"@{int(DEPRECATED_SINCE.timestamp())}",  # RFC 9745
    "Sunset": format_datetime(SUNSET_AT, usegmt=True),  # RFC 8594
    "Link": f'<{SUCCESSOR}>; rel="successor-version"',
}
_RAW_HEADERS = [(k.lower().encode(), v.encode()) for k, v in DEPRECATION_HEADERS.items()]


class DeprecationHeaders:
    """Adds the deprecation headers to every answer under the legacy prefix, errors included:
    problem answers are rendered by the app's exception handlers, and unknown sub-paths, 405s
    and 413s are answered before any route runs, so no route or dependency could add them.
    Pure ASGI, so SSE passes through unbuffered.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path != PREFIX and not path.startswith(PREFIX + "/"):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *_RAW_HEADERS]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
