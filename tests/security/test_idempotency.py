"""Idempotency-Key over HTTP: a key names one request of one user on one agent.

A retry (the same key, route and body) is applied once and answered as the first time; the same
key with another body, or on another route of that agent, is refused (422
``idempotency_key_reused``) and changes nothing; the same key on another agent, or from another
user, is a request of its own. Every refusal leaves the log, the victim's agent, the projector
and another tenant's session as they were.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

import httpx
import pytest

from execution.templates.loader import get_template
from execution.templates.model import right_answer
from tests.integration.test_executor_templates import wrong_answer
from tests.security.aftermath import AgentAsItWas, as_it_is, assert_as_it_was, settled
from tests.support.api_client import PROBLEM, as_user
from tests.support.api_flows import LEGACY, TEMPLATE, new_tutor, new_user
from tests.support.inprocess_api import InProcessApi


@dataclass(frozen=True)
class World:
    """Olga's tutor, nothing running on it yet; Tess, a tenant with a session of her own."""

    owner: str
    agent_id: str
    tenant: str
    tenant_agent: str
    tenant_session: str

    @property
    def url(self) -> str:
        return f"/api/agents/{self.agent_id}"


@dataclass(frozen=True)
class Write:
    """One write as a client sends it, and the same write with another body."""

    method: str
    url: str
    json: Any = None
    params: dict[str, str] = field(default_factory=dict)
    other: dict[str, Any] = field(default_factory=dict)
    """What changes in the other request: ``json``, ``params`` or ``url``."""
    agent_id: str = ""
    """The agent it writes to (read back to show a refusal changed nothing)."""

    async def send(self, api: InProcessApi, user: str, key: str, **change: Any) -> httpx.Response:
        sent = {"url": self.url, "json": self.json, "params": self.params, **change}
        return await api.http.request(
            self.method,
            sent["url"],
            json=sent["json"],
            params=sent["params"],
            headers={**as_user(user), "Idempotency-Key": key},
        )


async def world(api: InProcessApi) -> World:
    owner, tenant = new_user("olga"), new_user("tess")
    agent_id = await new_tutor(api.http, owner)
    tenant_agent = await new_tutor(api.http, tenant)
    started = await api.http.post(
        f"/api/agents/{tenant_agent}/sessions", json={}, headers=as_user(tenant)
    )
    assert started.status_code == 201, started.text
    return World(owner, agent_id, tenant, tenant_agent, started.json()["session"]["session_id"])


async def start(api: InProcessApi, w: World) -> dict[str, Any]:
    started = await api.http.post(f"{w.url}/sessions", json={}, headers=as_user(w.owner))
    assert started.status_code == 201, started.text
    session: dict[str, Any] = started.json()["session"]
    return session


def answers(pending: dict[str, Any]) -> tuple[Any, Any]:
    item = get_template(TEMPLATE).item(pending["tool_call_id"])
    return right_answer(item), wrong_answer(item)


# ---------------------------------------------------------------------- every write route


async def create(api: InProcessApi, w: World) -> Write:
    body = {"agent_type": "coach", "name": "Coach"}
    return Write("POST", "/api/agents", body, other={"json": {**body, "name": "Another coach"}})


async def start_session(api: InProcessApi, w: World) -> Write:
    other = {"json": {"system_prompt": "Be brief."}}
    return Write("POST", f"{w.url}/sessions", {}, other=other, agent_id=w.agent_id)


async def respond(api: InProcessApi, w: World) -> Write:
    pending = (await start(api, w))["pending_action"]
    right, wrong = answers(pending)
    body = {"tool_call_id": pending["tool_call_id"], "response": right}
    other = {"json": {**body, "response": wrong}}
    return Write("POST", f"{w.url}/session/respond", body, other=other, agent_id=w.agent_id)


async def terminate(api: InProcessApi, w: World) -> Write:
    await start(api, w)
    return Write(
        "DELETE",
        f"{w.url}/session",
        params={"reason": "Done"},
        other={"params": {"reason": "Something else"}},
        agent_id=w.agent_id,
    )


async def preferences(api: InProcessApi, w: World) -> Write:
    body = {"changes": {"language": "fr"}}
    other = {"json": {"changes": {"language": "de"}}}
    return Write("PATCH", f"{w.url}/preferences", body, other=other, agent_id=w.agent_id)


async def assign(api: InProcessApi, w: World) -> Write:
    body = {"user_id": new_user("mia"), "role": "mentee"}
    other = {"json": {**body, "role": "observer"}}
    return Write("POST", f"{w.url}/assignments", body, other=other, agent_id=w.agent_id)


async def unassign(api: InProcessApi, w: World) -> Write:
    mia, sam = new_user("mia"), new_user("sam")
    for user in (mia, sam):
        assigned = await api.http.post(
            f"{w.url}/assignments",
            json={"user_id": user, "role": "mentee"},
            headers=as_user(w.owner),
        )
        assert assigned.status_code == 201, assigned.text
    url = f"{w.url}/assignments"
    return Write("DELETE", f"{url}/{mia}", other={"url": f"{url}/{sam}"}, agent_id=w.agent_id)


