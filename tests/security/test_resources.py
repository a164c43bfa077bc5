"""No resource before authorisation: a malformed agent id in a path is answered at the edge
with the 404 a missing agent gets, before any actor, event store or read model is spent on
it, and without echoing a hostile id back."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote
from uuid import uuid4

import httpx
import pytest

from serve_app.auth import Principal
from serve_app.backend import Backend
from serve_app.dependencies import agent_id_in_path
from serve_app.problems import NotFound
from tests.support.api_client import PROBLEM, as_user
from tests.support.api_flows import new_tutor
from tests.support.inprocess_api import InProcessApi

WELL_FORMED = "8c0f2a5e-3b1d-4c7e-9a6f-1d2e3f4a5b6c"
MALFORMED = [
    "not-a-uuid",
    "x" * 5000,
    WELL_FORMED.upper(),
    WELL_FORMED.replace("-", ""),
    "{" + WELL_FORMED + "}",
    "urn:uuid:" + WELL_FORMED,
    WELL_FORMED + " ",
    WELL_FORMED + "\n",
    "<img src=x onerror=alert(1)>",
    "..%2F..%2Fetc%2Fpasswd",
    "ägent-ünïcode-\u202e",
    "1" * 36,
]
ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/api/agents/{}", None),
    ("POST", "/api/agents/{}/sessions", {}),
    ("GET", "/api/agents/{}/session", None),
    ("POST", "/api/agents/{}/session/respond", {"tool_call_id": "t-1", "response": {}}),
    ("DELETE", "/api/agents/{}/session", None),
    ("GET", "/api/agents/{}/sessions", None),
    ("PATCH", "/api/agents/{}/preferences", {"changes": {"language": "fr"}}),
    ("POST", "/api/agents/{}/assignments", {"user_id": "mallory", "role": "primary"}),
    ("POST", "/api/agents/{}/archive", {"reason": "mine now"}),
    ("GET", "/api/agents/{}/stream", None),
]


class Untouchable:
    """Stands in for a service a refused request must not reach; records any attempt."""

    def __init__(self, name: str, touched: list[str]) -> None:
        self._name = name
        self._touched = touched

    def __getattr__(self, attribute: str) -> Any:
        self._touched.append(f"{self._name}.{attribute}")
        raise AssertionError(f"{self._name}.{attribute} touched for a malformed agent id")


@contextlib.contextmanager
def untouchable_services(services: Backend) -> Iterator[list[str]]:
    """The runtime (the hosts, hence Ray), the event store and the read model, unreachable."""
    touched: list[str] = []
    saved = (services.runtime, services.event_store, services.read_model)
    services.runtime = Untouchable("runtime", touched)
    services.event_store = Untouchable("event_store", touched)  # type: ignore[assignment]
    services.read_model = Untouchable("read_model", touched)  # type: ignore[assignment]
    try:
        yield touched
    finally:
        services.runtime, services.event_store, services.read_model = saved


def _send(
    http: httpx.AsyncClient, method: str, path: str, body: dict[str, Any] | None, user: str
) -> Any:
    return http.request(method, path, json=body, headers=as_user(user))


def _url(template: str, agent_id: str) -> str:
    return template.format(quote(agent_id, safe=""))


@pytest.mark.parametrize(("method", "template", "body"), ROUTES)
async def test_a_malformed_agent_id_is_a_404_before_anything_is_touched(
    api: InProcessApi, method: str, template: str, body: dict[str, Any] | None
) -> None:
    http = api.http
    victim, attacker = f"victim-{uuid4().hex[:6]}", f"mallory-{uuid4().hex[:6]}"
    victim_agent = await new_tutor(http, victim)
    started = await http.post(
        f"/api/agents/{victim_agent}/sessions", json={}, headers=as_user(victim)
    )
    assert started.status_code == 201, started.text
    store = await api.application.store()
    log_end = await store.last_position()
    missing = await _send(http, method, _url(template, str(uuid4())), body, attacker)

    with untouchable_services(api.services) as touched:
        answers = [
            await _send(http, method, _url(template, agent_id), body, attacker)
            for agent_id in MALFORMED
        ]
    assert touched == []
    for agent_id, answer in zip(MALFORMED, answers, strict=True):
        assert answer.status_code == 404, (agent_id, answer.text)
        assert answer.headers["content-type"].startswith(PROBLEM)
        problem = answer.json()
        for member in ("type", "title", "status", "code"):
            assert problem[member] == missing.json()[member]
        assert problem["code"] == "agent_not_found"
        assert agent_id.strip() not in problem["detail"]
        assert len(problem["detail"]) < 80
    assert missing.status_code == 404

    # Nothing was written, the projector is caught up, the victim's session is still served.
    assert await store.last_position() == log_end
    assert await api.services.projector.wait_for_position(log_end, timeout_s=10)
    assert (await api.services.projector.status()).lag == 0
    current = await http.get(f"/api/agents/{victim_agent}/session", headers=as_user(victim))
    assert current.status_code == 200
    for member in ("session_id", "status", "pending_action"):
        assert current.json()["session"][member] == started.json()["session"][member]


async def test_an_anonymous_malformed_request_is_still_a_401(http: httpx.AsyncClient) -> None:
    answer = await http.get("/api/agents/not-a-uuid")
    assert answer.status_code == 401
    assert answer.headers["content-type"].startswith(PROBLEM)


async def test_the_path_dependency_refuses_all_but_canonical_uuids() -> None:
    who = Principal(user_id="mallory", username="mallory")
    assert await agent_id_in_path(WELL_FORMED, who) == WELL_FORMED
    for agent_id in MALFORMED:
        with pytest.raises(NotFound) as refused:
            await agent_id_in_path(agent_id, who)
        assert refused.value.code == "agent_not_found"
        assert refused.value.title == "Agent not found"
        assert agent_id.strip() not in refused.value.detail


def test_openapi_documents_the_agent_id_as_a_uuid_string() -> None:
    from tests.unit.serve_app.test_openapi import SPEC

    for path, operations in SPEC["paths"].items():
        if "{agent_id}" not in path:
            continue
        for operation in operations.values():
            (parameter,) = [p for p in operation["parameters"] if p["name"] == "agent_id"]
            assert parameter["in"] == "path"
            assert parameter["required"] is True
            assert parameter["schema"]["type"] == "string"
            assert parameter["schema"]["format"] == "uuid"
