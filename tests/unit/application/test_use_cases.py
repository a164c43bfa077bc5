"""The application in-process: access decided inside the agent's turn, and one application call
per HTTP request (the host actor's single hop)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from application.bootstrap import HostConfig, build_application
from application.service import AgentApplication
from application.use_cases import AnswerWidget, ReadCurrentSession, StartSession
from domain.access import Caller
from domain.commands import AssignUser, GetOrCreateAgent, TerminateSession, UpdatePreferences
from domain.enums import AgentType, AssignmentRole
from domain.errors import AccessDenied, AgentNotFound, InvalidResponse, WrongToolCall
from serve_app.auth import AuthSettings, mint_dev_token
from tests.support.inprocess_api import inprocess_api

SECRET = "use-case-secret-" + "x" * 32
OWNER = Caller(user_id="olga")
OBSERVER = Caller(user_id="otto")
STRANGER = Caller(user_id="sam")
ADMIN = Caller(user_id="root", is_admin=True)


@pytest.fixture
async def app() -> AsyncIterator[AgentApplication]:
    application = build_application(HostConfig(event_store_url=f"memory://{uuid4().hex}"))
    yield application
    await application.close()


async def tutor_with_observer(app: AgentApplication) -> str:
    created = await app.handle(GetOrCreateAgent.for_user("olga", AgentType.TUTOR, caller=OWNER))
    await app.handle(
        AssignUser(
            agent_id=created.agent_id,
            caller=OWNER,
            user_id=OBSERVER.user_id,
            role=AssignmentRole.OBSERVER,
            assigned_by=OWNER.user_id,
        )
    )
    return created.agent_id


async def test_an_observer_may_read_but_every_write_is_refused_in_the_command(
    app: AgentApplication,
) -> None:
    agent_id = await tutor_with_observer(app)
    assert await app.handle(ReadCurrentSession(agent_id=agent_id, caller=OBSERVER)) is None

    with pytest.raises(AccessDenied):
        await app.handle(StartSession(agent_id=agent_id, caller=OBSERVER))
    with pytest.raises(AccessDenied):
        await app.handle(UpdatePreferences(agent_id=agent_id, caller=OBSERVER, changes={"a": 1}))
    state = await app.agent_state(agent_id)
    assert state is not None
    assert (state.active_session, state.preferences) == (None, {})


async def test_a_stranger_is_told_the_agent_does_not_exist_before_anything_else(
    app: AgentApplication,
) -> None:
    agent_id = await tutor_with_observer(app)
    started = await app.handle(StartSession(agent_id=agent_id, caller=OWNER))
    assert started.session is not None
    assert started.session.pending_action is not None

    # The answer is wrong for the widget too: refused as a missing agent, not a bad answer.
    answer = AnswerWidget(agent_id=agent_id, caller=STRANGER, tool_call_id="x", response=None)
    with pytest.raises(AgentNotFound):
        await app.handle(answer)
    with pytest.raises(AgentNotFound):
        await app.handle(ReadCurrentSession(agent_id=agent_id, caller=STRANGER))
    with pytest.raises(AgentNotFound):
        await app.handle(TerminateSession(agent_id=agent_id, caller=STRANGER))
    # The owner is told what is wrong with the answer.
    with pytest.raises(WrongToolCall):
        await app.handle(answer.model_copy(update={"caller": OWNER}))
    bad = AnswerWidget(agent_id=agent_id, caller=OWNER, tool_call_id="times-7x8", response=7)
    with pytest.raises(InvalidResponse):
        await app.handle(bad)


async def test_an_admin_may_act_on_any_agent(app: AgentApplication) -> None:
    agent_id = await tutor_with_observer(app)
    ended = await app.handle(StartSession(agent_id=agent_id, caller=ADMIN, then_drive=False))
    assert ended.result.event_types == ("agent.session.started.v1",)


class CountingRuntime:
    """The application, counting the requests each route sends it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[str] = []

    async def handle(self, request: Any) -> Any:
        self.calls.append(type(request).__name__)
        return await self.inner.handle(request)

    async def close(self) -> None:
        await self.inner.close()


async def test_every_route_makes_one_application_call(tmp_path: Path) -> None:
    headers = {"Authorization": "Bearer " + mint_dev_token(AuthSettings(jwt_secret=SECRET), "olga")}
    async with inprocess_api(tmp_path, secret=SECRET) as api:
        runtime = CountingRuntime(api.services.runtime)
        api.services.runtime = runtime
        http = api.http

        async def calls(method: str, url: str, **kwargs: Any) -> list[str]:
            runtime.calls.clear()
            answer = await http.request(method, url, headers=headers, **kwargs)
            assert answer.status_code < 300, answer.text
            return list(runtime.calls)

        assert await calls("POST", "/api/agents", json={"agent_type": "tutor"}) == [
            "GetOrCreateAgent"
        ]
        agent_id = (await http.get("/api/agents", headers=headers)).json()[0]["id"]
        base = f"/api/agents/{agent_id}"
        assert await calls("POST", f"{base}/sessions", json={}) == ["StartSession"]
        assert await calls("GET", f"{base}/session") == ["ReadCurrentSession"]
        pending = (await http.get(f"{base}/session", headers=headers)).json()["session"]
        answer = {
            "tool_call_id": pending["pending_action"]["tool_call_id"],
            "response": {"selection": "56"},
        }
        assert await calls("POST", f"{base}/session/respond", json=answer) == ["AnswerWidget"]
        assert await calls("PATCH", f"{base}/preferences", json={"changes": {"a": 1}}) == [
            "UpdatePreferences"
        ]
        assignment = {"user_id": "otto", "role": "observer"}
        assert await calls("POST", f"{base}/assignments", json=assignment) == ["AssignUser"]
        assert await calls("DELETE", f"{base}/session") == ["TerminateSession"]
        assert await calls("POST", f"{base}/archive", json={"reason": "done"}) == ["ArchiveAgent"]
        assert await calls("GET", f"{base}/sessions") == []  # the read model answers

        legacy = await calls("POST", "/api/session", json={"session_type": "validation"})
        assert legacy == ["StartSessionOfType"]
        session_id = (await http.get("/api/session", headers=headers)).json()[0]["id"]
        assert await calls("GET", f"/api/session/{session_id}") == ["LocateSession"]
        assert await calls("DELETE", f"/api/session/{session_id}") == ["TerminateSession"]
