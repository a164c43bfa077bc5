"""Templated sessions, the embedded default: no LLM, the same suspend/resume path.

The executor drives a real application on a SQLite store through a shipped template; answers go
through ``respond`` exactly as the API will send them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import JsonValue

import execution.executor as executor_module
from application import use_cases
from application.bootstrap import HostConfig, build_application
from application.service import AgentApplication
from domain.commands import (
    Command,
    CommandResult,
    GetOrCreateAgent,
    StartSession,
    SubmitResponse,
    SuspendExecution,
    UpdatePreferences,
)
from domain.enums import AgentType, SessionStatus
from domain.errors import ExecutionAlreadySuspended, InvalidCommand, InvalidResponse, SessionStuck
from domain.session import ClientResponse, SessionConfig
from domain.state import AgentState
from execution.agent_profiles import agent_profile
from execution.executor import Outcome, ProactiveAgentExecutor
from execution.templates.loader import get_template
from execution.templates.model import ChoiceRule, TemplateItem, right_answer

TEMPLATE = "arithmetic-basics"


@pytest.fixture
async def host(tmp_path: Path) -> AsyncIterator[AgentApplication]:
    app = build_application(HostConfig(event_store_url=f"sqlite:///{tmp_path / 'events.db'}"))
    yield app
    await app.close()


async def templated_agent(host: AgentApplication, **config: object) -> str:
    agent_id = (await host.execute(GetOrCreateAgent.for_user("u1", AgentType.TUTOR))).agent_id
    session_config = SessionConfig(template_id=TEMPLATE, **config)  # type: ignore[arg-type]
    await host.execute(StartSession(agent_id=agent_id, config=session_config))
    return agent_id


async def state_of(host: AgentApplication, agent_id: str) -> AgentState:
    state = await host.agent_state(agent_id)
    assert state is not None
    return state


def wrong_answer(item: TemplateItem) -> JsonValue:
    if isinstance(item.scoring, ChoiceRule):
        options = item.widget.arguments["options"]
        right = item.scoring.answer
        return {"selection": next(o for i, o in enumerate(options) if right not in (i, o))}
    return {"text": "-1"}


async def answer_everything(
    host: AgentApplication, run: ProactiveAgentExecutor, agent_id: str, right: bool
) -> None:
    template = get_template(TEMPLATE)
    while await run.advance(agent_id) is Outcome.WAITING_FOR_USER:
        session = (await state_of(host, agent_id)).active_session
        assert session is not None
        assert session.pending_action is not None
        item = template.item(session.pending_action.tool_call_id)
        answer = right_answer(item) if right else wrong_answer(item)
        await run.respond(agent_id, ClientResponse(tool_call_id=item.id, response=answer))


async def test_a_template_runs_item_by_item_to_a_scored_completion(host: AgentApplication) -> None:
    agent_id = await templated_agent(host)
    run = ProactiveAgentExecutor(host)
    assert await run.advance(agent_id) is Outcome.WAITING_FOR_USER
    session = (await state_of(host, agent_id)).active_session
    assert session is not None
    first = get_template(TEMPLATE).items[0]
    assert session.pending_action is not None
    assert session.pending_action.tool_call_id == first.id
    assert session.pending_action.props["prompt"] == first.prompt
    assert (await state_of(host, agent_id)).execution_state is not None  # suspended, durably

    await answer_everything(host, run, agent_id, right=True)
    state = await state_of(host, agent_id)
    (ended,) = state.session_history
    assert ended.status is SessionStatus.COMPLETED
    assert ended.summary is not None
    assert ended.summary["passed"] is True
    assert ended.summary["correct_count"] == len(get_template(TEMPLATE).items)
    assert all(item.evaluation and item.evaluation["correct"] for item in ended.items)
    assert (state.scored_sessions, state.average_score) == (1, 1.0)  # the agent's metrics


async def test_wrong_answers_fail_the_pass_mark_and_lower_the_average(
    host: AgentApplication,
) -> None:
    agent_id = await templated_agent(host)
    run = ProactiveAgentExecutor(host)
    await answer_everything(host, run, agent_id, right=True)
    await host.execute(StartSession(agent_id=agent_id, config=SessionConfig(template_id=TEMPLATE)))
    await answer_everything(host, run, agent_id, right=False)
    state = await state_of(host, agent_id)
    last = state.session_history[-1]
    assert last.summary is not None
    assert last.summary["passed"] is False
    assert last.summary["correct_count"] == 0
    assert state.average_score == 0.5  # one perfect session, one at zero


async def test_a_response_the_widget_rejects_changes_nothing(host: AgentApplication) -> None:
    agent_id = await templated_agent(host)
    run = ProactiveAgentExecutor(host)
    await run.advance(agent_id)
    before = await state_of(host, agent_id)
    item_id = get_template(TEMPLATE).items[0].id
    with pytest.raises(InvalidResponse) as refused:
        await run.respond(agent_id, ClientResponse(tool_call_id=item_id, response={"index": 9}))
    assert refused.value.reasons
    assert await state_of(host, agent_id) == before


async def test_max_items_from_the_session_config_ends_early(host: AgentApplication) -> None:
    agent_id = await templated_agent(host, max_items=2)
    run = ProactiveAgentExecutor(host)
    await answer_everything(host, run, agent_id, right=True)
    (ended,) = (await state_of(host, agent_id)).session_history
    assert len(ended.items) == 2
    assert ended.summary is not None
    assert ended.summary["items_answered"] == 2


async def test_the_time_limit_expires_the_session(host: AgentApplication) -> None:
    now = datetime.now(UTC)
    agent_id = await templated_agent(host, time_limit_seconds=60)
    assert await ProactiveAgentExecutor(host).advance(agent_id) is Outcome.WAITING_FOR_USER
    later = ProactiveAgentExecutor(host, clock=lambda: now + timedelta(seconds=61))
    assert await later.advance(agent_id) is Outcome.EXPIRED
    (ended,) = (await state_of(host, agent_id)).session_history
    assert (ended.status, ended.end_reason) == (SessionStatus.EXPIRED, "time_limit")


@pytest.mark.parametrize(
    ("agent_type", "template_id"),
    [
        (AgentType.TUTOR, "arithmetic-basics"),
        (AgentType.THOUGHT, "daily-reflection"),
        (AgentType.EVALUATOR, "ipv4-subnetting"),
        (AgentType.COACH, "coaching-check-in"),
        (AgentType.CONNECTOR, "introductions"),
        (AgentType.WELLNESS, "wellbeing-check"),
        (AgentType.PLANNER, "weekly-plan"),
        (AgentType.RESEARCHER, "research-brief"),
    ],
)
async def test_without_an_llm_a_new_session_runs_its_types_default_template(
    host: AgentApplication, agent_type: AgentType, template_id: str
) -> None:
    agent_id = (await host.execute(GetOrCreateAgent.for_user("d", agent_type))).agent_id
    await host.handle(use_cases.StartSession(agent_id=agent_id, then_drive=False))
    session = (await state_of(host, agent_id)).active_session
    assert session is not None
    assert session.config.template_id == template_id
    assert await host.handle(use_cases.DriveSession(agent_id=agent_id)) is Outcome.WAITING_FOR_USER


async def test_a_session_no_template_and_no_llm_can_drive_is_refused_up_front(
    host: AgentApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a type whose profile names no default template (every packaged one names one)
    without_default = agent_profile(AgentType.COACH).model_copy(update={"default_template": None})
    monkeypatch.setattr(executor_module, "profile_of", lambda state: without_default)
    agent_id = (await host.execute(GetOrCreateAgent.for_user("c", AgentType.COACH))).agent_id
    with pytest.raises(InvalidCommand, match="no default template"):
        await host.handle(use_cases.StartSession(agent_id=agent_id, then_drive=False))
    unknown = use_cases.StartSession(
        agent_id=agent_id, config=SessionConfig(template_id="nope"), then_drive=False
    )
    with pytest.raises(InvalidCommand, match="no template 'nope'"):
        await host.handle(unknown)
    assert (await state_of(host, agent_id)).total_sessions == 0


def test_every_default_template_named_by_an_agent_type_exists() -> None:
    for agent_type in AgentType:
        default = agent_profile(agent_type).default_template
        if default is not None:
            assert get_template(default).id == default


class BusOver:
    """The application as the executor's command bus, for subclasses to intercept commands."""

    def __init__(self, app: AgentApplication) -> None:
        self._app = app

    async def execute(self, command: Command) -> CommandResult:
        return await self._app.execute(command)

    async def agent_state(self, agent_id: str) -> AgentState | None:
        return await self._app.agent_state(agent_id)


