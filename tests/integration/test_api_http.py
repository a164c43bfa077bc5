"""The agent API over real HTTP, through the Ray Serve proxy to two replicas, on the shared
Ray instance: what needs Ray itself (host kills, live SSE streams) and one full flow. Routes,
errors and access are tested in-process, in ``tests/api/test_agents_api.py``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
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
from tests.support.api_client import as_user, read_sse
from tests.support.api_flows import TEMPLATE, new_tutor, run_session_to_the_end

from .api_support import client, deployed_api


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
