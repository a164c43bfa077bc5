"""The OpenAI-compatible provider over real HTTP against a scripted chat-completions server.

Nothing in httpx is patched: timeouts, dropped connections and cancellation are the real thing.
"""

from __future__ import annotations

import asyncio
import json
import pickle
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from pydantic import ValidationError

from domain.execution_state import LlmMessage, ToolCall
from execution.llm.openai_compatible import OpenAICompatibleProvider
from execution.llm.port import LlmError, LlmRejected, LlmUnavailable, ToolSpec
from execution.llm.settings import LlmSettings, provider_from_settings
from tests.support.fake_llm_server import (
    DEFAULT_USAGE,
    Drop,
    FakeLlmServer,
    HttpError,
    RawReply,
    Reply,
    ScriptedCall,
    Stall,
    TextReply,
    ToolCallReply,
    running_fake_llm,
)

API_KEY = "sk-test-0123456789abcdef"
HELLO = [LlmMessage(role="user", content="hello")]

MakeProvider = Callable[..., OpenAICompatibleProvider]


@pytest.fixture
async def llm() -> AsyncIterator[FakeLlmServer]:
    async with running_fake_llm() as server:
        yield server


@pytest.fixture
async def make_provider(llm: FakeLlmServer) -> AsyncIterator[MakeProvider]:
    """Providers against the fake server with test-sized backoff and timeouts, closed after."""
    made: list[OpenAICompatibleProvider] = []

    def make(**overrides: Any) -> OpenAICompatibleProvider:
        options: dict[str, Any] = {
            "timeout_s": 2.0,
            "backoff_initial_s": 0.001,
            "backoff_max_s": 0.01,
        }
        options.update(overrides)
        provider = OpenAICompatibleProvider(llm.base_url, "fake-model", **options)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.aclose()