class HeldSuspend(BusOver):
    """A command bus that holds the executor's suspend until an answer arrives, then runs the
    suspend first: an answer racing a drive that shows its widget in between."""

    def __init__(self, app: AgentApplication) -> None:
        super().__init__(app)
        self._answer_arrived = asyncio.Event()
        self._suspended = asyncio.Event()

    async def execute(self, command: Command) -> CommandResult:
        if isinstance(command, SuspendExecution):
            await self._answer_arrived.wait()
            try:
                return await self._app.execute(command)
            finally:
                self._suspended.set()
        if isinstance(command, SubmitResponse):
            self._answer_arrived.set()
            await self._suspended.wait()
        return await self._app.execute(command)


async def test_an_answer_racing_the_suspend_of_its_widget_is_checked_against_it(
    host: AgentApplication,
) -> None:
    # Given a drive about to show the first widget, and an answer sent before it is shown
    agent_id = await templated_agent(host)
    bus = HeldSuspend(host)
    run = ProactiveAgentExecutor(bus)
    drive = asyncio.create_task(run.advance(agent_id))
    item_id = get_template(TEMPLATE).items[0].id
    await asyncio.sleep(0.05)  # the drive waits in its suspend now

    # When the answer is recorded just after the widget is shown
    with pytest.raises(InvalidResponse):
        await run.respond(agent_id, ClientResponse(tool_call_id=item_id, response={"index": 9}))

    # Then it was checked against the widget it found: refused, nothing recorded
    assert await drive is Outcome.WAITING_FOR_USER
    session = (await state_of(host, agent_id)).active_session
    assert session is not None
    assert session.pending_action is not None
    assert all(item.completed_at is None for item in session.items)


