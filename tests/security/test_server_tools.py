"""Server tools attacked through the model, over HTTP: a calculator bomb, a computation that
never ends, and tools the agent is not offered.

The attacker's weapon is the model (a user talks it into a tool call), so the request that
carries the attack succeeds: the refusal is a tool error the model reads, the session goes on,
and the host, with every other agent on it, never stops serving. The fake LLM plays the
talked-into model; the operator has installed two tools of its own: ``spin`` (a computation
that never ends, offered to tutors, limited to 1 s) and ``spy`` (offered to no agent type).
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import httpx
import pytest

from execution.agent_profiles import type_defaults
from execution.llm.settings import LlmSettings
from execution.server_tools import ENTRY_POINT_GROUP, NoArguments, ServerTool
from execution.templates.loader import get_template
from execution.templates.model import right_answer
from tests.support.api_client import SECRET, as_user
from tests.support.api_flows import TEMPLATE, new_tutor
from tests.support.fake_llm_server import (
    FakeLlmServer,
    ScriptedCall,
    ToolCallReply,
    running_fake_llm,
)
from tests.support.inprocess_api import InProcessApi, inprocess_api

BOMB = "((9**999)**999)**999"
CHOICE = {"prompt": "What is 6 x 7?", "options": ["41", "42", "48"]}
SERVED_WITHIN_S = 0.5
"""How long another user's request may take while the attack runs."""

SPY_CALLS: list[str] = []


async def _spy(_: NoArguments) -> str:
    SPY_CALLS.append("ran")
    return "the operator's secrets"


SPY = ServerTool(name="spy", description="offered to nobody", arguments=NoArguments, run=_spy)


@pytest.fixture
async def llm() -> AsyncIterator[FakeLlmServer]:
    async with running_fake_llm() as server:
        yield server


