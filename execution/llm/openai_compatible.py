"""OpenAI-compatible chat completions over plain httpx: streaming, tool calls, retries.

Why httpx and no vendor SDK: the chat-completions wire protocol is what OpenAI, Ollama, vLLM,
llama.cpp server and LiteLLM all speak, so one small client against the protocol serves every
one of them without a vendor SDK (and its dependency tree) next to Ray. It also gives direct
control over what this host cares about: which failures are retried, never replaying a content
delta the browser has already shown, and closing the stream at once when the executor is
cancelled.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn
from uuid import uuid4

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from domain.execution_state import LlmMessage, ToolCall
from execution.llm.port import LlmRejected, LlmTurn, LlmUnavailable, ToolSpec

log = logging.getLogger(__name__)

_RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
_RETRY_AFTER_CAP_S = 30.0
_SERVER_TEXT_LIMIT = 300


class _Transient(Exception):
    """An attempt failed in a way a later attempt may not (overload, network, timeout)."""

    def __init__(
        self, message: str, status_code: int | None = None, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.retry_after_s = retry_after_s


class _Lenient(BaseModel):
    """Servers add fields freely: read the ones the protocol defines, ignore the rest."""

    model_config = ConfigDict(extra="ignore")


class _FunctionDelta(_Lenient):
    name: str | None = None
    arguments: str | None = None


class _ToolCallDelta(_Lenient):
    index: int
    id: str | None = None
    function: _FunctionDelta | None = None


class _Delta(_Lenient):
    content: str | None = None
    tool_calls: list[_ToolCallDelta] | None = None


class _Choice(_Lenient):
    delta: _Delta = Field(default_factory=_Delta)
    finish_reason: str | None = None


class _Chunk(_Lenient):
    choices: list[_Choice] = Field(default_factory=list)
    usage: dict[str, Any] | None = None
    error: dict[str, Any] | str | None = None


@dataclass
class _PartialCall:
    """A tool call as it streams: id and name come first, the arguments in fragments."""

    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass
class _Progress:
    """Whether content reached the caller: after that a retry would show it twice."""

    on_delta: Callable[[str], Awaitable[None]] | None
    published: bool = False
    attempts: int = 0

    async def publish(self, text: str) -> None:
        if self.on_delta is None:
            return
        self.published = True
        await self.on_delta(text)


class OpenAICompatibleProvider:
    """``LlmProvider`` for any server exposing ``POST {base_url}/chat/completions``.

    ``timeout_s`` bounds every wait on the server (for the first byte, then between chunks),
    not the whole reply, so a long answer that keeps streaming is never cut off.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        timeout_s: float = 60.0,
        connect_timeout_s: float = 5.0,
        max_attempts: int = 4,
        temperature: float | None = None,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 8.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        url = httpx.URL(base_url.rstrip("/") + "/chat/completions")
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"LLM base_url must be an http(s) URL, got {base_url!r}")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._url = url
        self._where = f"{url.copy_with(userinfo=b'', query=None)} (model {model!r})"
        self._model = model
        self._api_key = api_key or None
        self._temperature = temperature
        self._max_attempts = max_attempts
        self._timeout = httpx.Timeout(timeout_s, connect=connect_timeout_s)
        self._backoff = wait_exponential_jitter(
            multiplier=backoff_initial_s, max=backoff_max_s, jitter=backoff_initial_s
        )
        self._headers = {"Accept": "text/event-stream"}
        if self._api_key is not None:
            self._headers["Authorization"] = f"Bearer {self._api_key}"
        self._owns_client = client is None
        self._client = client if client is not None else httpx.AsyncClient(timeout=self._timeout)

    async def aclose(self) -> None:
        """Close the connection pool, unless the caller lent us its client."""
        if self._owns_client:
            await self._client.aclose()

    async def complete(
        self,
        messages: Sequence[LlmMessage],
        tools: Sequence[ToolSpec],
        *,
        on_delta: Callable[[str], Awaitable[None]] | None = None,
    ) -> LlmTurn:
        body = self._request_body(messages, tools)
        progress = _Progress(on_delta)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._max_attempts),
            wait=self._wait,
            retry=retry_if_exception(
                lambda exc: isinstance(exc, _Transient) and not progress.published
            ),
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            turn: LlmTurn = await retrying(self._attempt, body, progress)
        except _Transient as exc:
            if progress.published:
                detail = "the stream broke after part of the reply was shown, not retried"
            else:
                detail = f"gave up after {progress.attempts} attempt(s)"
            raise LlmUnavailable(
                f"LLM unavailable ({detail}): {exc.message}", exc.status_code
            ) from exc
        return turn

    def _request_body(
        self, messages: Sequence[LlmMessage], tools: Sequence[ToolSpec]
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self._model,
            "messages": [_to_openai_message(message) for message in messages],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if tools:
            body["tools"] = [tool.to_openai() for tool in tools]
            body["tool_choice"] = "auto"
        if self._temperature is not None:
            body["temperature"] = self._temperature
        return body

    async def _attempt(self, body: dict[str, Any], progress: _Progress) -> LlmTurn:
        progress.attempts += 1
        try:
            async with self._client.stream(
                "POST", self._url, json=body, headers=self._headers, timeout=self._timeout
            ) as response:
                if response.status_code != 200:
                    await self._raise_for_status(response)
                content_type = response.headers.get("content-type", "")
                if "text/event-stream" not in content_type:
                    text = self._server_text((await response.aread()).decode(errors="replace"))
                    raise LlmRejected(
                        f"LLM reply unusable: {self._where} answered {content_type!r} instead "
                        "of an event stream (is base_url the API root, e.g. "
                        f"http://host:port/v1?): {text}",
                        response.status_code,
                    )
                return await self._read_stream(response, progress)
        except httpx.TimeoutException as exc:
            raise _Transient(f"{self._where} timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            reason = self._redact(str(exc)) or type(exc).__name__
            raise _Transient(f"connection to {self._where} failed: {reason}") from exc

    async def _raise_for_status(self, response: httpx.Response) -> NoReturn:
        status = response.status_code
        text = self._server_text((await response.aread()).decode(errors="replace"))
        message = f"HTTP {status} from {self._where}: {text}"
        if status in _RETRYABLE_STATUS:
            raise _Transient(message, status, _retry_after_s(response))
        if status >= 500:
            raise LlmUnavailable(f"LLM unavailable: {message}", status)
        raise LlmRejected(f"LLM rejected the request: {message}", status)

    async def _read_stream(self, response: httpx.Response, progress: _Progress) -> LlmTurn:
        turn = _TurnBuilder(self._where, self._redact)
        done = False
        async for line in response.aiter_lines():
            # Blank separators, ": keep-alive" comments and event:/id: fields carry nothing.
            if done or not line.startswith("data:"):
                continue
            data = line[len("data:") :].strip()
            if data == "[DONE]":
                done = True  # read on to the end of the body, so the connection can be reused
                continue
            try:
                chunk = _Chunk.model_validate_json(data)
            except ValidationError as exc:
                raise LlmRejected(
                    f"LLM reply unusable: {self._where} streamed a chunk outside the "
                    f"chat-completions protocol: {self._server_text(data)}"
                ) from exc
            if chunk.error is not None:
                raise _Transient(f"{self._where} failed mid-stream: {self._server_text(data)}")
            text = turn.add(chunk)
            if text:
                await progress.publish(text)
        if not done and turn.finish_reason is None:
            raise _Transient(f"{self._where} ended the stream before the reply was complete")
        return turn.build()

    def _wait(self, state: RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome is not None else None
        if isinstance(failure, _Transient) and failure.retry_after_s is not None:
            return failure.retry_after_s
        return self._backoff(state)

    def _log_retry(self, state: RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome is not None else None
        wait_s = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning(
            "LLM attempt %d/%d failed (%s); retrying in %.2fs",
            state.attempt_number,
            self._max_attempts,
            failure,
            wait_s,
        )

    def _server_text(self, text: str) -> str:
        """The server's own explanation, trimmed, with the API key blanked if it echoes it."""
        try:
            payload = json.loads(text)
        except ValueError:
            payload = None
        if isinstance(payload, dict):
            error = payload.get("error") or payload
            if isinstance(error, dict):
                error = error.get("message", error)
            text = error if isinstance(error, str) else json.dumps(error)
        return _trim(self._redact(" ".join(text.split())) or "(empty body)")

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, "[redacted]") if self._api_key else text


class _TurnBuilder:
    """Assembles the assistant turn from chunks: content in order, tool calls by ``index``."""

    def __init__(self, where: str, redact: Callable[[str], str]) -> None:
        self._where = where
        self._redact = redact
        self._content: list[str] = []
        self._calls: dict[int, _PartialCall] = {}
        self.finish_reason: str | None = None
        self._usage: dict[str, Any] | None = None

    def add(self, chunk: _Chunk) -> str | None:
        """Fold one chunk in; returns its content fragment, if any, for the caller to show."""
        if chunk.usage is not None:
            self._usage = chunk.usage
        if not chunk.choices:
            return None
        choice = chunk.choices[0]
        if choice.finish_reason is not None:
            self.finish_reason = choice.finish_reason
        for delta in choice.delta.tool_calls or ():
            partial = self._calls.setdefault(delta.index, _PartialCall())
            if delta.id:
                partial.id = delta.id
            if delta.function is not None:
                if delta.function.name:
                    partial.name = delta.function.name
                if delta.function.arguments:
                    partial.arguments.append(delta.function.arguments)
        if choice.delta.content:
            self._content.append(choice.delta.content)
        return choice.delta.content

    def build(self) -> LlmTurn:
        calls = tuple(self._tool_call(index, self._calls[index]) for index in sorted(self._calls))
        message = LlmMessage(role="assistant", content="".join(self._content), tool_calls=calls)
        return LlmTurn(message=message, finish_reason=self.finish_reason, usage=self._usage)

    def _tool_call(self, index: int, partial: _PartialCall) -> ToolCall:
        if not partial.name:
            raise LlmRejected(
                f"LLM reply unusable: {self._where} streamed tool call #{index} without a name"
            )
        raw = "".join(partial.arguments)
        try:
            arguments = json.loads(raw) if raw.strip() else {}
        except ValueError:
            arguments = None
        if not isinstance(arguments, dict):
            raise LlmRejected(
                f"LLM reply unusable: {self._where} streamed tool call {partial.name!r} whose "
                f"arguments are not a JSON object: {_trim(self._redact(raw))}"
            )
        # Some servers omit ids; the loop still needs one to pair the call with its result.
        call_id = partial.id or f"call_{uuid4().hex}"
        return ToolCall(id=call_id, name=partial.name, arguments=arguments)


def _to_openai_message(message: LlmMessage) -> dict[str, Any]:
    wire: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        wire["content"] = message.content or None
        wire["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
            }
            for call in message.tool_calls
        ]
    if message.tool_call_id is not None:
        wire["tool_call_id"] = message.tool_call_id
    if message.name is not None:
        wire["name"] = message.name
    return wire


def _retry_after_s(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds, capped; the HTTP-date form falls back to our own backoff."""
    try:
        seconds = float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None
    return min(seconds, _RETRY_AFTER_CAP_S) if seconds >= 0 else None


def _trim(text: str) -> str:
    return text if len(text) <= _SERVER_TEXT_LIMIT else text[: _SERVER_TEXT_LIMIT - 1] + "…"