class RefusingSuspends(BusOver):
    """A command bus on which every suspend is refused however often it is tried."""

    def __init__(self, app: AgentApplication) -> None:
        super().__init__(app)
        self.refused = 0

    async def execute(self, command: Command) -> CommandResult:
        if isinstance(command, SuspendExecution):
            self.refused += 1
            raise ExecutionAlreadySuspended("refused the same way every time")
        return await self._app.execute(command)


async def test_a_step_refused_on_an_unchanged_state_fails_at_once_and_sweeps_stay_quiet(
    host: AgentApplication,
) -> None:
    # Given a session whose next step the aggregate refuses deterministically
    agent_id = await templated_agent(host)
    bus = RefusingSuspends(host)
    host.executor = ProactiveAgentExecutor(bus)
    before = await state_of(host, agent_id)

    # When it is driven, as a request would
    with pytest.raises(SessionStuck):
        await host.drive(agent_id)

    # Then it failed in one try and stored nothing
    assert bus.refused == 1
    assert await state_of(host, agent_id) == before
    # and sweeps answer "stuck" without trying the step again, until the agent moves
    sweep = use_cases.DriveSession(agent_id=agent_id)
    assert await host.handle(sweep) is Outcome.STUCK
    assert await host.handle(sweep) is Outcome.STUCK
    assert bus.refused == 1
    await host.execute(UpdatePreferences(agent_id=agent_id, changes={"level": "beginner"}))
    assert await host.handle(sweep) is Outcome.STUCK
    assert bus.refused == 2
