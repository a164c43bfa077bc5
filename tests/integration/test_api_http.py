"""The agent API over real HTTP, through the Ray Serve proxy to two replicas, on the shared
Ray instance."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any
from uuid import uuid4

import httpx
import pytest
import ray
from ray import serve

from actors.runtime import AgentRuntime
from actors.settings import Settings
from domain.ids import stream_name
from eventstore.factory import open_event_store
from execution.templates.loader import get_template
from execution.templates.model import right_answer
from tests.integration.test_executor_templates import wrong_answer

from .api_support import PROBLEM, as_user, client, deployed_api, read_sse, token

TEMPLATE = "arithmetic-basics"


@pytest.fixture(scope="module")
def deployed(
    ray_instance: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Settings]]:
    with deployed_api(tmp_path_factory.mktemp("api"), replicas=2) as (url, settings):
        (deployment,) = serve.status().applications["agenthost"].deployments.values()
        assert deployment.replica_states.get("RUNNING") == 2  # every test goes through both
        yield url, settings


@pytest.fixture
async def http(deployed: tuple[str, Settings]) -> AsyncIterator[httpx.AsyncClient]:
    async with client(deployed[0]) as opened:
        yield opened


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


async def test_the_full_flow_get_or_create_start_answer_complete_history(
    http: httpx.AsyncClient,
) -> None:
    user = f"alice-{uuid4().hex[:6]}"
    agent_id = await new_tutor(http, user)
    again = await http.post("/api/agents", json={"agent_type": "tutor"}, headers=as_user(user))
    assert (again.status_code, again.json()["id"]) == (200, agent_id)

    final = await run_session_to_the_end(http, user, agent_id)
    history = await http.get(
        f"/api/agents/{agent_id}/sessions",
        params={"after": final["position"]},
        headers=as_user(user),
    )
    assert history.status_code == 200
    (ended,) = history.json()
    assert ended["status"] == "completed"
    assert ended["summary"]["passed"] is True
    agent = (
        await http.get(
            f"/api/agents/{agent_id}", params={"after": final["position"]}, headers=as_user(user)
        )
    ).json()
    assert (agent["successful_completions"], agent["average_score"]) == (1, 1.0)
    listed = (await http.get("/api/agents", headers=as_user(user))).json()
    assert [a["id"] for a in listed] == [agent_id]


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


async def test_a_host_killed_between_widget_and_answer_recovers(
    http: httpx.AsyncClient, deployed: tuple[str, Settings]
) -> None:
    user = f"dave-{uuid4().hex[:6]}"
    agent_id = await new_tutor(http, user)
    started = (
        await http.post(f"/api/agents/{agent_id}/sessions", json={}, headers=as_user(user))
    ).json()
    ray.kill(AgentRuntime(deployed[1]).host_for(agent_id), no_restart=False)
    action = started["session"]["pending_action"]
    answer = right_answer(get_template(TEMPLATE).item(action["tool_call_id"]))
    answered = await http.post(
        f"/api/agents/{agent_id}/session/respond",
        json={"tool_call_id": action["tool_call_id"], "response": answer},
        headers=as_user(user),
    )
    assert answered.status_code == 200, answered.text
    items = answered.json()["session"]["items"]
    assert items[0]["evaluation"]["correct"] is True
    assert answered.json()["outcome"] == "waiting_for_user"
    assert len(items) == 2


async def test_sse_resumes_with_last_event_id_without_gap_or_repeat(
    http: httpx.AsyncClient, deployed: tuple[str, Settings]
) -> None:
    user = f"erin-{uuid4().hex[:6]}"
    agent_id = await new_tutor(http, user)
    started = await http.post(f"/api/agents/{agent_id}/sessions", json={}, headers=as_user(user))
    url = f"/api/agents/{agent_id}/stream"

    first = await read_sse(http, url, as_user(user), stop_after=3)  # then the client drops
    assert [e["event"] for e in first] == [
        "agent.created.v1",
        "agent.session.started.v1",
        "agent.client.action.requested.v1",
    ]
    template = get_template(TEMPLATE)
    action = started.json()["session"]["pending_action"]
    missed = await http.post(  # answered while disconnected
        f"/api/agents/{agent_id}/session/respond",
        json={
            "tool_call_id": action["tool_call_id"],
            "response": right_answer(template.item(action["tool_call_id"])),
        },
        headers=as_user(user),
    )
    assert missed.status_code == 200

    async def finish_the_session() -> None:
        await asyncio.sleep(0.3)  # the reconnected stream is live by now
        state = missed.json()
        while state["outcome"] == "waiting_for_user":
            pending = state["session"]["pending_action"]
            answer = right_answer(template.item(pending["tool_call_id"]))
            state = (
                await http.post(
                    f"/api/agents/{agent_id}/session/respond",
                    json={"tool_call_id": pending["tool_call_id"], "response": answer},
                    headers=as_user(user),
                )
            ).json()

    finishing = asyncio.create_task(finish_the_session())
    resumed = await read_sse(http, url, {**as_user(user), "Last-Event-ID": first[-1]["id"]})
    await finishing
    assert resumed[-1]["event"] == "agent.session.completed.v1"  # and the stream ended

    store = await open_event_store(deployed[1].event_store_url)
    try:
        stored = [str(r.position) for r in await store.read(stream_name(agent_id))]
    finally:
        await store.close()
    assert [e["id"] for e in first + resumed] == stored  # every durable event once, in order
    cloud = json.loads(resumed[0]["data"])
    assert (cloud["specversion"], cloud["subject"]) == ("1.0", agent_id)

    by_query = await read_sse(
        http, f"{url}?last_event_id={stored[-2]}", as_user(user)
    )  # EventSource cannot set headers: the query parameter does the same
    assert [e["id"] for e in by_query] == stored[-1:]


async def test_a_session_stream_holds_that_sessions_events_only(
    http: httpx.AsyncClient,
) -> None:
    user = f"uma-{uuid4().hex[:6]}"
    agent_id = await new_tutor(http, user)
    first = await run_session_to_the_end(http, user, agent_id)
    preferences = await http.patch(
        f"/api/agents/{agent_id}/preferences",
        json={"changes": {"language": "fr"}},
        headers=as_user(user),
    )
    assert preferences.status_code == 200
    second = await http.post(f"/api/agents/{agent_id}/sessions", json={}, headers=as_user(user))
    url = f"/api/agents/{agent_id}/stream"

    def sessions_of(events: list[dict[str, str]]) -> set[str]:
        return {json.loads(event["data"])["data"]["session_id"] for event in events}

    # A session that is over: its whole log, then the stream ends by itself.
    history = await http.get(
        f"/api/agents/{agent_id}/sessions",
        params={"after": first["position"]},
        headers=as_user(user),
    )
    over = history.json()[-1]["session_id"]
    past = await read_sse(http, f"{url}?session_id={over}", as_user(user))
    assert sessions_of(past) == {over}
    assert past[0]["event"] == "agent.session.started.v1"
    assert past[-1]["event"] == "agent.session.completed.v1"

    # The active one: from its start, skipping the agent's other events, then live.
    live = second.json()["session"]["session_id"]
    current = await read_sse(http, f"{url}?session_id={live}", as_user(user), stop_after=2)
    assert [e["event"] for e in current] == [
        "agent.session.started.v1",
        "agent.client.action.requested.v1",
    ]
    assert sessions_of(current) == {live}
    assert int(current[0]["id"]) > int(past[-1]["id"])  # positions still the log's

    # Every stream first tells clients to reconnect within a second, not their 3 s default.
    async with http.stream("GET", f"{url}?session_id={over}", headers=as_user(user)) as raw:
        assert await anext(raw.aiter_lines()) == "retry: 1000"


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
