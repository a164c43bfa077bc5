"""Sessions driven inside the host actors on real Ray: a host dies between the widget and
the answer, and the session carries on from the store."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
import ray

from actors.projector_actor import ProjectorClient
from actors.runtime import AgentRuntime
from actors.session_sweeper import sweeper_handle
from actors.settings import Settings
from application import use_cases
from domain.commands import GetOrCreateAgent, StartSession
from domain.enums import AgentType, SessionStatus
from domain.session import SessionConfig
from execution.executor import Outcome
from execution.llm.settings import LlmSettings
from execution.templates.loader import get_template
from execution.templates.model import right_answer
from tests.support.fake_llm_server import ScriptedCall, Stall, ToolCallReply, running_fake_llm

from .conftest import kill_namespace, make_settings

TEMPLATE = "ipv4-subnetting"


@pytest.mark.parametrize("kill", ["ray.kill", "SIGKILL"])
async def test_a_host_killed_between_widget_and_answer_loses_nothing(
    ray_settings: Settings, kill: str
) -> None:
    runtime = AgentRuntime(ray_settings)
    template = get_template(TEMPLATE)
    created = await runtime.handle(GetOrCreateAgent.for_user(f"k-{kill}", AgentType.EVALUATOR))
    agent_id = created.agent_id
    config = SessionConfig(template_id=TEMPLATE, max_items=3)
    await runtime.handle(StartSession(agent_id=agent_id, config=config))

    drive = use_cases.DriveSession(agent_id=agent_id)
    for n in range(3):
        assert await runtime.handle(drive) is Outcome.WAITING_FOR_USER
        state = await runtime.handle(use_cases.ReadAgentState(agent_id=agent_id))
        assert state is not None
        assert state.active_session is not None
        action = state.active_session.pending_action
        assert action is not None
        if n == 1:  # the widget is on screen; the host dies before the answer comes
            host = runtime.host_for(agent_id)
            if kill == "ray.kill":
                ray.kill(host, no_restart=False)
            else:
                os.kill((await runtime.host_info(agent_id)).pid, signal.SIGKILL)
        answer = right_answer(template.item(action.tool_call_id))
        # If the host died after recording the answer but before replying, the runtime's
        # retry carries the same command id: recognised, not applied twice.
        await runtime.handle(
            use_cases.AnswerWidget(
                agent_id=agent_id,
                tool_call_id=action.tool_call_id,
                response=answer,
                then_drive=False,
            )
        )

    assert await runtime.handle(drive) is Outcome.COMPLETED
    state = await runtime.handle(use_cases.ReadAgentState(agent_id=agent_id))
    assert state is not None
    (ended,) = state.session_history
    assert ended.status is SessionStatus.COMPLETED
    assert [i.item_id for i in ended.items] == [i.id for i in template.items[:3]]
    assert all(i.evaluation is not None and i.evaluation["correct"] for i in ended.items)
    assert state.total_interactions == 3  # each answer recorded exactly once


async def test_a_host_killed_mid_llm_call_retries_that_call_after_restart(
    ray_instance: None, tmp_path: Path
) -> None:
    async with running_fake_llm() as llm_server:
        settings = make_settings(
            tmp_path, llm=LlmSettings(base_url=llm_server.base_url, model="scripted", timeout_s=30)
        )
        try:
            runtime = AgentRuntime(settings)
            created = await runtime.handle(GetOrCreateAgent.for_user("mid-llm", AgentType.TUTOR))
            await runtime.handle(StartSession(agent_id=created.agent_id))
            choice = {"prompt": "2 + 2?", "options": ["3", "4"]}
            llm_server.script(
                Stall(60), ToolCallReply([ScriptedCall.split("w1", "present_choices", choice)])
            )
            driving = asyncio.create_task(
                runtime.handle(use_cases.DriveSession(agent_id=created.agent_id))
            )
            while not llm_server.requests:  # noqa: ASYNC110 - the server thread appends it
                await asyncio.sleep(0.01)
            os.kill((await runtime.host_info(created.agent_id)).pid, signal.SIGKILL)

            assert await driving is Outcome.WAITING_FOR_USER  # retried on the restarted host
            state = await runtime.handle(use_cases.ReadAgentState(agent_id=created.agent_id))
            assert state is not None
            assert state.active_session is not None
            assert [m.role for m in state.active_session.transcript] == ["assistant"]
            assert len(llm_server.requests) == 2
        finally:
            kill_namespace(settings.ray_namespace)


async def test_the_sweeper_drives_what_nobody_drives_and_expires_late_sessions(
    ray_instance: None, tmp_path: Path
) -> None:
    async with running_fake_llm() as llm_server:
        settings = make_settings(
            tmp_path, llm=LlmSettings(base_url=llm_server.base_url, model="scripted", timeout_s=30)
        )
        try:
            runtime = AgentRuntime(settings)
            projector = ProjectorClient(settings)
            # An LLM session whose host dies mid-call while its caller is gone too.
            stalled = (
                await runtime.handle(GetOrCreateAgent.for_user("s1", AgentType.TUTOR))
            ).agent_id
            await runtime.handle(StartSession(agent_id=stalled))
            choice = {"prompt": "2 + 2?", "options": ["3", "4"]}
            llm_server.script(
                Stall(60), ToolCallReply([ScriptedCall.split("w1", "present_choices", choice)])
            )
            abandoned = asyncio.create_task(
                runtime.handle(use_cases.DriveSession(agent_id=stalled))
            )
            while not llm_server.requests:  # noqa: ASYNC110 - the server thread appends it
                await asyncio.sleep(0.01)
            abandoned.cancel()
            os.kill((await runtime.host_info(stalled)).pid, signal.SIGKILL)
            # A templated session left on its widget past the time limit.
            late = (await runtime.handle(GetOrCreateAgent.for_user("s2", AgentType.TUTOR))).agent_id
            config = SessionConfig(template_id="arithmetic-basics", time_limit_seconds=1)
            late_start = await runtime.handle(use_cases.StartSession(agent_id=late, config=config))
            assert late_start.outcome is Outcome.WAITING_FOR_USER
            assert await projector.wait_for_position(late_start.position, 30)
            await asyncio.sleep(1.1)

            report = await sweeper_handle(settings).sweep_once.remote()
            assert report.agents == 2
            assert report.outcomes == {"waiting_for_user": 1, "expired": 1}
            state = await runtime.handle(use_cases.ReadAgentState(agent_id=stalled))
            assert state is not None
            assert state.active_session is not None
            assert state.active_session.pending_action is not None  # driven to its widget
            expired = await runtime.handle(use_cases.ReadAgentState(agent_id=late))
            assert expired is not None
            assert expired.active_session is None
            assert expired.session_history[-1].status is SessionStatus.EXPIRED
        finally:
            kill_namespace(settings.ray_namespace)
