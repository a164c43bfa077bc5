"""The deprecated /api/session API over real HTTP: legacy clients driven by the agent flow."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any
from uuid import uuid4

import httpx
import pytest

from actors.settings import Settings
from execution.templates.loader import get_template
from execution.templates.model import right_answer
from serve_app.legacy import DEPRECATION_HEADERS

from .api_support import PROBLEM, as_user, client, deployed_api, read_sse

LEGACY = "/api/session"
CONTRACT_DETAIL_FIELDS = {
    "id",
    "user_id",
    "conversation_id",
    "session_type",
    "control_mode",
    "status",
    "system_prompt",
    "config",
    "current_item_id",
    "items",
    "ui_state",
    "pending_action",
    "created_at",
    "started_at",
    "completed_at",
    "terminated_reason",
}
CONTRACT_SUMMARY_FIELDS = {
    "id",
    "session_type",
    "control_mode",
    "status",
    "items_completed",
    "created_at",
    "started_at",
    "completed_at",
}


@pytest.fixture(scope="module")
def deployed(
    ray_instance: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Settings]]:
    with deployed_api(tmp_path_factory.mktemp("legacy")) as deployment:
        yield deployment


@pytest.fixture
async def http(deployed: tuple[str, Settings]) -> AsyncIterator[httpx.AsyncClient]:
    async with client(deployed[0]) as opened:
        yield opened


def new_user(name: str) -> str:
    return f"{name}-{uuid4().hex[:6]}"


def assert_deprecated(response: httpx.Response) -> None:
    for name, value in DEPRECATION_HEADERS.items():
        assert response.headers.get(name) == value, (name, response.status_code)


async def start(http: httpx.AsyncClient, user: str, session_type: str) -> dict[str, Any]:
    started = await http.post(LEGACY, json={"session_type": session_type}, headers=as_user(user))
    assert started.status_code == 201, started.text
    assert_deprecated(started)
    body: dict[str, Any] = started.json()
    return body


async def answer(
    http: httpx.AsyncClient, user: str, session_id: str, pending: dict[str, Any]
) -> dict[str, Any]:
    """Answer the arithmetic widget right; the answer says how the session stands after."""
    item = get_template("arithmetic-basics").item(pending["tool_call_id"])
    answered = await http.post(
        f"{LEGACY}/{session_id}/respond",
        json={"tool_call_id": pending["tool_call_id"], "response": right_answer(item)},
        headers=as_user(user),
    )
    assert answered.status_code == 200, answered.text
    assert_deprecated(answered)
    body: dict[str, Any] = answered.json()
    assert body["accepted"] is True
    return body


async def answer_until_done(
    http: httpx.AsyncClient, user: str, session_id: str, pending: dict[str, Any] | None
) -> dict[str, Any]:
    state: dict[str, Any] = {"pending_action": pending}
    while state["pending_action"] is not None:
        state = await answer(http, user, session_id, state["pending_action"])
    return state


async def agent_types(http: httpx.AsyncClient, user: str) -> list[str]:
    return [a["agent_type"] for a in (await http.get("/api/agents", headers=as_user(user))).json()]


async def test_a_learning_session_runs_to_completion_through_the_legacy_api(
    http: httpx.AsyncClient,
) -> None:
    user = new_user("lena")
    started = await start(http, user, "learning")
    sid = started["session_id"]
    assert started["status"] == "awaiting_client_action"
    assert started["control_mode"] == "proactive"
    assert started["stream_url"] == f"{LEGACY}/{sid}/stream"
    assert await agent_types(http, user) == ["tutor"]
    second = await http.post(LEGACY, json={"session_type": "learning"}, headers=as_user(user))
    assert second.status_code == 409  # one agent, one active session
    assert second.json()["code"] == "session_already_active"

    state = (await http.get(f"{LEGACY}/{sid}/state", headers=as_user(user))).json()
    assert set(state) == {"status", "pending_action", "current_item", "ui_state"}
    pending = state["pending_action"]
    assert pending["widget_type"] == "multiple_choice"
    assert state["current_item"]["client_action"] == pending
    assert state["ui_state"] == {
        "input_locked": True,
        "current_item_id": state["current_item"]["item_id"],
    }

    stale = await http.post(
        f"{LEGACY}/{sid}/respond",
        json={"tool_call_id": "not-the-pending-one", "response": {"index": 0}},
        headers=as_user(user),
    )
    assert stale.status_code == 409, stale.text
    invalid = await http.post(
        f"{LEGACY}/{sid}/respond",
        json={"tool_call_id": pending["tool_call_id"], "response": {"index": 99}},
        headers=as_user(user),
    )
    assert invalid.status_code == 422
    assert invalid.headers["content-type"].startswith(PROBLEM)
    assert_deprecated(invalid)

    final = await answer_until_done(http, user, sid, pending)
    assert final["status"] == "completed"

    detail = await http.get(f"{LEGACY}/{sid}", headers=as_user(user))
    assert detail.status_code == 200
    session = detail.json()
    assert set(session) == CONTRACT_DETAIL_FIELDS
    assert (session["id"], session["user_id"]) == (sid, user)
    assert (session["session_type"], session["status"]) == ("learning", "completed")
    assert session["conversation_id"] == started["conversation_id"]
    assert len(session["items"]) == 8
    assert all(item["evaluation"]["correct"] for item in session["items"])
    assert session["pending_action"] is None
    assert session["current_item_id"] is None
    assert session["ui_state"] == {"input_locked": False, "current_item_id": None}
    assert session["completed_at"] is not None
    assert session["terminated_reason"] is None

    completed = (
        await http.get(LEGACY, params={"status": "completed"}, headers=as_user(user))
    ).json()
    assert [s["id"] for s in completed] == [sid]
    assert set(completed[0]) == CONTRACT_SUMMARY_FIELDS
    assert completed[0]["items_completed"] == 8
    active = await http.get(LEGACY, params={"status": "active"}, headers=as_user(user))
    assert active.json() == []


async def test_the_legacy_stream_uses_the_legacy_names_and_resumes_with_last_event_id(
    http: httpx.AsyncClient,
) -> None:
    user = new_user("sam")
    sid = (await start(http, user, "learning"))["session_id"]
    url = f"{LEGACY}/{sid}/stream"
    pending = (await http.get(f"{LEGACY}/{sid}/state", headers=as_user(user))).json()[
        "pending_action"
    ]

    reading = asyncio.create_task(read_sse(http, url, as_user(user), stop_after=3))
    await asyncio.sleep(0.5)  # the stream is live by now
    after_first = await answer(http, user, sid, pending)
    first = await reading  # then the client drops
    assert [e["event"] for e in first] == ["connected", "client_action", "run_suspended"]
    connected = json.loads(first[0]["data"])
    assert (connected["session_id"], connected["status"]) == (sid, "awaiting_client_action")
    assert connected["pending_action"] == pending
    assert "id" not in first[0]  # only durable events carry a log position
    shown = json.loads(first[1]["data"])
    assert shown["tool_call_id"] == after_first["pending_action"]["tool_call_id"]

    missed = await answer(http, user, sid, after_first["pending_action"])  # while disconnected

    async def finish() -> None:
        await asyncio.sleep(0.5)
        await answer_until_done(http, user, sid, missed["pending_action"])

    finishing = asyncio.create_task(finish())
    resumed = await read_sse(http, url, {**as_user(user), "Last-Event-ID": first[-1]["id"]})
    await finishing
    names = [e["event"] for e in resumed]
    assert names[0] == "connected"
    assert names[1] == "client_action"  # the widget shown while the client was away
    assert (
        json.loads(resumed[1]["data"])["tool_call_id"] == (missed["pending_action"]["tool_call_id"])
    )
    assert names[-1] == "session_completed"  # and the stream ended
    assert set(names) == {"connected", "client_action", "run_suspended", "session_completed"}
    ids = [int(e["id"]) for e in first + resumed if "id" in e]
    assert ids == sorted(set(ids))  # no repeat, in log order

    replay = await read_sse(http, url, as_user(user))  # an ended session: state, end, close
    assert [e["event"] for e in replay] == ["connected", "session_completed"]
    assert json.loads(replay[1]["data"])["summary"]["passed"] is True


async def test_delete_terminates_the_session(http: httpx.AsyncClient) -> None:
    user = new_user("dora")
    sid = (await start(http, user, "thought"))["session_id"]
    terminated = await http.delete(f"{LEGACY}/{sid}", headers=as_user(user))
    assert terminated.status_code == 200, terminated.text
    assert_deprecated(terminated)
    assert terminated.json() == {
        "session_id": sid,
        "status": "terminated",
        "terminated_reason": "User terminated",
    }
    session = (await http.get(f"{LEGACY}/{sid}", headers=as_user(user))).json()
    assert (session["status"], session["terminated_reason"]) == ("terminated", "User terminated")
    assert session["completed_at"] is not None
    events = await read_sse(http, f"{LEGACY}/{sid}/stream", as_user(user))
    assert [e["event"] for e in events] == ["connected", "session_terminated"]

    again = await http.delete(f"{LEGACY}/{sid}", headers=as_user(user))
    assert again.status_code == 409
    assert again.headers["content-type"].startswith(PROBLEM)
    assert_deprecated(again)

    second = (await start(http, user, "thought"))["session_id"]
    reasoned = await http.delete(
        f"{LEGACY}/{second}", params={"reason": "Closed the tab"}, headers=as_user(user)
    )
    assert reasoned.json()["terminated_reason"] == "Closed the tab"


async def test_another_users_session_is_the_same_404_as_a_missing_one(
    http: httpx.AsyncClient,
) -> None:
    owner, stranger = new_user("olga"), new_user("stan")
    sid = (await start(http, owner, "learning"))["session_id"]
    missing = str(uuid4())
    for method, suffix in [
        ("GET", ""),
        ("GET", "/state"),
        ("GET", "/stream"),
        ("DELETE", ""),
        ("POST", "/respond"),
    ]:
        body = {"tool_call_id": "times-7x8", "response": {"index": 1}}
        kwargs: dict[str, Any] = {"json": body} if method == "POST" else {}
        hidden = await http.request(
            method, f"{LEGACY}/{sid}{suffix}", headers=as_user(stranger), **kwargs
        )
        absent = await http.request(
            method, f"{LEGACY}/{missing}{suffix}", headers=as_user(stranger), **kwargs
        )
        assert hidden.status_code == absent.status_code == 404, (method, suffix, hidden.text)
        assert hidden.json()["code"] == absent.json()["code"] == "session_not_found"
        assert_deprecated(hidden)
    assert (await http.get(LEGACY, headers=as_user(stranger))).json() == []
    state = await http.get(f"{LEGACY}/{sid}/state", headers=as_user(owner))
    assert state.json()["current_item"]["user_response"] is None  # the stranger changed nothing


async def test_deprecation_headers_on_errors_and_deprecated_in_openapi(
    http: httpx.AsyncClient,
) -> None:
    unauthenticated = await http.get(LEGACY)
    assert unauthenticated.status_code == 401
    assert_deprecated(unauthenticated)
    malformed = await http.post(LEGACY, json={"session_type": "poetry"}, headers=as_user("x"))
    assert malformed.status_code == 422
    assert malformed.json()["code"] == "validation_failed"
    assert_deprecated(malformed)
    listed = await http.get(LEGACY, headers=as_user(new_user("hal")))
    assert (listed.status_code, listed.json()) == (200, [])
    assert_deprecated(listed)
    assert "deprecation" not in (await http.get("/api/agents", headers=as_user("x"))).headers

    spec = (await http.get("/openapi.json")).json()
    legacy_ops = [
        op for path, ops in spec["paths"].items() if path.startswith(LEGACY) for op in ops.values()
    ]
    assert len(legacy_ops) == 7
    assert all(op.get("deprecated") is True for op in legacy_ops)
    agent_ops = [
        op
        for path, ops in spec["paths"].items()
        if path.startswith("/api/agents")
        for op in ops.values()
    ]
    assert agent_ops
    assert not any(op.get("deprecated") for op in agent_ops)


@pytest.mark.parametrize(
    ("session_type", "agent_type"),
    [
        ("thought", "thought"),
        ("learning", "tutor"),
        ("validation", "evaluator"),
        ("survey", "evaluator"),
    ],
)
async def test_each_session_type_starts_on_its_agent_type(
    http: httpx.AsyncClient, session_type: str, agent_type: str
) -> None:
    user = new_user(session_type)
    sid = (await start(http, user, session_type))["session_id"]
    assert await agent_types(http, user) == [agent_type]
    session = (await http.get(f"{LEGACY}/{sid}", headers=as_user(user))).json()
    assert (session["session_type"], session["status"]) == (
        session_type,
        "awaiting_client_action",
    )


@pytest.mark.parametrize("session_type", ["workflow", "approval"])
async def test_workflow_and_approval_need_an_llm_or_a_template(
    http: httpx.AsyncClient, session_type: str
) -> None:
    """They run on planner agents, which have no default template: with no LLM the start is
    refused; naming a template in the config runs it."""
    user = new_user(session_type)
    refused = await http.post(LEGACY, json={"session_type": session_type}, headers=as_user(user))
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "invalid_command"
    assert_deprecated(refused)
    for _ in range(50):  # the agent was got or created before the refusal; its projection lags
        if await agent_types(http, user):
            break
        await asyncio.sleep(0.1)
    assert await agent_types(http, user) == ["planner"]
    assert (await http.get(LEGACY, headers=as_user(user))).json() == []

    templated = await http.post(
        LEGACY,
        json={"session_type": session_type, "config": {"template_id": "daily-reflection"}},
        headers=as_user(user),
    )
    assert templated.status_code == 201, templated.text
    assert templated.json()["status"] == "awaiting_client_action"
