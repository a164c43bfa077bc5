"""The deprecated /api/session API in-process: legacy clients driven by the agent flow, over the
app a Serve replica runs.

Live streams and one full flow stay on Serve, in ``tests/integration/test_legacy_http.py``.
"""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import uuid4

import httpx
import pytest

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
