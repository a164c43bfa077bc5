"""Streams never outlive their viewer's access, and never show what writers stored for
themselves (request digests)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from tests.support.api_client import as_user, read_sse
from tests.support.api_flows import new_tutor, new_user


async def test_a_members_open_stream_ends_when_the_member_is_unassigned(
    http: httpx.AsyncClient,
) -> None:
    owner, member = new_user("olga"), new_user("sam")
    agent_id = await new_tutor(http, owner)
    assigned = await http.post(
        f"/api/agents/{agent_id}/assignments",
        json={"user_id": member, "role": "shared"},
        headers=as_user(owner),
    )
    assert assigned.status_code == 201, assigned.text
    started = await http.post(f"/api/agents/{agent_id}/sessions", json={}, headers=as_user(owner))
    assert started.status_code == 201, started.text

    # The session stays open: only the unassign can end the member's stream.
    watching = asyncio.create_task(
        read_sse(http, f"/api/agents/{agent_id}/stream", as_user(member))
    )
    await asyncio.sleep(0.2)
    removed = await http.delete(
        f"/api/agents/{agent_id}/assignments/{member}", headers=as_user(owner)
    )
    assert removed.status_code == 200, removed.text

    events = await asyncio.wait_for(watching, timeout=10)
    assert events[-1]["event"] == "agent.user.unassigned.v1"
    again = await http.get(f"/api/agents/{agent_id}/stream", headers=as_user(member))
    assert again.status_code == 404


@pytest.mark.parametrize(
    "stream",
    [
        pytest.param({"params": {"session_id": "SESSION"}}, id="narrowed to the session"),
        pytest.param({"headers": {"Last-Event-ID": str(10**15)}}, id="past the log head"),
    ],
)
async def test_no_way_of_opening_a_stream_outlives_the_viewers_unassign(
    http: httpx.AsyncClient, stream: dict[str, dict[str, str]]
) -> None:
    owner, member = new_user("olga"), new_user("sam")
    agent_id = await new_tutor(http, owner)
    assigned = await http.post(
        f"/api/agents/{agent_id}/assignments",
        json={"user_id": member, "role": "shared"},
        headers=as_user(owner),
    )
    assert assigned.status_code == 201, assigned.text
    started = await http.post(f"/api/agents/{agent_id}/sessions", json={}, headers=as_user(owner))
    session_id = started.json()["session"]["session_id"]
    params = {k: v.replace("SESSION", session_id) for k, v in stream.get("params", {}).items()}
    url = f"/api/agents/{agent_id}/stream" + (
        f"?session_id={params['session_id']}" if params else ""
    )
    headers = {**as_user(member), **stream.get("headers", {})}

    watching = asyncio.create_task(read_sse(http, url, headers))
    await asyncio.sleep(0.2)
    removed = await http.delete(
        f"/api/agents/{agent_id}/assignments/{member}", headers=as_user(owner)
    )
    assert removed.status_code == 200, removed.text
    events = await asyncio.wait_for(watching, timeout=10)  # it ends: no longer the member's
    assert all(event["event"] != "agent.session.terminated.v1" for event in events)


async def test_streams_show_no_stored_extension_attributes(http: httpx.AsyncClient) -> None:
    owner = new_user("olga")
    agent_id = await new_tutor(http, owner)
    key = {"Idempotency-Key": "0b5e3c53-6a55-4f0e-9a4e-0c1b6c3a2d11"}
    started = await http.post(
        f"/api/agents/{agent_id}/sessions", json={}, headers={**as_user(owner), **key}
    )
    assert started.status_code == 201, started.text
    terminated = await http.delete(f"/api/agents/{agent_id}/session", headers=as_user(owner))
    assert terminated.status_code == 200, terminated.text

    events = await read_sse(http, f"/api/agents/{agent_id}/stream", as_user(owner))
    envelope_and_log = {
        "specversion", "id", "source", "type", "subject", "time", "datacontenttype", "data",
        "stream", "streamversion", "position",
    }  # fmt: skip
    assert events
    for event in events:
        assert set(json.loads(event["data"])) == envelope_and_log