class Deltas:
    """An ``on_delta`` callback that remembers what it was given."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self.arrived = asyncio.Event()

    async def __call__(self, text: str) -> None:
        self.received.append(text)
        self.arrived.set()


async def test_text_streams_deltas_in_order_and_assembles_the_message(
    llm: FakeLlmServer, make_provider: MakeProvider
) -> None:
    llm.script(TextReply(["Hel", "lo, ", "wor", "ld"]))
    deltas = Deltas()

    turn = await make_provider().complete(HELLO, [], on_delta=deltas)

    assert deltas.received == ["Hel", "lo, ", "wor", "ld"]
    assert turn.message == LlmMessage(role="assistant", content="Hello, world")
    assert turn.finish_reason == "stop"
    assert turn.usage == DEFAULT_USAGE


@pytest.mark.parametrize("interleave", [False, True])
async def test_parallel_tool_calls_are_assembled_from_fragments(
    llm: FakeLlmServer, make_provider: MakeProvider, interleave: bool
) -> None:
    weather = {"city": "Zürich", "days": 3, "units": {"temp": "C"}}
    search = {"query": "rain gear", "limit": 5}
    llm.script(
        ToolCallReply(
            [
                ScriptedCall.split("call_a", "get_weather", weather, pieces=4),
                ScriptedCall.split("call_b", "search", search, pieces=3),
            ],
            interleave=interleave,
        )
    )
    deltas = Deltas()

    turn = await make_provider().complete(HELLO, [], on_delta=deltas)

    assert turn.tool_calls == (
        ToolCall(id="call_a", name="get_weather", arguments=weather),
        ToolCall(id="call_b", name="search", arguments=search),
    )
    assert turn.message.content == ""
    assert turn.finish_reason == "tool_calls"
    assert deltas.received == []


@pytest.mark.parametrize("api_key", [API_KEY, None])
async def test_request_body_and_headers(
    llm: FakeLlmServer, make_provider: MakeProvider, api_key: str | None
) -> None:
    llm.script(TextReply(["ok"]))
    messages = [
        LlmMessage(role="system", content="You are a tutor."),
        LlmMessage(role="user", content="Quiz me."),
        LlmMessage(
            role="assistant",
            tool_calls=(ToolCall(id="call_1", name="show_choice", arguments={"options": [1, 2]}),),
        ),
        LlmMessage(role="tool", content='{"picked": 2}', tool_call_id="call_1", name="show_choice"),
    ]
    tool = ToolSpec(
        name="show_choice",
        description="Ask the user to pick one option.",
        parameters={"type": "object", "properties": {"options": {"type": "array"}}},
    )

    await make_provider(api_key=api_key, temperature=0.2).complete(messages, [tool])

    [request] = llm.requests
    assert request.body == {
        "model": "fake-model",
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.2,
        "tool_choice": "auto",
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "show_choice",
                    "description": "Ask the user to pick one option.",
                    "parameters": {"type": "object", "properties": {"options": {"type": "array"}}},
                },
            }
        ],
        "messages": [
            {"role": "system", "content": "You are a tutor."},
            {"role": "user", "content": "Quiz me."},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "show_choice", "arguments": '{"options": [1, 2]}'},
                    }
                ],
            },
            {
                "role": "tool",
                "content": '{"picked": 2}',
                "tool_call_id": "call_1",
                "name": "show_choice",
            },
        ],
    }
    if api_key is None:
        assert "authorization" not in request.headers
    else:
        assert request.headers["authorization"] == f"Bearer {API_KEY}"


async def test_without_tools_no_tool_fields_are_sent(
    llm: FakeLlmServer, make_provider: MakeProvider
) -> None:
    llm.script(TextReply(["ok"]))

    await make_provider().complete(HELLO, [])

    body = llm.requests[0].body
    assert "tools" not in body
    assert "tool_choice" not in body
    assert "temperature" not in body


async def test_a_503_is_retried_then_succeeds(
    llm: FakeLlmServer, make_provider: MakeProvider
) -> None:
    llm.script(HttpError(503), TextReply(["fine"]))
    deltas = Deltas()

    turn = await make_provider().complete(HELLO, [], on_delta=deltas)

    assert turn.message.content == "fine"
    assert deltas.received == ["fine"]
    assert len(llm.requests) == 2


async def test_a_429_waits_for_retry_after(llm: FakeLlmServer, make_provider: MakeProvider) -> None:
    llm.script(HttpError(429, retry_after="0.3"), TextReply(["fine"]))

    started = time.monotonic()
    turn = await make_provider().complete(HELLO, [])

    assert time.monotonic() - started >= 0.3
    assert turn.message.content == "fine"
    assert len(llm.requests) == 2


async def test_exhausted_retries_raise_unavailable_with_the_status(
    llm: FakeLlmServer, make_provider: MakeProvider
) -> None:
    llm.script(*[HttpError(503, body='{"error": {"message": "model is overloaded"}}')] * 3)

    with pytest.raises(LlmUnavailable) as raised:
        await make_provider(max_attempts=3).complete(HELLO, [])

    assert raised.value.status_code == 503
    assert "503" in str(raised.value)
    assert "model is overloaded" in str(raised.value)
    assert "3 attempt" in str(raised.value)
    assert len(llm.requests) == 3


async def test_a_400_is_rejected_without_retry(
    llm: FakeLlmServer, make_provider: MakeProvider
) -> None:
    llm.script(
        HttpError(400, body='{"error": {"message": "tools[0] is not a valid schema"}}'),
        TextReply(["never sent"]),
    )

    with pytest.raises(LlmRejected) as raised:
        await make_provider().complete(HELLO, [])

    assert raised.value.status_code == 400
    assert "400" in str(raised.value)
    assert "tools[0] is not a valid schema" in str(raised.value)
    assert len(llm.requests) == 1
    # Errors cross Ray process boundaries intact.
    copy = pickle.loads(pickle.dumps(raised.value))
    assert (type(copy), str(copy), copy.status_code) == (LlmRejected, str(raised.value), 400)


async def test_a_stalled_server_times_out_as_unavailable(
    llm: FakeLlmServer, make_provider: MakeProvider
) -> None:
    llm.script(Stall(5), Stall(5, after_chunks=["unseen: no on_delta"]))

    started = time.monotonic()
    with pytest.raises(LlmUnavailable, match="timed out"):
        await make_provider(timeout_s=0.2, max_attempts=2).complete(HELLO, [])

    assert time.monotonic() - started < 2
    assert len(llm.requests) == 2


async def test_a_stall_after_deltas_is_not_retried(
    llm: FakeLlmServer, make_provider: MakeProvider
) -> None:
    llm.script(Stall(5, after_chunks=["Thinking"]), TextReply(["never sent"]))
    deltas = Deltas()

    with pytest.raises(LlmUnavailable, match="timed out"):
        await make_provider(timeout_s=0.2).complete(HELLO, [], on_delta=deltas)

    assert deltas.received == ["Thinking"]
    assert len(llm.requests) == 1


async def test_a_drop_after_deltas_is_unavailable_and_not_replayed(
    llm: FakeLlmServer, make_provider: MakeProvider
) -> None:
    llm.script(Drop(["The answer ", "is"]), TextReply(["The answer is 42"]))
    deltas = Deltas()

    with pytest.raises(LlmUnavailable, match="not retried"):
        await make_provider().complete(HELLO, [], on_delta=deltas)

    assert deltas.received == ["The answer ", "is"]
    assert len(llm.requests) == 1


async def test_a_drop_before_any_delta_is_retried(
    llm: FakeLlmServer, make_provider: MakeProvider
) -> None:
    llm.script(Drop([]), TextReply(["whole"]))
    deltas = Deltas()

    turn = await make_provider().complete(HELLO, [], on_delta=deltas)

    assert deltas.received == ["whole"]
    assert turn.message.content == "whole"
    assert len(llm.requests) == 2


async def test_cancellation_closes_the_stream_promptly(
    llm: FakeLlmServer, make_provider: MakeProvider
) -> None:
    llm.script(Stall(10, after_chunks=["partial"]))
    deltas = Deltas()
    task = asyncio.create_task(make_provider(timeout_s=30).complete(HELLO, [], on_delta=deltas))
    await asyncio.wait_for(deltas.arrived.wait(), 5)

    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert time.monotonic() - started < 1
    await llm.wait_for_disconnects(1, timeout_s=1)


async def test_invalid_tool_arguments_are_rejected_with_the_raw_text(
    llm: FakeLlmServer, make_provider: MakeProvider
) -> None:
    llm.script(ToolCallReply([ScriptedCall("call_1", "grade", ['{"score": ', "9", "0,"])]))

    with pytest.raises(LlmRejected) as raised:
        await make_provider().complete(HELLO, [])

    assert '{"score": 90,' in str(raised.value)
    assert "'grade'" in str(raised.value)
    assert len(llm.requests) == 1


async def test_a_reply_that_is_not_an_event_stream_is_rejected(
    llm: FakeLlmServer, make_provider: MakeProvider
) -> None:
    llm.script(RawReply(json.dumps({"choices": [{"message": {"content": "hi"}}]})))

    with pytest.raises(LlmRejected, match="event stream"):
        await make_provider().complete(HELLO, [])

    assert len(llm.requests) == 1


def sse(*events: str) -> RawReply:
    return RawReply("".join(f"data: {event}\n\n" for event in events), "text/event-stream")


ROLE_CHUNK = json.dumps({"choices": [{"index": 0, "delta": {"role": "assistant"}}]})


@pytest.mark.parametrize(
    ("reply", "error", "message"),
    [
        (sse("not json"), LlmRejected, "outside the chat-completions protocol: not json"),
        (sse('{"choices": "nope"}'), LlmRejected, "outside the chat-completions protocol"),
        (sse(ROLE_CHUNK, '{"error": {"message": "CUDA out of memory"}}'), LlmUnavailable, "CUDA"),
        (sse(ROLE_CHUNK), LlmUnavailable, "ended the stream before the reply was complete"),
    ],
    ids=["not-json", "bad-shape", "error-event", "no-finish"],
)
async def test_protocol_violations_in_the_stream(
    llm: FakeLlmServer,
    make_provider: MakeProvider,
    reply: RawReply,
    error: type[LlmError],
    message: str,
) -> None:
    """Shape errors are rejected at once; server-side failures are retried, then unavailable."""
    llm.script(reply, reply)

    with pytest.raises(error, match=message):
        await make_provider(max_attempts=2).complete(HELLO, [])

    assert len(llm.requests) == (2 if error is LlmUnavailable else 1)


@pytest.mark.parametrize(
    "replies",
    [
        [HttpError(401, body=json.dumps({"error": {"message": f"Bad key {API_KEY}"}}))],
        [HttpError(503, body=f"upstream refused key {API_KEY}")] * 2,
        [Stall(5)] * 2,
        [ToolCallReply([ScriptedCall("call_1", "f", [f'{{"key": "{API_KEY}"'])])],
    ],
    ids=["401-echoing-key", "503-echoing-key", "timeout", "bad-arguments"],
)
async def test_the_api_key_never_appears_in_errors(
    llm: FakeLlmServer, make_provider: MakeProvider, replies: list[Reply]
) -> None:
    llm.script(*replies)
    provider = make_provider(api_key=API_KEY, timeout_s=0.2, max_attempts=2)

    with pytest.raises(LlmError) as raised:
        await provider.complete(HELLO, [])

    assert API_KEY not in str(raised.value)
    assert API_KEY not in repr(raised.value)
    assert llm.requests[0].headers["authorization"] == f"Bearer {API_KEY}"


async def test_settings_build_a_working_provider(
    llm: FakeLlmServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTHOST_LLM_BASE_URL", llm.base_url)
    monkeypatch.setenv("AGENTHOST_LLM_MODEL", "from-env")
    monkeypatch.setenv("AGENTHOST_LLM_API_KEY", API_KEY)
    llm.script(TextReply(["hi"]))
    settings = LlmSettings(_env_file=None)
    provider = provider_from_settings(settings)
    assert isinstance(provider, OpenAICompatibleProvider)

    try:
        turn = await provider.complete(HELLO, [])
    finally:
        await provider.aclose()

    assert turn.message.content == "hi"
    assert llm.requests[0].body["model"] == "from-env"
    assert llm.requests[0].headers["authorization"] == f"Bearer {API_KEY}"
    assert API_KEY not in repr(settings)


def test_no_base_url_means_no_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENTHOST_LLM_BASE_URL", raising=False)
    assert provider_from_settings(LlmSettings(_env_file=None)) is None

    monkeypatch.setenv("AGENTHOST_LLM_BASE_URL", "http://127.0.0.1:11434/v1")
    monkeypatch.delenv("AGENTHOST_LLM_MODEL", raising=False)
    with pytest.raises(ValidationError, match="AGENTHOST_LLM_MODEL"):
        LlmSettings(_env_file=None)
