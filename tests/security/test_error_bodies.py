"""No error body shows what only the server should know: the LLM's URL, host, port or model
name, the provider's own text, a database DSN, Ray's node and worker text.

A caller gets a fixed text and an ``error_id``; the log line with that id holds the detail for
the operator. Each failure is injected with distinctive secret strings that must not come back,
and afterwards the agent, the projector and another tenant's session are as they were.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

from application.use_cases import ReadLiveEvents
from eventstore.port import StoreUnavailable
from execution.llm.settings import LlmSettings
from serve_app.auth import Authenticator, AuthSettings
from tests.security.aftermath import settled
from tests.support.api_client import PROBLEM, SECRET, as_user, read_sse
from tests.support.api_flows import LEGACY, TEMPLATE, new_tutor, new_user, start
from tests.support.fake_llm_server import HttpError, running_fake_llm
from tests.support.inprocess_api import InProcessApi, inprocess_api

SECRET_MODEL = "secret-model-7731"
SECRET_PATH = "v1-secret-path-7731"
PROVIDER_TEXT = "provider-secret-4242 has no such deployment"
DSN = "postgresql://agenthost:hunter2-secret@db-secret-9.internal:5432/agenthost"
RAY_TEXT = "worker 6f1c… on node 10.9.8.7-secret died: SIGKILL (OOM killer)"
ERROR_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextlib.asynccontextmanager
async def api_with_llm(tmp_path: Path, base_url: str) -> AsyncIterator[InProcessApi]:
    llm = LlmSettings(_env_file=None, base_url=base_url, model=SECRET_MODEL, max_attempts=1)
    async with inprocess_api(tmp_path, secret=SECRET, llm=llm) as opened:
        yield opened


class Failing:
    """Stands in for the agents' hosts (or a store method): every call raises ``error()``."""

    def __init__(self, error: Callable[[], Exception]) -> None:
        self._error = error

    async def handle(self, *_: object, **__: object) -> Any:
        raise self._error()


def in_actor(cause: Exception) -> RayTaskError:
    """What awaiting an actor call raises when the actor raised ``cause``."""
    return RayTaskError(
        "AgentHost.handle",
        f"Traceback (most recent call last):\n  File ... {RAY_TEXT}\n",
        cause,
        proctitle="ray::AgentHost.handle",
        pid=4242,
        ip="10.9.8.7",
    ).as_instanceof_cause()


async def tenant(api: InProcessApi) -> tuple[str, str]:
    """Another user with a templated session running (no LLM needed): theirs must go on."""
    user = new_user("tess")
    agent_id = await new_tutor(api.http, user)
    started = await api.http.post(
        f"/api/agents/{agent_id}/sessions",
        json={"config": {"template_id": TEMPLATE}},
        headers=as_user(user),
    )
    assert started.status_code == 201, started.text
    return user, agent_id


async def assert_tenant_served(api: InProcessApi, user: str, agent_id: str) -> None:
    await settled(api)
    served = await api.http.get(f"/api/agents/{agent_id}/session", headers=as_user(user))
    assert served.status_code == 200, served.text
    assert served.json()["session"]["pending_action"] is not None


