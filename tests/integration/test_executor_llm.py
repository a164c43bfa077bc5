"""The executor against a real HTTP chat-completions server with scripted replies.

Nothing is patched: the provider streams over HTTP, the executor drives a real application on a
SQLite store, and a "crash" is the executor task dying mid-step, after which a fresh executor
(as another process would) continues from the stored session alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from pydantic import BaseModel

from application import use_cases
from application.bootstrap import HostConfig, build_application
from application.service import AgentApplication
from domain.commands import GetOrCreateAgent, StartSession, UpdatePreferences
from domain.enums import AgentType, SessionStatus
from domain.errors import InvalidResponse, NoPendingClientAction
from domain.session import ClientResponse
from domain.state import AgentState
from execution.executor import EphemeralEvent, Outcome, ProactiveAgentExecutor
from execution.llm.openai_compatible import OpenAICompatibleProvider
from execution.llm.port import LlmUnavailable
from execution.llm.settings import LlmSettings
from execution.server_tools import BUILTIN_TOOLS, ServerTool, ServerToolRegistry
from tests.support.fake_llm_server import (
    FakeLlmServer,
    HttpError,
    ScriptedCall,
    Stall,
    TextReply,
    ToolCallReply,
    running_fake_llm,
)

CHOICE = {"prompt": "What is 6 x 7?", "options": ["41", "42", "48"]}


class Nothing(BaseModel):
    pass


@pytest.fixture
async def llm_server() -> AsyncIterator[FakeLlmServer]:
    async with running_fake_llm() as server:
        yield server


@pytest.fixture
async def host(tmp_path: Path) -> AsyncIterator[AgentApplication]:
    app = build_application(HostConfig(event_store_url=f"sqlite:///{tmp_path / 'events.db'}"))
    yield app
    await app.close()


def executor(
    host: AgentApplication,
    server: FakeLlmServer,
    tools: ServerToolRegistry | None = None,
    **kw: object,
) -> ProactiveAgentExecutor:
    provider = OpenAICompatibleProvider(server.base_url, "scripted", max_attempts=2, timeout_s=5)
    return ProactiveAgentExecutor(
        host,
        llm=provider,
        tools=tools or ServerToolRegistry(BUILTIN_TOOLS),
        **kw,  # type: ignore[arg-type]
    )


async def started_agent(host: AgentApplication, user: str = "u1") -> str:
    agent_id = (await host.execute(GetOrCreateAgent.for_user(user, AgentType.TUTOR))).agent_id
    await host.execute(StartSession(agent_id=agent_id))
    return agent_id


async def state_of(host: AgentApplication, agent_id: str) -> AgentState:
    state = await host.agent_state(agent_id)
    assert state is not None
    return state


def tool_turn(call_id: str, name: str, arguments: dict[str, object]) -> ToolCallReply:
    return ToolCallReply([ScriptedCall.split(call_id, name, arguments)])


async def test_a_full_llm_session_with_a_server_tool_and_a_widget(
    host: AgentApplication, llm_server: FakeLlmServer
) -> None:
    seen: list[EphemeralEvent] = []

    async def publish(event: EphemeralEvent) -> None:
        seen.append(event)

    agent_id = await started_agent(host)
    llm_server.script(
        ToolCallReply(
            [ScriptedCall.split("c1", "calculator", {"expression": "6*7"})],
            content=["Let me ", "check."],
        ),
        tool_turn("w1", "present_choices", CHOICE),
    )
    run = executor(host, llm_server, publish=publish)
    assert await run.advance(agent_id) is Outcome.WAITING_FOR_USER

    session = (await state_of(host, agent_id)).active_session
    assert session is not None
    assert session.pending_action is not None
    assert session.pending_action.tool_call_id == "w1"
    assert session.pending_action.widget_type == "multiple_choice"
    assert [m.role for m in session.transcript] == ["assistant", "tool", "assistant"]
    assert json.loads(session.transcript[1].content)["result"] == 42
    second_request = llm_server.requests[1].body
    assert second_request["messages"][0]["role"] == "system"
    assert second_request["messages"][-1]["role"] == "tool"
    assert {t["function"]["name"] for t in second_request["tools"]} >= {
        "present_choices",
        "request_free_text",
        "present_code_editor",
        "calculator",
    }
    assert [e.data["delta"] for e in seen if e.kind == "content_chunk"] == ["Let me ", "check."]
    assert [e.kind for e in seen if e.kind.startswith("tool")] == ["tool_executing", "tool_result"]

    await run.respond(agent_id, ClientResponse(tool_call_id="w1", response={"selection": "42"}))
    llm_server.script(TextReply(["Well ", "done!"]), TextReply(["Multiplication; answered 42."]))
    assert await run.advance(agent_id) is Outcome.COMPLETED

    state = await state_of(host, agent_id)
    assert state.active_session is None
    (ended,) = state.session_history
    assert ended.status is SessionStatus.COMPLETED
    assert ended.end_reason == "agent_finished"
    assert ended.summary is not None
    assert ended.summary["text"] == "Multiplication; answered 42."
    assert ended.summary["widgets_answered"] == 1
    answer = json.loads(ended.transcript[3].content)
    assert answer["response"] == {"selection": "42", "index": 1}
    assert [m.role for m in ended.transcript] == [
        "assistant",
        "tool",
        "assistant",
        "tool",
        "assistant",
    ]


async def test_the_next_session_remembers_the_last_ones_summary(
    host: AgentApplication, llm_server: FakeLlmServer
) -> None:
    agent_id = await started_agent(host)
    await host.execute(UpdatePreferences(agent_id=agent_id, changes={"level": "beginner"}))
    llm_server.script(TextReply(["Hello."]), TextReply(["Covered fractions; struggled with 3/8."]))
    run = executor(host, llm_server)
    assert await run.advance(agent_id) is Outcome.COMPLETED
    await host.execute(StartSession(agent_id=agent_id))
    llm_server.script(TextReply(["Welcome back."]), TextReply(["ok"]))
    await run.advance(agent_id)
    system = llm_server.requests[2].body["messages"][0]["content"]
    assert "Covered fractions; struggled with 3/8." in system
    assert '"level": "beginner"' in system


async def test_an_invalid_answer_is_refused_with_reasons_and_changes_nothing(
    host: AgentApplication, llm_server: FakeLlmServer
) -> None:
    agent_id = await started_agent(host)
    llm_server.script(tool_turn("w1", "present_choices", CHOICE))
    run = executor(host, llm_server)
    await run.advance(agent_id)
    before = await state_of(host, agent_id)
    with pytest.raises(InvalidResponse) as refused:
        await run.respond(agent_id, ClientResponse(tool_call_id="w1", response={"selection": "7"}))
    assert refused.value.reasons
    assert await state_of(host, agent_id) == before


async def test_a_tool_call_id_the_provider_reuses_is_a_new_widget_not_the_old_answer(
    host: AgentApplication, llm_server: FakeLlmServer
) -> None:
    # Given a provider that names every tool call call_0, and a first widget answered
    agent_id = await started_agent(host)
    second = {"prompt": "What is 3 x 3?", "options": ["6", "9"]}
    llm_server.script(
        tool_turn("call_0", "present_choices", CHOICE),
        tool_turn("call_0", "present_choices", second),
    )
    run = executor(host, llm_server)
    await run.advance(agent_id)
    await run.respond(agent_id, ClientResponse(tool_call_id="call_0", response={"selection": "42"}))

    # When the model's next turn asks a new widget under the same id
    outcome = await run.advance(agent_id)

    # Then the new widget waits for its own answer: the first answer is not fed back to it
    assert outcome is Outcome.WAITING_FOR_USER
    session = (await state_of(host, agent_id)).active_session
    assert session is not None
    assert session.pending_action is not None
    assert session.pending_action.props["prompt"] == "What is 3 x 3?"
    answers = [m for m in session.transcript if m.role == "tool"]
    assert len(answers) == 1  # the first widget's, once
    assert [i.item_id for i in session.items] == ["0/call_0", "2/call_0"]


async def test_bad_widget_arguments_go_back_to_the_model_as_a_tool_error(
    host: AgentApplication, llm_server: FakeLlmServer
) -> None:
    agent_id = await started_agent(host)
    llm_server.script(
        tool_turn("w1", "present_choices", {"prompt": "?", "options": ["only one"]}),
        tool_turn("w2", "present_choices", CHOICE),
    )
    assert await executor(host, llm_server).advance(agent_id) is Outcome.WAITING_FOR_USER
    session = (await state_of(host, agent_id)).active_session
    assert session is not None
    assert session.transcript[1].role == "tool"
    assert "invalid widget arguments" in session.transcript[1].content
    assert session.pending_action is not None
    assert session.pending_action.tool_call_id == "w2"


async def test_a_provider_outage_stores_nothing_and_the_session_resumes_later(
    host: AgentApplication, llm_server: FakeLlmServer
) -> None:
    agent_id = await started_agent(host)
    llm_server.script(HttpError(503), HttpError(503))
    run = executor(host, llm_server)
    before = await state_of(host, agent_id)
    with pytest.raises(LlmUnavailable, match="503"):
        await run.advance(agent_id)
    assert await state_of(host, agent_id) == before
    llm_server.script(tool_turn("w1", "present_choices", CHOICE))
    assert await run.advance(agent_id) is Outcome.WAITING_FOR_USER


async def test_a_crash_mid_llm_call_retries_that_call_only(
    host: AgentApplication, llm_server: FakeLlmServer
) -> None:
    agent_id = await started_agent(host)
    llm_server.script(Stall(30))
    crashed = asyncio.create_task(executor(host, llm_server).advance(agent_id))
    while not llm_server.requests:  # noqa: ASYNC110 - the server thread appends it
        await asyncio.sleep(0.01)
    crashed.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await crashed
    session = (await state_of(host, agent_id)).active_session
    assert session is not None
    assert session.transcript == ()  # nothing half-recorded

    llm_server.script(tool_turn("w1", "present_choices", CHOICE))
    assert await executor(host, llm_server).advance(agent_id) is Outcome.WAITING_FOR_USER
    assert len(llm_server.requests) == 2


async def test_a_crash_mid_tool_call_reruns_the_tool_and_never_the_llm_turn(
    host: AgentApplication, llm_server: FakeLlmServer
) -> None:
    started = asyncio.Event()
    release = asyncio.Event()
    runs = 0

    async def slow_lookup(_: Nothing) -> str:
        nonlocal runs
        runs += 1
        started.set()
        await release.wait()
        return "found it"

    tools = ServerToolRegistry(
        [ServerTool(name="lookup", description="", arguments=Nothing, run=slow_lookup)]
    )
    agent_id = await started_agent(host)
    # The model may run only the tools the agent's profile offers.
    await host.execute(UpdatePreferences(agent_id=agent_id, changes={"server_tools": ["lookup"]}))
    llm_server.script(tool_turn("c1", "lookup", {}))
    crashed = asyncio.create_task(executor(host, llm_server, tools).advance(agent_id))
    await started.wait()
    crashed.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await crashed

    release.set()
    llm_server.script(tool_turn("w1", "present_choices", CHOICE))
    assert await executor(host, llm_server, tools).advance(agent_id) is Outcome.WAITING_FOR_USER
    session = (await state_of(host, agent_id)).active_session
    assert session is not None
    assert [m.role for m in session.transcript] == ["assistant", "tool", "assistant"]
    assert session.transcript[1].content == "found it"
    assert (runs, len(llm_server.requests)) == (2, 2)  # the tool again, the LLM turn not


async def test_two_executors_racing_on_one_agent_apply_each_step_once(
    host: AgentApplication, llm_server: FakeLlmServer
) -> None:
    agent_id = await started_agent(host)
    llm_server.script(*[tool_turn("c1", "calculator", {"expression": "1+1"})] * 2)
    llm_server.script(*[tool_turn("w1", "present_choices", CHOICE)] * 4)
    outcomes = await asyncio.gather(
        executor(host, llm_server).advance(agent_id), executor(host, llm_server).advance(agent_id)
    )
    assert set(outcomes) == {Outcome.WAITING_FOR_USER}
    session = (await state_of(host, agent_id)).active_session
    assert session is not None
    assert [m.role for m in session.transcript] == ["assistant", "tool", "assistant"]
    assert [i.item_id for i in session.items] == ["2/w1"]  # the call id within its turn


async def _slow_lookup(_: Nothing) -> str:
    await asyncio.sleep(0.5)
    return "looked up"


SLOW_LOOKUP = ServerTool(name="slow_lookup", description="", arguments=Nothing, run=_slow_lookup)


@pytest.mark.parametrize("policy", ["reject", "queue"])
async def test_an_answer_during_a_drive_follows_the_agents_response_policy(
    llm_server: FakeLlmServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, policy: str
) -> None:
    published = EntryPoint(name="slow", value=f"{__name__}:SLOW_LOOKUP", group="agenthost.tools")
    monkeypatch.setattr("execution.server_tools.entry_points", lambda group: [published])
    config = HostConfig(
        event_store_url=f"sqlite:///{tmp_path / 'policy.db'}",
        llm=LlmSettings(base_url=llm_server.base_url, model="scripted"),
    )
    app = build_application(config)
    try:
        created = await app.handle(GetOrCreateAgent.for_user("p", AgentType.TUTOR))
        agent_id = created.agent_id
        offer = {"response_policy": policy, "server_tools": ["slow_lookup"]}
        await app.handle(UpdatePreferences(agent_id=agent_id, changes=offer))
        await app.handle(use_cases.StartSession(agent_id=agent_id, then_drive=False))
        drive_session = use_cases.DriveSession(agent_id=agent_id)
        llm_server.script(tool_turn("w1", "present_choices", CHOICE))
        assert await app.handle(drive_session) is Outcome.WAITING_FOR_USER
        await app.handle(answer(agent_id, "w1"))

        llm_server.script(
            tool_turn("c1", "slow_lookup", {}), tool_turn("w2", "present_choices", CHOICE)
        )
        drive = asyncio.create_task(app.handle(drive_session))
        await asyncio.sleep(0.2)  # the drive is inside the slow tool now
        early = answer(agent_id, "w2")
        if policy == "reject":
            with pytest.raises(NoPendingClientAction):
                await app.handle(early)
            assert await drive is Outcome.WAITING_FOR_USER
        else:
            answered = (await app.handle(early)).result  # held until the drive rested
            assert drive.done()
            assert answered.event_types[0] == "agent.client.response.received.v1"
    finally:
        await app.close()


def answer(agent_id: str, tool_call_id: str) -> use_cases.AnswerWidget:
    """Record the answer only (no drive after it), as the executor's respond does."""
    return use_cases.AnswerWidget(
        agent_id=agent_id, tool_call_id=tool_call_id, response={"index": 1}, then_drive=False
    )