@pytest.fixture
async def llm_api(
    tmp_path: Path, llm: FakeLlmServer, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[InProcessApi]:
    """The API with an LLM, and the operator's two tools installed (spin offered to tutors)."""
    SPY_CALLS.clear()
    published = [
        EntryPoint("spin", "tests.unit.execution.test_server_tools:SPIN", ENTRY_POINT_GROUP),
        EntryPoint("spy", f"{__name__}:SPY", ENTRY_POINT_GROUP),
    ]
    monkeypatch.setattr(
        "execution.server_tools.entry_points",
        lambda group: published if group == ENTRY_POINT_GROUP else [],
    )
    defaults = copy.deepcopy(type_defaults())
    defaults["tutor"]["server_tools"] = [*defaults["tutor"]["server_tools"], "spin"]
    monkeypatch.setattr("execution.agent_profiles.type_defaults", lambda: defaults)
    settings = LlmSettings(base_url=llm.base_url, model="scripted", max_attempts=1, timeout_s=10)
    async with inprocess_api(tmp_path, secret=SECRET, llm=settings) as opened:
        yield opened


def tool_turn(call_id: str, name: str, arguments: dict[str, Any]) -> ToolCallReply:
    return ToolCallReply([ScriptedCall.split(call_id, name, arguments)])


async def new_agent(http: httpx.AsyncClient, user: str, agent_type: str) -> str:
    created = await http.post("/api/agents", json={"agent_type": agent_type}, headers=as_user(user))
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def templated_session(http: httpx.AsyncClient, user: str) -> tuple[str, dict[str, Any]]:
    """Another tenant, mid-session (a templated one: it needs no model)."""
    agent_id = await new_tutor(http, user)
    started = await http.post(
        f"/api/agents/{agent_id}/sessions",
        json={"config": {"template_id": TEMPLATE}},
        headers=as_user(user),
    )
    assert started.status_code == 201, started.text
    return agent_id, started.json()["session"]


def tool_messages(llm: FakeLlmServer, request: int) -> dict[str, str]:
    """The tool results the model was sent in its ``request``-th call, by tool call id."""
    messages = llm.requests[request].body["messages"]
    return {m["tool_call_id"]: m["content"] for m in messages if m["role"] == "tool"}


async def while_running(
    attack: Awaitable[httpx.Response], probe: Callable[[], Awaitable[httpx.Response]]
) -> tuple[httpx.Response, list[float]]:
    """Run ``attack``; meanwhile send ``probe`` again and again. Its answer, and how long
    each probe took (each one must succeed)."""
    running = asyncio.ensure_future(attack)
    took: list[float] = []
    while not running.done():
        started = time.perf_counter()
        answered = await probe()
        took.append(time.perf_counter() - started)
        assert answered.status_code == 200, answered.text
        await asyncio.sleep(0.05)
    return await running, took


async def assert_unaffected(api: InProcessApi, user: str, agent_id: str) -> None:
    """The other tenant's session is still served and answerable; the projector caught up."""
    http = api.http
    current = await http.get(f"/api/agents/{agent_id}/session", headers=as_user(user))
    assert current.status_code == 200, current.text
    pending = current.json()["session"]["pending_action"]
    answer = right_answer(get_template(TEMPLATE).item(pending["tool_call_id"]))
    answered = await http.post(
        f"/api/agents/{agent_id}/session/respond",
        json={"tool_call_id": pending["tool_call_id"], "response": answer},
        headers=as_user(user),
    )
    assert answered.status_code == 200, answered.text
    deadline = time.monotonic() + 10
    while (await api.services.projector.status()).lag:
        assert time.monotonic() < deadline, await api.services.projector.status()
        await asyncio.sleep(0.02)


async def test_a_calculator_bomb_is_a_tool_error_and_the_host_keeps_serving(
    llm_api: InProcessApi, llm: FakeLlmServer
) -> None:
    api = llm_api
    http = api.http
    bob, bobs_session = await templated_session(http, "bob")
    alice = await new_tutor(http, "alice")
    llm.script(
        tool_turn("c1", "calculator", {"expression": BOMB}),
        tool_turn("w1", "present_choices", CHOICE),
    )

    started, took = await while_running(
        asyncio.wait_for(
            http.post(f"/api/agents/{alice}/sessions", json={}, headers=as_user("alice")), 15
        ),
        lambda: http.get(f"/api/agents/{bob}/session", headers=as_user("bob")),
    )

    assert started.status_code == 201, started.text
    assert max(took) < SERVED_WITHIN_S
    assert tool_messages(llm, 1)["c1"] == (
        "calculator failed: too large: a result would reach 2**4096"
    )
    session = started.json()["session"]  # the model read the error and went on
    assert session["pending_action"]["tool_call_id"] == "w1"
    bobs_now = await http.get(f"/api/agents/{bob}/session", headers=as_user("bob"))
    assert bobs_now.json()["session"]["pending_action"] == bobs_session["pending_action"]
    await assert_unaffected(api, "bob", bob)


async def test_a_computation_that_never_ends_is_killed_at_its_timeout(
    llm_api: InProcessApi, llm: FakeLlmServer
) -> None:
    api = llm_api
    http = api.http
    bob, _ = await templated_session(http, "bob")
    alice = await new_tutor(http, "alice")
    llm.script(tool_turn("c1", "spin", {}), tool_turn("w1", "present_choices", CHOICE))

    begun = time.perf_counter()
    started, took = await while_running(
        asyncio.wait_for(
            http.post(f"/api/agents/{alice}/sessions", json={}, headers=as_user("alice")), 15
        ),
        lambda: http.get(f"/api/agents/{bob}/session", headers=as_user("bob")),
    )

    assert started.status_code == 201, started.text
    assert time.perf_counter() - begun < 8  # 1 s of tool, plus a worker's start
    assert len(took) >= 5  # bob was served all along, each time at once
    assert max(took) < SERVED_WITHIN_S
    assert tool_messages(llm, 1)["c1"] == "spin timed out after 1 s"
    assert started.json()["session"]["pending_action"]["tool_call_id"] == "w1"
    await assert_unaffected(api, "bob", bob)


async def test_a_tool_the_agent_is_not_offered_never_runs(
    llm_api: InProcessApi, llm: FakeLlmServer
) -> None:
    api = llm_api
    http = api.http
    bob, _ = await templated_session(http, "bob")
    alice = await new_agent(http, "alice", "thought")  # offered: current_time only
    calls = [
        ScriptedCall.split("c1", "calculator", {"expression": BOMB}),
        ScriptedCall.split("c2", "spin", {}),
        ScriptedCall.split("c3", "spy", {}),
        ScriptedCall.split("c4", "shell", {"command": "cat /etc/passwd"}),
    ]
    llm.script(ToolCallReply(calls), tool_turn("w1", "present_choices", CHOICE))

    begun = time.perf_counter()
    started = await http.post(f"/api/agents/{alice}/sessions", json={}, headers=as_user("alice"))

    assert started.status_code == 201, started.text
    assert time.perf_counter() - begun < SERVED_WITHIN_S * 2  # nothing ran: no spin, no worker
    offered = {tool["function"]["name"] for tool in llm.requests[0].body["tools"]}
    assert "current_time" in offered
    assert not offered & {"calculator", "spin", "spy", "shell"}
    assert tool_messages(llm, 1) == {
        "c1": "tool 'calculator' is not available",
        "c2": "tool 'spin' is not available",
        "c3": "tool 'spy' is not available",
        "c4": "tool 'shell' is not available",
    }
    assert SPY_CALLS == []
    assert started.json()["session"]["pending_action"]["tool_call_id"] == "w1"
    await assert_unaffected(api, "bob", bob)
