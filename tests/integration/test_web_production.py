"""The web UI as production runs it, on one deployment: OIDC sign-in (authorization code +
PKCE against the Keycloak-like tests/support/fake_oidc_provider.py) and sessions driven by an
LLM (the scripted OpenAI-compatible tests/support/fake_llm_server.py, paced so its text
arrives in pieces).

Its own module: Serve runs one app per Ray instance, so this deployment must not overlap
test_web_ui's.
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
from tests.support.fake_oidc_provider import FakeOidcProvider, running_fake_oidc

from .test_web_ui import SCREENSHOTS
from .web_support import run_e2e, web_service

CLIENT_ID = "agenthost-web"
QUESTION = {"prompt": "Which is the answer to everything?", "options": ["41", "42", "48"]}


@pytest.fixture(scope="module")
def idp() -> Iterator[FakeOidcProvider]:
    with running_fake_oidc() as provider:
        yield provider


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLlmServer]:
    with serving_fake_llm() as server:
        yield server


@pytest.fixture(scope="module")
def production_env(
    ray_instance: None,
    tmp_path_factory: pytest.TempPathFactory,
    idp: FakeOidcProvider,
    llm: FakeLlmServer,
) -> Iterator[dict[str, str]]:
    auth = {"AGENTHOST_AUTH_OIDC_ISSUER": idp.issuer, "AGENTHOST_AUTH_CLIENT_ID": CLIENT_ID}
    model = LlmSettings(base_url=llm.base_url, model="scripted", max_attempts=1)
    with web_service(tmp_path_factory.mktemp("production"), auth_env=auth, llm=model) as url:
        yield {"AGENTHOST_URL": url, "AGENTHOST_ISSUER": idp.issuer}


def test_oidc_sign_in_with_pkce(production_env: dict[str, str], idp: FakeOidcProvider) -> None:
    before = len(idp.exchanges)
    run_e2e("oidc.test.mjs", production_env, SCREENSHOTS)
    # The browser proved possession of the verifier behind the challenge it sent.
    signed_in = [(e.client_id, e.verifier_matched) for e in idp.exchanges[before:]]
    assert signed_in == [(CLIENT_ID, True)]


def test_an_llm_session_streams_into_the_page(
    production_env: dict[str, str], idp: FakeOidcProvider, llm: FakeLlmServer
) -> None:
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
    lisa = {"AGENTHOST_TOKEN_LISA": idp.token("lisa", CLIENT_ID)}
    run_e2e("llm.test.mjs", {**production_env, **lisa}, SCREENSHOTS)
    # Each step asked once: the opening, after the tool, after the answer, the summary.
    asked = [request.body["messages"][-1]["role"] for request in llm.requests]
    assert asked == ["system", "tool", "tool", "user"]
