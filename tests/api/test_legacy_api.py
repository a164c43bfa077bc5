"""The deprecated /api/session API in-process: legacy clients driven by the agent flow, over the
app a Serve replica runs.

Live streams and one full flow stay on Serve, in ``tests/integration/test_legacy_http.py``.
"""

from __future__ import annotations

import contextlib
from typing import Any
from uuid import uuid4

import httpx
import pytest
from pydantic import JsonValue

from domain.enums import AGENT_TYPE_OF_SESSION_TYPE, SessionType
from execution.agent_profiles import agent_profile
from execution.templates.loader import get_template
from execution.templates.model import TemplateItem, right_answer
from tests.support.api_client import PROBLEM, as_user, read_sse
from tests.support.api_flows import LEGACY, agent_types, assert_deprecated, new_user, start


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


def a_valid_answer(item: TemplateItem) -> JsonValue:
    """The right answer where the item has one, else any answer its widget accepts."""
    with contextlib.suppress(ValueError):
        return right_answer(item)
    if item.widget.tool == "present_choices":
        return {"selection": item.widget.arguments["options"][0]}
    if item.widget.tool == "present_code_editor":
        return {"code": "print('hello')"}
    return {"text": "An answer"}


@pytest.mark.parametrize("session_type", [t.value for t in SessionType])
async def test_every_session_type_runs_to_completion_with_no_llm(
    http: httpx.AsyncClient, session_type: str
) -> None:
    # Given the embedded default: no LLM configured
    user = new_user(session_type)
    # When a legacy client starts a session of the type and answers every widget
    sid = (await start(http, user, session_type))["session_id"]
    agent_type = AGENT_TYPE_OF_SESSION_TYPE[SessionType(session_type)]
    template = get_template(agent_profile(agent_type).default_template or "")
    state = (await http.get(f"{LEGACY}/{sid}/state", headers=as_user(user))).json()
    answered = 0
    while state["pending_action"] is not None:
        pending = state["pending_action"]
        response = await http.post(
            f"{LEGACY}/{sid}/respond",
            json={
                "tool_call_id": pending["tool_call_id"],
                "response": a_valid_answer(template.item(pending["tool_call_id"])),
            },
            headers=as_user(user),
        )
        assert response.status_code == 200, response.text
        state = response.json()
        answered += 1
    # Then the session ran its agent type's default template to the end
    assert answered == len(template.planned_items)
    session = (await http.get(f"{LEGACY}/{sid}", headers=as_user(user))).json()
    assert session["status"] == "completed"
