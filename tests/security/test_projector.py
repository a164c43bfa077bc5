"""The projector and read-your-writes under attack, over HTTP in-process.

An event the read model cannot hold, appended straight to the log (as an old release or a
script could have written it), must stop the projector visibly (``/readyz`` not ready, with
a reason that shows no user's data and no exception text) while reads and writes go on; a
``?after=`` far past the log's head must not wait; a read model that is behind or down must
answer 503 with Retry-After, never a 404 for what was just created or a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import httpx
import pytest

from eventstore.factory import open_event_store
from eventstore.port import NewEvent
from projections.factory import open_read_model
from projections.projector import Projector
from tests.support.api_client import PROBLEM, as_user
from tests.support.api_flows import LEGACY, new_tutor
from tests.support.inprocess_api import InProcessApi, LocalProjector

SECRET = "alice-private-note"
PREFERENCES = "agent.preferences.updated.v1"
SHORT_WAIT_S = 0.3


def on_postgres(api: InProcessApi) -> bool:
    return api.services.settings.read_model_url.startswith("postgresql")


async def poison(api: InProcessApi, agent_id: str) -> int:
    """Append, straight to the log, a preferences event this read model cannot hold: a NUL
    character (PostgreSQL's text and jsonb cannot carry it), or a lone surrogate (no UTF-8
    store can); returns its position."""
    bad = f"{SECRET}\x00" if on_postgres(api) else f"{SECRET}\ud800"
    event = NewEvent(
        type=PREFERENCES,
        subject=agent_id,
        data={
            "agent_id": agent_id,
            "occurred_at": datetime.now(UTC).isoformat(),
            "preferences": {"note": bad},
        },
    )
    store = api.services.event_store
    stream = f"agent-{agent_id}"
    version = await store.stream_version(stream)
    return (await store.append(stream, [event], expected_version=version)).position


async def stopped(api: InProcessApi) -> None:
    for _ in range(250):
        if (await api.services.projector.status()).stopped_by is not None:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the projector did not stop")


async def caught_up(api: InProcessApi) -> None:
    for _ in range(250):
        if (await api.services.projector.status()).lag == 0:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the projector did not catch up")


@contextlib.contextmanager
def short_read_your_writes(api: InProcessApi) -> Iterator[None]:
    """Queries wait ``SHORT_WAIT_S`` for the read model instead of the default 5 s."""
    settings = api.services.api
    api.services.api = settings.model_copy(update={"read_your_writes_timeout_s": SHORT_WAIT_S})
    try:
        yield
    finally:
        api.services.api = settings


def assert_retry_problem(response: httpx.Response, code: str) -> dict[str, Any]:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.headers["Retry-After"] == "1"
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    return body


async def test_ready_when_the_projector_follows_the_log(api: InProcessApi) -> None:
    await new_tutor(api.http, "alice")
    await caught_up(api)
    ready = await api.http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "projection_lag": 0}


async def test_an_event_the_read_model_cannot_hold_makes_readyz_not_ready_cleanly(
    api_on_each_read_model: InProcessApi,
) -> None:
    api = api_on_each_read_model
    http = api.http
    alice = await new_tutor(http, "alice")
    bob = await new_tutor(http, "bob")
    at = await poison(api, alice)
    await stopped(api)

    ready = await http.get("/readyz")
    assert ready.status_code == 503
    assert ready.headers["Retry-After"]
    body = ready.json()
    assert body["status"] == "not_ready"
    assert body["reason"] == "poison_event"
    assert body["stopped_at_position"] == at
    assert body["stopped_at_event_type"] == PREFERENCES
    assert body["projection_lag"] >= 1
    for leak in (SECRET, alice, "alice", "Error", "\\u", "psycopg", "Traceback", "repr"):
        assert leak not in ready.text, leak

    # Never skipped: the read model stays at the event before it.
    status = await api.services.projector.status()
    assert (status.checkpoint, status.stopped_at) == (at - 1, at)

    # Stale reads are still reads, for every tenant, the poisoned one included.
    listed = await http.get("/api/agents", headers=as_user("bob"))
    assert listed.status_code == 200
    assert [a["id"] for a in listed.json()] == [bob]
    assert (await http.get(f"/api/agents/{alice}", headers=as_user("alice"))).status_code == 200
    # Writes do not depend on the projector: a session starts and is read back.
    started = await http.post(f"/api/agents/{bob}/sessions", json={}, headers=as_user("bob"))
    assert started.status_code == 201, started.text
    current = await http.get(f"/api/agents/{bob}/session", headers=as_user("bob"))
    assert current.status_code == 200
    assert current.json()["session"]["session_id"] == started.json()["session"]["session_id"]
    # The victim's agent answers from the log, poisoned preference and all.
    state = await http.get(f"/api/agents/{alice}/session", headers=as_user("alice"))
    assert state.status_code == 200
    # A write whose answer needs the read model says so: 503, the write itself is kept.
    with short_read_your_writes(api):
        changed = await http.patch(
            f"/api/agents/{bob}/preferences",
            json={"changes": {"language": "fr"}},
            headers=as_user("bob"),
        )
    assert_retry_problem(changed, "read_model_behind")
    stored = await api.services.event_store.read(f"agent-{bob}")
    assert stored[-1].type == PREFERENCES
    assert stored[-1].data["preferences"] == {"language": "fr"}


async def test_after_far_past_the_log_head_answers_at_once_without_the_projector(
    api_on_each_read_model: InProcessApi,
) -> None:
    api = api_on_each_read_model
    http = api.http
    bob = await new_tutor(http, "bob")
    await caught_up(api)

    async def never(position: int, timeout_s: float) -> bool:
        raise AssertionError("read-your-writes waited on the projector")

    api.services.projector.wait_for_position = never  # type: ignore[method-assign]
    for after in (10**12, 2**63, 10**30):
        for path in ("/api/agents", f"/api/agents/{bob}", f"/api/agents/{bob}/sessions"):
            started = time.monotonic()
            answer = await http.get(path, params={"after": after}, headers=as_user("bob"))
            assert answer.status_code == 200, (path, after, answer.text)
            assert time.monotonic() - started < 1.0, (path, after)
    # The replica still sees new writes, and the projector is unaffected.
    carol = await new_tutor(http, "carol")
    assert (await http.get(f"/api/agents/{carol}", headers=as_user("carol"))).status_code == 200
    await caught_up(api)


@pytest.fixture
async def stopped_projector(api: InProcessApi) -> AsyncIterator[InProcessApi]:
    """The API with its projector stopped and queries waiting ``SHORT_WAIT_S`` for it."""
    await api.services.projector.stop()  # type: ignore[attr-defined]
    with short_read_your_writes(api):
        yield api


async def restart_projector(api: InProcessApi) -> LocalProjector:
    events = await open_event_store(api.services.settings.event_store_url)
    restarted = LocalProjector(Projector(events, api.services.read_model))
    api.services.projector = restarted
    return restarted


async def test_a_read_your_writes_timeout_is_a_503_never_a_404(
    stopped_projector: InProcessApi,
) -> None:
    api = stopped_projector
    http = api.http
    key = {"Idempotency-Key": str(uuid4())}

    created = await http.post(
        "/api/agents", json={"agent_type": "tutor"}, headers=as_user("carol") | key
    )
    assert_retry_problem(created, "read_model_behind")
    assert "carol" not in created.text
    listed = await http.get("/api/agents", params={"after": 1}, headers=as_user("carol"))
    assert_retry_problem(listed, "read_model_behind")
    legacy = await http.post(LEGACY, json={"session_type": "learning"}, headers=as_user("dave"))
    assert_retry_problem(legacy, "read_model_behind")

    # The writes were kept: once the projector runs again, the same retry answers in full.
    restarted = await restart_projector(api)
    try:
        again = await http.post(
            "/api/agents", json={"agent_type": "tutor"}, headers=as_user("carol") | key
        )
        assert again.status_code in (200, 201), again.text
        carol = again.json()["id"]
        shown = await http.get(f"/api/agents/{carol}", headers=as_user("carol"))
        assert shown.status_code == 200
        assert (await restarted.status()).stopped_by is None
    finally:
        await restarted.stop()


async def test_an_agent_the_read_model_lacks_after_a_write_that_wrote_nothing_is_not_a_404(
    stopped_projector: InProcessApi,
) -> None:
    api = stopped_projector
    # Created while the projector is stopped, then asked for again: the second get-or-create
    # writes nothing (position 0) and its document is not in the read model yet.
    first = await api.http.post("/api/agents", json={"agent_type": "tutor"}, headers=as_user("e"))
    assert_retry_problem(first, "read_model_behind")
    second = await api.http.post("/api/agents", json={"agent_type": "tutor"}, headers=as_user("e"))
    assert_retry_problem(second, "read_model_behind")


async def test_a_read_model_outage_is_a_503_and_readyz_says_which_store(
    api_on_each_read_model: InProcessApi,
) -> None:
    api = api_on_each_read_model
    http = api.http
    bob = await new_tutor(http, "bob")
    started = await http.post(f"/api/agents/{bob}/sessions", json={}, headers=as_user("bob"))
    session_id = started.json()["session"]["session_id"]
    await caught_up(api)

    # This replica's read-model connection is lost (the projector keeps its own).
    healthy = api.services.read_model
    lost = await open_read_model(api.services.settings.read_model_url)
    await lost.close()
    api.services.read_model = lost
    try:
        for method, path in (
            ("GET", "/api/agents"),
            ("GET", f"/api/agents/{bob}"),
            ("GET", f"/api/agents/{bob}/sessions"),
            ("POST", "/api/agents"),
            ("GET", LEGACY),
            ("GET", f"{LEGACY}/{session_id}"),
        ):
            body = {"agent_type": "tutor"} if method == "POST" else None
            answer = await http.request(method, path, json=body, headers=as_user("bob"))
            problem = assert_retry_problem(answer, "read_model_unavailable")
            for leak in ("sqlite", "postgres", "closed", "pool", "Error"):
                assert leak not in problem["detail"], (path, leak)
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert ready.headers["Retry-After"]
        assert ready.json() == {"status": "not_ready", "reason": "read_model_unavailable"}
    finally:
        api.services.read_model = healthy

    # Back on a working connection, everything answers again; nothing was lost.
    assert (await http.get("/readyz")).status_code == 200
    assert (await http.get(f"/api/agents/{bob}", headers=as_user("bob"))).status_code == 200
    current = await http.get(f"/api/agents/{bob}/session", headers=as_user("bob"))
    assert current.json()["session"]["session_id"] == session_id
    await caught_up(api)


async def test_an_event_store_outage_makes_readyz_not_ready(api: InProcessApi) -> None:
    healthy = api.services.event_store
    lost = await open_event_store(api.services.settings.event_store_url)
    await lost.close()
    api.services.event_store = lost
    try:
        ready = await api.http.get("/readyz")
    finally:
        api.services.event_store = healthy
    assert ready.status_code == 503
    assert ready.headers["Retry-After"]
    assert ready.json() == {"status": "not_ready", "reason": "event_store_unavailable"}
    assert (await api.http.get("/readyz")).status_code == 200