async def archive(api: InProcessApi, w: World) -> Write:
    other = {"json": {"reason": "Something else"}}
    return Write("POST", f"{w.url}/archive", {"reason": "Done"}, other=other, agent_id=w.agent_id)


async def legacy_start(api: InProcessApi, w: World) -> Write:
    body = {"session_type": "learning"}  # on the caller's tutor: Olga's
    other = {"json": {**body, "system_prompt": "Be brief."}}
    return Write("POST", LEGACY, body, other=other, agent_id=w.agent_id)


async def legacy_respond(api: InProcessApi, w: World) -> Write:
    session = await start(api, w)
    await settled(api)  # the legacy API finds a session's agent in the read model
    right, wrong = answers(session["pending_action"])
    body = {"tool_call_id": session["pending_action"]["tool_call_id"], "response": right}
    url = f"{LEGACY}/{session['session_id']}/respond"
    return Write(
        "POST", url, body, other={"json": {**body, "response": wrong}}, agent_id=w.agent_id
    )


async def legacy_terminate(api: InProcessApi, w: World) -> Write:
    session = await start(api, w)
    await settled(api)
    return Write(
        "DELETE",
        f"{LEGACY}/{session['session_id']}",
        params={"reason": "Done"},
        other={"params": {"reason": "Something else"}},
        agent_id=w.agent_id,
    )


WRITES: dict[str, Callable[[InProcessApi, World], Awaitable[Write]]] = {
    "create": create,
    "start": start_session,
    "respond": respond,
    "terminate": terminate,
    "preferences": preferences,
    "assign": assign,
    "unassign": unassign,
    "archive": archive,
    "legacy-start": legacy_start,
    "legacy-respond": legacy_respond,
    "legacy-terminate": legacy_terminate,
}


async def before(api: InProcessApi, w: World, agent_id: str) -> AgentAsItWas:
    """What a refused request must leave as it is: the log, the agent, its session."""
    return await as_it_is(api, f"/api/agents/{agent_id}", as_user(w.owner))


async def assert_unaffected(api: InProcessApi, w: World, agent_id: str, was: AgentAsItWas) -> None:
    await assert_as_it_was(api, f"/api/agents/{agent_id}", as_user(w.owner), was)
    await assert_tenant_served(api, w)


async def assert_tenant_served(api: InProcessApi, w: World) -> None:
    served = await api.http.get(f"/api/agents/{w.tenant_agent}/session", headers=as_user(w.tenant))
    assert served.status_code == 200, served.text
    assert served.json()["session"]["session_id"] == w.tenant_session
    assert served.json()["session"]["pending_action"] is not None


def keyed(user: str, key: str) -> dict[str, str]:
    return {**as_user(user), "Idempotency-Key": key}


def assert_reused(response: httpx.Response) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert (body["status"], body["code"]) == (422, "idempotency_key_reused")
    assert "Traceback" not in body["detail"]


def agent_of(write: Write, first: httpx.Response) -> str:
    """The agent a write wrote to: the one it names, or (create) the one it answered with."""
    return write.agent_id or str(first.json()["id"])


@pytest.mark.parametrize("route", WRITES)
async def test_a_retry_is_applied_once_and_answered_as_the_first_time(
    api: InProcessApi, route: str
) -> None:
    w = await world(api)
    write = await WRITES[route](api, w)
    key = str(uuid4())

    first = await write.send(api, w.owner, key)
    assert first.status_code < 300, first.text
    was = await before(api, w, agent_of(write, first))
    retried = await write.send(api, w.owner, key)

    assert (retried.status_code, retried.content) == (first.status_code, first.content)
    await assert_unaffected(api, w, agent_of(write, first), was)


@pytest.mark.parametrize("route", WRITES)
async def test_the_same_key_with_another_request_is_refused_and_changes_nothing(
    api: InProcessApi, route: str
) -> None:
    w = await world(api)
    write = await WRITES[route](api, w)
    key = str(uuid4())
    first = await write.send(api, w.owner, key)
    assert first.status_code < 300, first.text
    was = await before(api, w, agent_of(write, first))

    refused = await write.send(api, w.owner, key, **write.other)

    assert_reused(refused)
    await assert_unaffected(api, w, agent_of(write, first), was)
    retried = await write.send(api, w.owner, key)  # the first request is still recognised
    assert (retried.status_code, retried.content) == (first.status_code, first.content)