async def test_a_hosts_drive_buffers_token_deltas_for_live_viewers(
    llm_server: FakeLlmServer, tmp_path: Path
) -> None:
    config = HostConfig(
        event_store_url=f"sqlite:///{tmp_path / 'deltas.db'}",
        llm=LlmSettings(base_url=llm_server.base_url, model="scripted"),
    )
    app = build_application(config)
    try:
        agent_id = (await app.handle(GetOrCreateAgent.for_user("v", AgentType.TUTOR))).agent_id
        await app.handle(use_cases.StartSession(agent_id=agent_id, then_drive=False))
        llm_server.script(
            ToolCallReply(
                [ScriptedCall.split("w1", "present_choices", CHOICE)], content=["Hel", "lo"]
            )
        )
        await app.handle(use_cases.DriveSession(agent_id=agent_id))
        batch = app.live.since(agent_id, 0)
        deltas = [(n, e.data["delta"]) for n, e in batch.events if e.kind == "content_chunk"]
        assert [d for _, d in deltas] == ["Hel", "lo"]
        assert app.live.since(agent_id, deltas[0][0]).events[0][1].data == {"delta": "lo"}
        assert app.live.since(agent_id, batch.events[-1][0]).events == ()
        assert build_application(config).live.since(agent_id, 0).epoch != batch.epoch
    finally:
        await app.close()
