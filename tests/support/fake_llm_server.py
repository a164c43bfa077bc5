"""A real HTTP server that speaks streaming chat completions and plays back scripted replies.

Tests of the LLM provider go over real sockets (no patched httpx), so timeouts, dropped
connections and cancellation behave as they do against OpenAI, Ollama or vLLM. The server runs
uvicorn in a thread with its own event loop: a test that blocks or cancels its own loop cannot
stall the server, and the server's sleeps cannot delay the test.

    async with running_fake_llm() as llm:
        llm.script(HttpError(503), TextReply(["Hel", "lo"]))
        provider = OpenAICompatibleProvider(llm.base_url, "fake-model")
        ...
        assert llm.requests[1].body["stream"] is True
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Self

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .threaded_server import serving

DEFAULT_USAGE: Mapping[str, int] = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}


@dataclass(frozen=True)
class TextReply:
    """An assistant message streamed as these content chunks."""

    chunks: Sequence[str]
    finish_reason: str = "stop"
    pace_s: float = 0.0
    """Pause between chunks: a slow model, whose text a live viewer sees arrive."""


@dataclass(frozen=True)
class ScriptedCall:
    """One tool call; ``fragments`` is the argument text exactly as it will be streamed."""

    id: str
    name: str
    fragments: Sequence[str]

    @classmethod
    def split(cls, id: str, name: str, arguments: Mapping[str, Any], pieces: int = 3) -> Self:
        """The JSON of ``arguments`` cut into ``pieces`` fragments, mid-token where it falls."""
        text = json.dumps(arguments)
        size = -(-len(text) // pieces)
        return cls(id, name, [text[i : i + size] for i in range(0, len(text), size)])


@dataclass(frozen=True)
class ToolCallReply:
    """Tool calls streamed OpenAI style: a header chunk (index, id, name), then fragments.

    ``interleave`` sends every header first and then the fragments round-robin, which the
    protocol allows and which only index-based assembly gets right.
    """

    calls: Sequence[ScriptedCall]
    content: Sequence[str] = ()
    interleave: bool = False
    pace_s: float = 0.0


@dataclass(frozen=True)
class HttpError:
    status: int
    body: str = '{"error": {"message": "scripted failure", "type": "server_error"}}'
    retry_after: str | None = None


@dataclass(frozen=True)
class Stall:
    """Sleep ``seconds`` (ended early if the client leaves): before the status line when
    ``after_chunks`` is empty, else after streaming those content chunks."""

    seconds: float
    after_chunks: Sequence[str] = ()


@dataclass(frozen=True)
class Drop:
    """Stream these content chunks, then close the connection mid-response."""

    after_chunks: Sequence[str]


@dataclass(frozen=True)
class RawReply:
    """A verbatim 200 response, for replies outside the protocol."""

    body: str
    content_type: str = "application/json"


Reply = TextReply | ToolCallReply | HttpError | Stall | Drop | RawReply


@dataclass(frozen=True)
class RecordedRequest:
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class FakeLlmServer:
    """The scripted replies still to play and everything the server has seen."""

    base_url: str = ""
    requests: list[RecordedRequest] = field(default_factory=list)
    disconnects: int = 0
    """Stalls cut short because the client closed the connection."""
    _script: deque[Reply] = field(default_factory=deque)

    def script(self, *replies: Reply) -> None:
        """Queue replies; each request consumes the next one."""
        self._script.extend(replies)

    async def wait_for_disconnects(self, count: int, timeout_s: float = 2.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.disconnects < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"server saw {self.disconnects} disconnects, not {count}")
            await asyncio.sleep(0.01)

    async def _chat_completions(self, request: Request) -> Response:
        body = json.loads(await request.body())
        self.requests.append(RecordedRequest(body=body, headers=dict(request.headers)))
        if not self._script:
            return JSONResponse(
                {"error": {"message": "fake LLM server: no scripted reply left"}}, status_code=418
            )
        reply = self._script.popleft()
        if isinstance(reply, HttpError):
            headers = {"retry-after": reply.retry_after} if reply.retry_after else None
            return Response(
                reply.body, reply.status, headers=headers, media_type="application/json"
            )
        if isinstance(reply, RawReply):
            return Response(reply.body, media_type=reply.content_type)
        return _Playback(self, reply, _Chunks(str(body.get("model", "")), body))


class _Chunks:
    """Serialises chat.completion.chunk events for one request."""

    def __init__(self, model: str, request_body: Mapping[str, Any]) -> None:
        self._model = model
        self._usage = bool(request_body.get("stream_options", {}).get("include_usage"))

    def event(self, delta: Mapping[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        return self._data({"choices": [choice]})

    def opening(self, content: Sequence[str]) -> list[bytes]:
        """A keep-alive comment, the role chunk, then content chunks."""
        parts = [b": keep-alive\n\n", self.event({"role": "assistant", "content": ""})]
        return parts + [self.event({"content": text}) for text in content]

    def closing(self, finish_reason: str) -> list[bytes]:
        parts = [self.event({}, finish_reason)]
        if self._usage:
            parts.append(self._data({"choices": [], "usage": dict(DEFAULT_USAGE)}))
        return [*parts, b"data: [DONE]\n\n"]

    def tool_calls(self, reply: ToolCallReply) -> list[bytes]:
        headers = [
            self._call_delta(index, {"id": call.id, "type": "function"}, name=call.name)
            for index, call in enumerate(reply.calls)
        ]
        fragments = [
            [self._call_delta(index, {}, arguments=text) for text in call.fragments]
            for index, call in enumerate(reply.calls)
        ]
        if reply.interleave:
            return headers + list(_round_robin(fragments))
        return [
            part for header, own in zip(headers, fragments, strict=True) for part in [header, *own]
        ]

    def _call_delta(
        self, index: int, extra: Mapping[str, Any], *, name: str | None = None, arguments: str = ""
    ) -> bytes:
        function = {"arguments": arguments} if name is None else {"name": name, "arguments": ""}
        return self.event({"tool_calls": [{"index": index, **extra, "function": function}]})

    def _data(self, payload: Mapping[str, Any]) -> bytes:
        chunk = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": self._model,
            **payload,
        }
        return b"data: " + json.dumps(chunk).encode() + b"\n\n"


def _round_robin(lists: Sequence[Sequence[bytes]]) -> Iterator[bytes]:
    for position in range(max((len(items) for items in lists), default=0)):
        yield from (items[position] for items in lists if position < len(items))


class _Playback(Response):
    """Plays one streamed reply straight onto the ASGI channel, watching for the client leaving
    (Starlette's StreamingResponse hides both the early close and the disconnect)."""

    def __init__(
        self,
        server: FakeLlmServer,
        reply: TextReply | ToolCallReply | Stall | Drop,
        chunks: _Chunks,
    ) -> None:
        super().__init__()
        self._server, self._reply, self._chunks = server, reply, chunks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gone = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        watcher = asyncio.create_task(watch())
        try:
            await self._play(send, gone)
        finally:
            watcher.cancel()

    async def _play(self, send: Send, gone: asyncio.Event) -> None:
        reply, chunks = self._reply, self._chunks
        if (
            isinstance(reply, Stall)
            and not reply.after_chunks
            and await self._stall(reply.seconds, gone)
        ):
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream; charset=utf-8")],
            }
        )
        if isinstance(reply, TextReply):
            parts = chunks.opening(reply.chunks) + chunks.closing(reply.finish_reason)
        elif isinstance(reply, ToolCallReply):
            parts = [*chunks.opening(reply.content), *chunks.tool_calls(reply)]
            parts += chunks.closing("tool_calls")
        elif isinstance(reply, Drop):
            for part in chunks.opening(reply.after_chunks):
                await send({"type": "http.response.body", "body": part, "more_body": True})
            return  # uvicorn closes the connection of a response left incomplete
        else:
            for part in chunks.opening(reply.after_chunks):
                await send({"type": "http.response.body", "body": part, "more_body": True})
            if await self._stall(reply.seconds, gone):
                return
            parts = chunks.closing("stop")
        pace = reply.pace_s if isinstance(reply, TextReply | ToolCallReply) else 0.0
        for part in parts:
            await send({"type": "http.response.body", "body": part, "more_body": True})
            if pace and await self._stall(pace, gone):
                return
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _stall(self, seconds: float, gone: asyncio.Event) -> bool:
        """Sleep; True if the client left meanwhile (and the reply should be abandoned)."""
        try:
            await asyncio.wait_for(gone.wait(), seconds)
        except TimeoutError:
            return False
        self._server.disconnects += 1
        return True


@contextmanager
def serving_fake_llm() -> Iterator[FakeLlmServer]:
    """Start the server on a free 127.0.0.1 port; ``base_url`` ends in ``/v1``."""
    server = FakeLlmServer()
    app = Starlette(
        routes=[Route("/v1/chat/completions", server._chat_completions, methods=["POST"])]
    )
    with serving(app, "fake-llm") as base:
        server.base_url = f"{base}/v1"
        yield server


@asynccontextmanager
async def running_fake_llm() -> AsyncIterator[FakeLlmServer]:
    """``serving_fake_llm`` for async tests: starting and stopping stay off their loop."""
    stack = ExitStack()
    server = await asyncio.to_thread(stack.enter_context, serving_fake_llm())
    try:
        yield server
    finally:
        await asyncio.to_thread(stack.close)