async def test_the_same_key_on_another_route_of_the_agent_is_refused(api: InProcessApi) -> None:
    w = await world(api)
    key = {**as_user(w.owner), "Idempotency-Key": str(uuid4())}
    started = await api.http.post(f"{w.url}/sessions", json={}, headers=key)
    assert started.status_code == 201, started.text
    session_id = started.json()["session"]["session_id"]
    was = await before(api, w, w.agent_id)  # settled: the legacy API sees the session

    for refused in (
        await api.http.delete(f"{w.url}/session", headers=key),
        await api.http.patch(f"{w.url}/preferences", json={"changes": {"a": 1}}, headers=key),
        await api.http.delete(f"{LEGACY}/{session_id}", headers=key),
        await api.http.post(LEGACY, json={"session_type": "learning"}, headers=key),
    ):
        assert_reused(refused)

    await assert_unaffected(api, w, w.agent_id, was)
    assert was.session["session"]["session_id"] == session_id
    assert was.session["session"]["pending_action"] is not None  # still running


async def test_the_same_key_on_another_agent_of_the_same_user_is_independent(
    api: InProcessApi,
) -> None:
    user = new_user("olga")
    key = str(uuid4())
    created = [
        await api.http.post("/api/agents", json={"agent_type": kind}, headers=keyed(user, key))
        for kind in ("tutor", "coach")
    ]
    assert [c.status_code for c in created] == [201, 201], [c.text for c in created]
    tutor, coach = (str(c.json()["id"]) for c in created)
    assert tutor != coach

    key = str(uuid4())  # a key per step: on one agent, another route is another request
    changed = [
        await api.http.patch(
            f"/api/agents/{agent}/preferences",
            json={"changes": {"language": "fr"}},
            headers=keyed(user, key),
        )
        for agent in (tutor, coach)
    ]
    assert [c.status_code for c in changed] == [200, 200], [c.text for c in changed]
    assert [c.json()["preferences"]["language"] for c in changed] == ["fr", "fr"]

    key = str(uuid4())
    legacy = [  # on the tutor, and on a thought agent the first call creates
        await api.http.post(LEGACY, json={"session_type": kind}, headers=keyed(user, key))
        for kind in ("learning", "thought")
    ]
    assert [s.status_code for s in legacy] == [201, 201], [s.text for s in legacy]
    assert legacy[0].json()["session_id"] != legacy[1].json()["session_id"]
    await settled(api)


async def test_the_same_key_from_two_users_on_their_own_agents_is_independent(
    api_on_each_read_model: InProcessApi,
) -> None:
    api = api_on_each_read_model
    w = await world(api)
    users = (new_user("alice"), new_user("bob"))

    key = str(uuid4())
    created = [
        await api.http.post("/api/agents", json={"agent_type": "tutor"}, headers=keyed(user, key))
        for user in users
    ]
    assert [c.status_code for c in created] == [201, 201], [c.text for c in created]
    agents = [str(c.json()["id"]) for c in created]

    key = str(uuid4())
    started = [
        await api.http.post(f"/api/agents/{agent}/sessions", json={}, headers=keyed(user, key))
        for user, agent in zip(users, agents, strict=True)
    ]
    assert [s.status_code for s in started] == [201, 201], [s.text for s in started]
    sessions = [s.json()["session"] for s in started]
    assert sessions[0]["session_id"] != sessions[1]["session_id"]

    key = str(uuid4())
    for user, agent, session in zip(users, agents, sessions, strict=True):
        right, _ = answers(session["pending_action"])
        body = {"tool_call_id": session["pending_action"]["tool_call_id"], "response": right}
        answered = await api.http.post(
            f"/api/agents/{agent}/session/respond", json=body, headers=keyed(user, key)
        )
        assert answered.status_code == 200, answered.text
        assert answered.json()["session"]["items"][0]["user_response"] is not None

    # Olga's session, started with the key both users sent last, is hers alone.
    mine = await api.http.post(f"{w.url}/sessions", json={}, headers=keyed(w.owner, key))
    assert mine.status_code == 201, mine.text
    assert mine.json()["session"]["session_id"] not in {s["session_id"] for s in sessions}
    await settled(api)
    await assert_tenant_served(api, w)


@pytest.mark.parametrize("api_kind", ["agents", "legacy"])
async def test_a_retry_of_the_answer_that_ended_the_session_is_answered_alike(
    api: InProcessApi, api_kind: str
) -> None:
    w = await world(api)
    session = await start(api, w)
    await settled(api)
    legacy = api_kind == "legacy"
    url = f"{LEGACY}/{session['session_id']}/respond" if legacy else f"{w.url}/session/respond"
    pending = session["pending_action"]
    while pending is not None:
        body = {"tool_call_id": pending["tool_call_id"], "response": answers(pending)[0]}
        headers = keyed(w.owner, str(uuid4()))
        answered = await api.http.post(url, json=body, headers=headers)
        assert answered.status_code == 200, answered.text
        now = answered.json() if legacy else answered.json()["session"] or {}
        pending = now.get("pending_action")

    retried = await api.http.post(url, json=body, headers=headers)

    assert (retried.status_code, retried.content) == (answered.status_code, answered.content)
