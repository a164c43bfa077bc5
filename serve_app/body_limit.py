"""A request body size limit, enforced before the route runs and answered with the 413 problem."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serve_app.problems import BodyTooLarge, problem_for


class MaxBodySizeMiddleware:
    """Refuses request bodies over ``max_bytes`` with a 413 before the route runs.

    A declared ``Content-Length`` over the limit is refused without reading a byte; a chunked
    body is counted as it arrives and refused at the first chunk past the limit. Pure ASGI, not
    ``BaseHTTPMiddleware``, so streaming responses (SSE) pass through unbuffered.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            # Outside the app's exception handlers: answer here, as the handler would.
            response = problem_for(BodyTooLarge(self.max_bytes), Request(scope))
            await response(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, counting_receive, send)


def _declared_length(scope: Scope) -> int | None:
    """The Content-Length header, if any and numeric (the server refuses a malformed one)."""
    try:
        return int(Headers(scope=scope)["content-length"])
    except (KeyError, ValueError):
        return None
