"""The deprecated /api/session API over real HTTP: legacy clients driven by the agent flow, on
Serve: the live stream and one full flow. Its routes and errors are tested in-process, in
``tests/api/test_legacy_api.py``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from actors.settings import Settings
from tests.support.api_client import PROBLEM, as_user, read_sse
from tests.support.api_flows import (
    LEGACY,
    agent_types,
    answer,
    answer_until_done,
    assert_deprecated,
    new_user,
    start,
)

from .api_support import client, deployed_api

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
