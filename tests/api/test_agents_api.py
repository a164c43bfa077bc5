"""The agent API in-process: routes, errors and access over the app a Serve replica runs.

What needs Ray itself (host kills, two replicas, live SSE streams, one full flow) stays in
``tests/integration/test_api_http.py``.
"""

from __future__ import annotations

from uuid import uuid4

import httpx

from tests.support.api_client import PROBLEM, as_user, token
from tests.support.api_flows import TEMPLATE, new_tutor, run_session_to_the_end


async def test_the_agent_remembers_across_sessions(http: httpx.AsyncClient) -> None:
    user = f"frank-{uuid4().hex[:6]}"
    agent_id = await new_tutor(http, user)
    await run_session_to_the_end(http, user, agent_id, right=True)
    last = await run_session_to_the_end(http, user, agent_id, right=False)
    after = {"after": last["position"]}
    agent = (await http.get(f"/api/agents/{agent_id}", params=after, headers=as_user(user))).json()
    assert (agent["total_sessions"], agent["average_score"]) == (2, 0.5)
    assert agent["last_session"]["summary"]["passed"] is False
    assert agent["last_session"]["summary"]["weakest_topics"]
    history = (
        await http.get(f"/api/agents/{agent_id}/sessions", params=after, headers=as_user(user))
    ).json()
    assert [s["summary"]["passed"] for s in history] == [False, True]  # newest first


async def test_a_second_session_while_one_is_active_is_409(http: httpx.AsyncClient) -> None:
    user = f"bob-{uuid4().hex[:6]}"
    agent_id = await new_tutor(http, user)
    first = await http.post(f"/api/agents/{agent_id}/sessions", json={}, headers=as_user(user))
    assert first.status_code == 201
    second = await http.post(f"/api/agents/{agent_id}/sessions", json={}, headers=as_user(user))
    assert second.status_code == 409
    assert second.headers["content-type"].startswith(PROBLEM)
    current = (await http.get(f"/api/agents/{agent_id}/session", headers=as_user(user))).json()
    assert current["session"]["session_id"] == first.json()["session"]["session_id"]


async def test_authentication_and_authorisation(http: httpx.AsyncClient) -> None:
    owner, stranger, watcher = (f"{n}-{uuid4().hex[:6]}" for n in ("own", "str", "obs"))
    agent_id = await new_tutor(http, owner)

    assert (await http.get("/api/agents")).status_code == 401
    forged = token(owner)[:-4] + "AAAA"
    bad = await http.get("/api/agents", headers={"Authorization": f"Bearer {forged}"})
    assert bad.status_code == 401
    assert bad.headers["content-type"].startswith(PROBLEM)

    hidden = await http.get(f"/api/agents/{agent_id}", headers=as_user(stranger))
    missing = await http.get(f"/api/agents/{uuid4()}", headers=as_user(stranger))
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["title"] == missing.json()["title"]

    assigned = await http.post(
        f"/api/agents/{agent_id}/assignments",
        json={"user_id": watcher, "role": "observer"},
        headers=as_user(owner),
    )
    assert assigned.status_code == 201, assigned.text
    position = assigned.json()["position"]
    seen = await http.get(
        f"/api/agents/{agent_id}", params={"after": position}, headers=as_user(watcher)
    )
    assert seen.status_code == 200
    acting = await http.post(f"/api/agents/{agent_id}/sessions", json={}, headers=as_user(watcher))
    assert acting.status_code == 403
    admin = await http.get(f"/api/agents/{agent_id}", headers=as_user(stranger, "admin"))
    assert admin.status_code == 200


async def test_bad_input_is_a_4xx_problem_and_changes_nothing(http: httpx.AsyncClient) -> None:
    user = f"carol-{uuid4().hex[:6]}"
    headers = {**as_user(user), "content-type": "application/json"}
    cases = [
        (b"{not json", 400),
        (b'{"agent_type": 7}', 422),
        (b'{"agent_type": "wizard"}', 422),
        (b'{"agent_type": "tutor", "unexpected": true}', 422),
        (b'{"agent_type": "tutor", "name": "' + b"x" * 8000 + b'"}', 413),
    ]
    for body, expected in cases:
        answer = await http.post("/api/agents", content=body, headers=headers)
        assert answer.status_code == expected, (body[:40], answer.text)
        assert answer.headers["content-type"].startswith(PROBLEM)
        assert answer.json()["status"] == expected
    assert (await http.get("/api/agents", headers=as_user(user))).json() == []

    agent_id = await new_tutor(http, user)
    await http.post(f"/api/agents/{agent_id}/sessions", json={}, headers=as_user(user))
    wrong = await http.post(
        f"/api/agents/{agent_id}/session/respond",
        json={"tool_call_id": "times-7x8", "response": {"index": 99}},
        headers=as_user(user),
    )
    assert wrong.status_code == 422
    assert wrong.json()["reasons"]
    current = (await http.get(f"/api/agents/{agent_id}/session", headers=as_user(user))).json()
    assert current["session"]["items"][0]["user_response"] is None


async def test_the_web_ui_reads_its_config_and_the_templates(http: httpx.AsyncClient) -> None:
    config = await http.get("/api/ui/config")  # before sign-in: no token
    assert config.status_code == 200
    assert config.json()["auth_mode"] == "dev"
    assert "tutor" in config.json()["agent_types"]
    refused = await http.get("/api/templates")
    assert (refused.status_code, refused.headers["content-type"]) == (401, PROBLEM)
    templates = (await http.get("/api/templates", headers=as_user("tess"))).json()
    arithmetic = next(t for t in templates if t["id"] == TEMPLATE)
    assert (arithmetic["agent_type"], arithmetic["items"]) == ("tutor", 8)