def opaque_problem(
    response: httpx.Response, status: int, code: str, secrets: tuple[str, ...]
) -> str:
    """The problem shows its fixed text only; its error_id, for the log."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["code"] == code
    for secret in secrets:
        assert secret not in response.text, secret
    assert "://" not in body["detail"]
    assert ERROR_ID.match(body["error_id"]), body
    error_id: str = body["error_id"]
    return error_id


def logged(caplog: pytest.LogCaptureFixture, error_id: str, secret: str) -> None:
    """One log line names the error id and carries (with its traceback, if it has one) the
    detail the body left out."""
    lines = [r for r in caplog.records if error_id in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in caplog.records]
    assert secret in logging.Formatter().format(lines[0])


async def test_an_llm_that_does_not_answer_shows_neither_its_url_nor_its_model(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = closed_port()
    async with api_with_llm(tmp_path, f"http://127.0.0.1:{port}/{SECRET_PATH}") as api:
        other, other_agent = await tenant(api)
        user = new_user("lou")
        agent_id = await new_tutor(api.http, user)

        with caplog.at_level(logging.WARNING):
            response = await api.http.post(
                f"/api/agents/{agent_id}/sessions", json={}, headers=as_user(user)
            )

        secrets = ("127.0.0.1", str(port), SECRET_PATH, SECRET_MODEL, "connection attempts")
        error_id = opaque_problem(response, 503, "llm_unavailable", secrets)
        assert response.headers["retry-after"] == "5"
        logged(caplog, error_id, SECRET_MODEL)
        agent = await api.http.get(f"/api/agents/{agent_id}", headers=as_user(user))
        assert agent.status_code == 200
        await assert_tenant_served(api, other, other_agent)


async def test_an_llm_that_refuses_shows_neither_its_text_nor_its_address(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_fake_llm() as llm, api_with_llm(tmp_path, llm.base_url) as api:
        other, other_agent = await tenant(api)
        user = new_user("lou")
        agent_id = await new_tutor(api.http, user)
        llm.script(HttpError(400, json.dumps({"error": {"message": PROVIDER_TEXT}})))

        with caplog.at_level(logging.WARNING):
            response = await api.http.post(
                f"/api/agents/{agent_id}/sessions", json={}, headers=as_user(user)
            )

        port = llm.base_url.rsplit(":", 1)[1].split("/")[0]
        secrets = ("127.0.0.1", port, SECRET_MODEL, "provider-secret", "HTTP 400")
        error_id = opaque_problem(response, 502, "llm_rejected", secrets)
        logged(caplog, error_id, PROVIDER_TEXT)
        await assert_tenant_served(api, other, other_agent)


@pytest.mark.parametrize(
    ("failure", "status", "code", "secret"),
    [
        (
            lambda: in_actor(StoreUnavailable(f"could not connect to {DSN}")),
            503,
            "store_unavailable",
            DSN,
        ),
        (lambda: StoreUnavailable(f"could not connect to {DSN}"), 503, "store_unavailable", DSN),
        (lambda: RayActorError(error_msg=RAY_TEXT), 503, "actor_unavailable", RAY_TEXT),
        (lambda: GetTimeoutError(f"no answer from {RAY_TEXT}"), 503, "actor_unavailable", RAY_TEXT),
        (lambda: in_actor(RuntimeError(f"KeyError in handler: {DSN}")), 500, "internal_error", DSN),
    ],
    ids=["store-down-in-actor", "store-down", "actor-died", "actor-timeout", "bug-in-actor"],
)
async def test_a_store_or_actor_failure_shows_none_of_its_text(
    api: InProcessApi,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    failure: Callable[[], Exception],
    status: int,
    code: str,
    secret: str,
) -> None:
    other, other_agent = await tenant(api)
    user = new_user("lou")
    agent_id = await new_tutor(api.http, user)
    before = await api.http.get(f"/api/agents/{agent_id}", headers=as_user(user))
    position = await settled(api)

    with monkeypatch.context() as patch, caplog.at_level(logging.WARNING):
        patch.setattr(api.services, "runtime", Failing(failure))
        response = await api.http.post(
            f"/api/agents/{agent_id}/sessions", json={}, headers=as_user(user)
        )

    secrets = (secret, "hunter2", "db-secret", "10.9.8.7", "Traceback", "SIGKILL")
    logged(caplog, opaque_problem(response, status, code, secrets), secret)
    assert await settled(api) == position
    after = await api.http.get(f"/api/agents/{agent_id}", headers=as_user(user))
    assert after.json() == before.json()
    await assert_tenant_served(api, other, other_agent)


async def test_an_identity_provider_that_is_down_shows_not_its_address(
    api: InProcessApi, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    port = closed_port()
    jwks = f"http://127.0.0.1:{port}/{SECRET_PATH}/certs"
    oidc = AuthSettings(
        _env_file=None,
        oidc_issuer="https://idp.example/realms/agents",
        oidc_jwks_url=jwks,
        client_id="agenthost-api",
        jwks_timeout_s=2,
    )
    monkeypatch.setattr(api.services, "authenticator", Authenticator(oidc))
    token = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJ4In0.c2ln"  # RS256, kid k1

    with caplog.at_level(logging.WARNING):
        response = await api.http.get("/api/agents", headers={"Authorization": f"Bearer {token}"})

    error_id = opaque_problem(response, 503, "auth_unavailable", (str(port), SECRET_PATH))
    logged(caplog, error_id, "Connection refused")


@pytest.mark.parametrize(
    ("where", "failure", "secret"),
    [
        ("event_store", lambda: StoreUnavailable(f"lost {DSN}"), DSN),
        ("runtime", lambda: RayActorError(error_msg=RAY_TEXT), RAY_TEXT),
    ],
    ids=["store-down", "actor-died"],
)
async def test_a_legacy_stream_that_fails_sends_a_fixed_error_event(
    api: InProcessApi,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    where: str,
    failure: Callable[[], Exception],
    secret: str,
) -> None:
    other, other_agent = await tenant(api)
    user = new_user("lou")
    session_id = (await start(api.http, user, "learning"))["session_id"]
    await settled(api)
    with monkeypatch.context() as patch, caplog.at_level(logging.WARNING):
        if where == "event_store":
            patch.setattr(api.services.event_store, "read", Failing(failure).handle)
            url = f"{LEGACY}/{session_id}/stream"
        else:  # the log's catch-up succeeds, then asking the host for live events fails
            real = api.services.runtime

            class LiveFails:
                async def handle(self, request: Any) -> Any:
                    if isinstance(request, ReadLiveEvents):
                        raise failure()
                    return await real.handle(request)

            patch.setattr(api.services, "runtime", LiveFails())
            url = f"{LEGACY}/{session_id}/stream?last_event_id=0"
        events = await read_sse(api.http, url, as_user(user))

    for event in events:
        for leaked in (secret, "hunter2", "db-secret", "10.9.8.7", "SIGKILL"):
            assert leaked not in event["data"]
    assert events[0]["event"] == "connected"
    failed = json.loads(events[-1]["data"])
    assert events[-1]["event"] == "error"
    assert failed["session_id"] == session_id
    assert failed["code"] == "stream_failed"
    assert ERROR_ID.match(failed["error_id"])
    logged(caplog, failed["error_id"], secret)
    await assert_tenant_served(api, other, other_agent)
