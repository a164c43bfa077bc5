"""Steps the HTTP tests share, in-process or on Serve: a tutor driven through its sessions on
the agent API, and legacy sessions on the deprecated /api/session API."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import httpx

from execution.templates.loader import get_template
from execution.templates.model import right_answer
from serve_app.legacy import DEPRECATION_HEADERS
from tests.integration.test_executor_templates import wrong_answer
from tests.support.api_client import as_user

TEMPLATE = "arithmetic-basics"
LEGACY = "/api/session"


# The agent API.


async def new_tutor(http: httpx.AsyncClient, user: str) -> str:
    created = await http.post("/api/agents", json={"agent_type": "tutor"}, headers=as_user(user))
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def run_session_to_the_end(
    http: httpx.AsyncClient, user: str, agent_id: str, *, right: bool = True
) -> dict[str, Any]:
    template = get_template(TEMPLATE)
    started = await http.post(f"/api/agents/{agent_id}/sessions", json={}, headers=as_user(user))
    assert started.status_code == 201, started.text
    state = started.json()
    while state["outcome"] == "waiting_for_user":
        action = state["session"]["pending_action"]
        item = template.item(action["tool_call_id"])
        answer = right_answer(item) if right else wrong_answer(item)
        answered = await http.post(
            f"/api/agents/{agent_id}/session/respond",
            json={"tool_call_id": action["tool_call_id"], "response": answer},
            headers=as_user(user),
        )
        assert answered.status_code == 200, answered.text
        state = answered.json()
    assert state["outcome"] == "completed"
    return state


# The legacy API.


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
