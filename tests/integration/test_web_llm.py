"""An LLM-driven session in the web UI: assistant text streamed live, a server tool's activity,
a widget the model asked for, and the model's closing words. The model is the scripted fake
OpenAI-compatible server (tests/support/fake_llm_server.py), paced so text arrives in pieces.

Its own module: Serve runs one app per Ray instance.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from execution.llm.settings import LlmSettings
from tests.support.fake_llm_server import (
    FakeLlmServer,
    ScriptedCall,
    TextReply,
    ToolCallReply,
    serving_fake_llm,
)

from .api_support import token
from .test_web_ui import SCREENSHOTS
from .web_support import run_e2e, web_service

QUESTION = {"prompt": "Which is the answer to everything?", "options": ["41", "42", "48"]}


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLlmServer]:
    with serving_fake_llm() as server:
        yield server


@pytest.fixture(scope="module")
def llm_env(
    ray_instance: None, tmp_path_factory: pytest.TempPathFactory, llm: FakeLlmServer
) -> Iterator[dict[str, str]]:
    model = LlmSettings(base_url=llm.base_url, model="scripted", max_attempts=1)
    with web_service(tmp_path_factory.mktemp("llm"), llm=model) as url:
        yield {"AGENTHOST_URL": url, "AGENTHOST_TOKEN_LISA": token("lisa")}


def test_an_llm_session_streams_into_the_page(llm_env: dict[str, str], llm: FakeLlmServer) -> None:
    llm.script(
        ToolCallReply(
            content=["Let me check ", "the time first."],
            calls=[ScriptedCall.split("t1", "current_time", {})],
        ),
        ToolCallReply(
            content=["Here is ", "a question."],
            calls=[ScriptedCall.split("c1", "present_choices", QUESTION)],
        ),
        TextReply(["Right, ", "forty-two ", "it is. ", "Well done."], pace_s=0.4),
        TextReply(["Knows the answer to everything."]),  # the session's summary
    )
    run_e2e("llm.test.mjs", llm_env, SCREENSHOTS)
    # Each step asked once: the opening, after the tool, after the answer, the summary.
    asked = [request.body["messages"][-1]["role"] for request in llm.requests]
    assert asked == ["system", "tool", "tool", "user"]
