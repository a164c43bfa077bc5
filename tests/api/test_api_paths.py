"""Paths as clients meet them, with the web UI mounted at / as ``make run`` serves it: unknown
API paths, the legacy routes' trailing slash, and query values a route refuses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.support.api_client import PROBLEM, SECRET, as_user
from tests.support.api_flows import LEGACY, new_tutor, new_user
from tests.support.inprocess_api import inprocess_api

INDEX = "<!doctype html><title>Agent Host</title>"


@pytest.fixture
async def with_ui(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text(INDEX)
    async with inprocess_api(tmp_path, secret=SECRET, web_dir=web) as opened:
        yield opened.http


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
async def test_an_unknown_api_path_is_a_404_problem_whatever_the_method(
    with_ui: httpx.AsyncClient, method: str
) -> None:
    # Given the UI mounted at /, when a client calls an API path that does not exist
    response = await with_ui.request(method, "/api/no-such/route", headers=as_user("u"))
    # Then it is told the path is unknown, as problem+json, not that the method is wrong
    assert response.status_code == 404, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["status"] == 404


async def test_a_known_api_path_called_with_another_method_is_a_405_naming_the_allowed_ones(
    with_ui: httpx.AsyncClient,
) -> None:
    response = await with_ui.put("/api/agents", headers=as_user("u"))
    assert response.status_code == 405, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert set(response.headers["allow"].split(", ")) == {"GET", "POST"}


async def test_the_ui_still_serves_its_own_paths(with_ui: httpx.AsyncClient) -> None:
    response = await with_ui.get("/")
    assert response.status_code == 200
    assert response.text == INDEX


@pytest.mark.parametrize("path", [LEGACY, f"{LEGACY}/"])
async def test_the_legacy_routes_answer_with_and_without_the_trailing_slash(
    with_ui: httpx.AsyncClient, path: str
) -> None:
    # Given a client of the old controller, whose routes were declared with the slash
    user = new_user("legacy")
    # When it starts a session and lists its sessions on either spelling
    started = await with_ui.post(path, json={"session_type": "thought"}, headers=as_user(user))
    listed = await with_ui.get(path, headers=as_user(user))
    # Then both answer in place (no redirect that would drop the POST body)
    assert started.status_code == 201, started.text
    assert listed.status_code == 200, listed.text
    assert [s["id"] for s in listed.json()] == [started.json()["session_id"]]


async def test_an_empty_terminate_reason_is_a_422_problem_and_ends_nothing(
    with_ui: httpx.AsyncClient,
) -> None:
    # Given an agent with an active session
    user = new_user("reason")
    agent_id = await new_tutor(with_ui, user)
    started = await with_ui.post(f"/api/agents/{agent_id}/sessions", json={}, headers=as_user(user))
    assert started.status_code == 201, started.text
    # When the session is terminated with an empty reason
    response = await with_ui.delete(
        f"/api/agents/{agent_id}/session", params={"reason": ""}, headers=as_user(user)
    )
    # Then the reason is refused, and the session is still active
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    current = await with_ui.get(f"/api/agents/{agent_id}/session", headers=as_user(user))
    assert current.json()["session"]["status"] != "terminated"
