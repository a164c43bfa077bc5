"""Every error the API can meet comes back as RFC 9457 problem+json with the right status, the
same answer whether a domain refusal was raised locally or inside a Ray actor, and no internal
text in a 5xx; oversized bodies are refused before the route runs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from enum import StrEnum
from typing import Any, ClassVar

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, Field
from ray.exceptions import ActorUnavailableError, GetTimeoutError, RayActorError, RayTaskError

from domain import errors
from domain.errors import (
    AgentNotFound,
    CorruptStream,
    DomainError,
    InvalidResponse,
    SessionAlreadyActive,
)
from eventstore.port import StoreUnavailable, WrongExpectedVersion
from execution.llm.port import LlmRejected, LlmUnavailable
from serve_app.auth import AuthError, AuthUnavailable
from serve_app.body_limit import MaxBodySizeMiddleware
from serve_app.problems import (
    PROBLEM_JSON,
    RULES,
    Problem,
    agent_not_found,
    install_problem_handlers,
)

MAX_BYTES = 16_384
SECRET = "password=hunter2"
AGENT_ID = "5f0c9b7e-0000-4000-8000-000000000001"
OBSERVER_REFUSAL = "your role on this agent (observer) may read but not act"

SERVER_SIDE = {DomainError, errors.UnknownEventType, errors.CorruptStream}
OWN_ANSWER = {InvalidResponse}  # its own detail and members: tested as "invalid-response"
DOMAIN_STATUS = {
    error: rule.status
    for error, rule in RULES.items()
    if issubclass(error, DomainError) and error not in SERVER_SIDE | OWN_ANSWER
}
"""The status the table gives each client-facing domain refusal."""


class CustomRefusal(DomainError):
    """A DomainError subclass the status table does not know."""

    code = "custom_refusal"


class Kind(StrEnum):
    TUTOR = "tutor"
    COACH = "coach"


class NewAgent(BaseModel):
    agent_type: Kind
    max_history: int
    name: str = Field(max_length=20)


class Upload(BaseModel):
    text: str


def ray_wrapped(cause: Exception) -> RayTaskError:
    """What awaiting an actor call raises when the actor method raised ``cause``."""
    return RayTaskError(
        "AgentHost.execute",
        "Traceback (most recent call last):\n  ...\n",
        cause,
        proctitle="ray::AgentHost.execute",
        pid=4242,
        ip="127.0.0.1",
    ).as_instanceof_cause()


class Harness:
    """A small app wired like the real one, whose routes raise whatever a test names."""

    raised: ClassVar[dict[str, Callable[[], Exception]]] = {
        "access-denied": lambda: errors.AccessDenied(OBSERVER_REFUSAL),
        "invalid-response": lambda: InvalidResponse(["choose one option", "no such option 'z'"]),
        "store-down": lambda: StoreUnavailable(f"connect failed: {SECRET}"),
        "write-race": lambda: WrongExpectedVersion("agent-x", 3, 4),
        "actor-died": lambda: RayActorError(error_msg=f"worker died {SECRET}"),
        "actor-unavailable": lambda: ActorUnavailableError(f"restarting {SECRET}", None),
        "get-timeout": lambda: GetTimeoutError(f"timed out {SECRET}"),
        "llm-down": lambda: LlmUnavailable("timed out after 60 s"),
        "llm-refused": lambda: LlmRejected("HTTP 400: unknown model", 400),
        "no-token": lambda: AuthError("missing bearer token", error=None),
        "expired": lambda: AuthError("token expired"),
        "jwks-down": lambda: AuthUnavailable("signing keys unavailable"),
        "custom-refusal": lambda: CustomRefusal("refused for a new reason"),
        "corrupt": lambda: CorruptStream(f"agent.session.completed.v1 without a session {SECRET}"),
        "bug": lambda: RuntimeError(f"KeyError in handler: {SECRET}"),
    }

    def __init__(self) -> None:
        self.uploads = 0
        self.app = FastAPI()
        install_problem_handlers(self.app)
        self.app.add_middleware(MaxBodySizeMiddleware, max_bytes=MAX_BYTES)
        app = self.app

        @app.post("/raise/{name}")
        async def raise_named(name: str) -> None:
            raise self.raised[name]()

        @app.post("/domain/{name}")
        async def raise_domain(name: str, wrapped: bool = False) -> None:
            error: DomainError = getattr(errors, name)(f"refused: {name}")
            raise ray_wrapped(error) if wrapped else error

        @app.get("/agents/{agent_id}")
        async def get_agent(agent_id: str, hidden: bool = False) -> None:
            if hidden:
                raise agent_not_found(agent_id)
            raise ray_wrapped(AgentNotFound(f"agent {agent_id} is not in the store"))

        @app.post("/agents")
        async def create_agent(body: NewAgent) -> NewAgent:
            return body

        @app.post("/upload")
        async def upload(body: Upload) -> dict[str, int]:
            self.uploads += 1
            return {"length": len(body.text)}


@pytest.fixture
def harness() -> Harness:
    return Harness()


@pytest.fixture
async def client(harness: Harness) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(harness.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The body, after checking what every problem shares: status, media type, instance."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["instance"] == response.request.url.path
    assert body["title"]
    return body


@pytest.mark.parametrize(("error", "status"), sorted(DOMAIN_STATUS.items(), key=str))
@pytest.mark.parametrize("wrapped", [False, True], ids=["local", "in-actor"])
async def test_domain_refusals_map_to_their_status_wherever_they_were_raised(
    client: httpx.AsyncClient, error: type[DomainError], status: int, wrapped: bool
) -> None:
    response = await client.post(f"/domain/{error.__name__}", params={"wrapped": wrapped})

    body = problem(response, status)
    assert body["code"] == error.code
    assert body["type"] == "https://agenthost.dev/problems/" + error.code.replace("_", "-")
    assert body["detail"] == f"refused: {error.__name__}"


def test_the_status_table_covers_every_client_facing_domain_error() -> None:
    refusals = {
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, DomainError)
    }
    assert refusals - SERVER_SIDE - OWN_ANSWER == set(DOMAIN_STATUS)
    assert RULES[InvalidResponse].status == 422
    assert DOMAIN_STATUS[errors.WrongToolCall] == 409
    assert DOMAIN_STATUS[errors.InvalidCommand] == 422
    assert DOMAIN_STATUS[errors.AccessDenied] == 403
    assert {RULES[error].code for error in SERVER_SIDE - {DomainError}} == {"internal_error"}


async def test_a_domain_error_keeps_its_title_and_message(client: httpx.AsyncClient) -> None:
    body = problem(await client.post("/domain/SessionAlreadyActive"), 409)

    assert body == {
        "type": "https://agenthost.dev/problems/session-already-active",
        "title": "Session already active",
        "status": 409,
        "detail": "refused: SessionAlreadyActive",
        "instance": "/domain/SessionAlreadyActive",
        "code": SessionAlreadyActive.code,
    }


async def test_a_domain_error_crossing_two_actors_is_still_unwrapped(
    harness: Harness, client: httpx.AsyncClient
) -> None:
    harness.raised["nested"] = lambda: ray_wrapped(ray_wrapped(errors.NoActiveSession("idle")))

    body = problem(await client.post("/raise/nested"), 409)

    assert body["code"] == "no_active_session"
    assert body["detail"] == "idle"


async def test_an_unknown_domain_error_is_a_400_with_its_code(client: httpx.AsyncClient) -> None:
    body = problem(await client.post("/raise/custom-refusal"), 400)

    assert body["code"] == "custom_refusal"
    assert body["title"] == "Custom refusal"
    assert body["detail"] == "refused for a new reason"


async def test_someone_elses_agent_answers_exactly_like_a_missing_one(
    client: httpx.AsyncClient,
) -> None:
    missing = await client.get(f"/agents/{AGENT_ID}")
    hidden = await client.get(f"/agents/{AGENT_ID}", params={"hidden": True})

    assert problem(missing, 404) == problem(hidden, 404)
    assert hidden.json() == {
        "type": "https://agenthost.dev/problems/agent-not-found",
        "title": "Agent not found",
        "status": 404,
        "detail": f"agent {AGENT_ID} does not exist",
        "instance": f"/agents/{AGENT_ID}",
        "code": "agent_not_found",
    }


async def test_an_observer_acting_is_forbidden(client: httpx.AsyncClient) -> None:
    denied = problem(await client.post("/raise/access-denied"), 403)

    assert denied["code"] == "forbidden"
    assert denied["detail"] == OBSERVER_REFUSAL
    assert denied == {
        "type": "https://agenthost.dev/problems/forbidden",
        "title": "Forbidden",
        "status": 403,
        "detail": OBSERVER_REFUSAL,
        "instance": "/raise/access-denied",
        "code": "forbidden",
    }


async def test_an_invalid_widget_answer_lists_its_reasons(client: httpx.AsyncClient) -> None:
    body = problem(await client.post("/raise/invalid-response"), 422)

    assert body["code"] == "invalid_response"
    assert body["reasons"] == ["choose one option", "no such option 'z'"]


async def test_malformed_json_is_a_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/agents", content=b'{"agent_type": ', headers={"content-type": "application/json"}
    )

    body = problem(response, 400)
    assert body["code"] == "malformed_json"
    assert body["type"] == "https://agenthost.dev/problems/malformed-json"
    assert "errors" not in body


async def test_schema_violations_are_a_422_listing_each_without_echoing_big_inputs(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/agents", json={"agent_type": "wizard", "max_history": "lots", "name": "x" * 10_000}
    )

    body = problem(response, 422)
    assert body["code"] == "validation_failed"
    issues = {tuple(issue["loc"]): issue for issue in body["errors"]}
    assert set(issues) == {("body", "agent_type"), ("body", "max_history"), ("body", "name")}
    assert issues[("body", "agent_type")]["type"] == "enum"
    assert issues[("body", "agent_type")]["input"] == "wizard"
    assert issues[("body", "max_history")]["type"] == "int_parsing"
    assert len(issues[("body", "name")]["input"]) <= 81
    assert len(response.content) < 2_000


async def test_a_missing_field_does_not_echo_the_whole_body(client: httpx.AsyncClient) -> None:
    response = await client.post("/agents", json={"agent_type": "tutor", "max_history": 3})

    (issue,) = problem(response, 422)["errors"]
    assert issue == {"loc": ["body", "name"], "msg": "Field required", "type": "missing"}


async def test_unknown_route_and_wrong_method_are_plain_http_problems(
    client: httpx.AsyncClient,
) -> None:
    not_found = problem(await client.get("/nowhere"), 404)
    wrong_method = await client.get("/upload")

    assert not_found["type"] == "about:blank"
    assert not_found["title"] == "Not Found"
    assert not_found["code"] == "not_found"
    assert problem(wrong_method, 405)["code"] == "method_not_allowed"
    assert wrong_method.headers["allow"] == "POST"


@pytest.mark.parametrize(
    ("name", "code", "retry_after"),
    [
        ("store-down", "store_unavailable", "1"),
        ("write-race", "concurrent_write", "1"),
        ("actor-died", "actor_unavailable", "1"),
        ("actor-unavailable", "actor_unavailable", "1"),
        ("get-timeout", "actor_unavailable", "1"),
        ("llm-down", "llm_unavailable", "5"),
        ("jwks-down", "auth_unavailable", "5"),
    ],
)
async def test_a_failing_dependency_is_a_retryable_503_that_lost_nothing(
    client: httpx.AsyncClient, name: str, code: str, retry_after: str
) -> None:
    response = await client.post(f"/raise/{name}")

    body = problem(response, 503)
    assert body["code"] == code
    assert response.headers["retry-after"] == retry_after
    assert "nothing was lost" in body["title"]
    assert SECRET not in response.text


async def test_an_llm_that_refuses_is_a_502(client: httpx.AsyncClient) -> None:
    response = await client.post("/raise/llm-refused")

    body = problem(response, 502)
    assert body["code"] == "llm_rejected"
    assert "unknown model" not in body["detail"]  # the provider's text goes to the log
    assert body["error_id"]
    assert "retry-after" not in response.headers


@pytest.mark.parametrize(
    ("name", "challenge"),
    [
        ("no-token", 'Bearer realm="agenthost"'),
        ("expired", 'error="invalid_token", error_description="token expired"'),
    ],
)
async def test_an_unauthenticated_call_is_a_401_with_its_challenge(
    client: httpx.AsyncClient, name: str, challenge: str
) -> None:
    response = await client.post(f"/raise/{name}")

    body = problem(response, 401)
    assert body["code"] == "unauthorized"
    assert challenge in response.headers["www-authenticate"]


@pytest.mark.parametrize("name", ["bug", "corrupt"])
async def test_an_unexpected_error_is_a_500_that_leaks_nothing_but_an_error_id(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    with caplog.at_level(logging.ERROR, logger="serve_app.problems"):
        response = await client.post(f"/raise/{name}")

    body = problem(response, 500)
    assert body["code"] == "internal_error"
    assert SECRET not in response.text
    assert "Error" not in body["detail"]
    (record,) = [r for r in caplog.records if r.name == "serve_app.problems"]
    assert body["error_id"] in record.getMessage()
    assert record.exc_info is not None


async def test_a_declared_oversized_body_is_refused_before_it_is_read(
    harness: Harness, client: httpx.AsyncClient
) -> None:
    response = await client.post("/upload", json={"text": "x" * MAX_BYTES})

    body = problem(response, 413)
    assert body["code"] == "body_too_large"
    assert body["max_bytes"] == MAX_BYTES
    assert harness.uploads == 0


async def test_a_chunked_oversized_body_is_refused_once_it_passes_the_limit(
    harness: Harness, client: httpx.AsyncClient
) -> None:
    sent: list[bytes] = []

    async def chunks() -> AsyncIterator[bytes]:
        half = b"x" * (MAX_BYTES // 2)
        for chunk in (b'{"text": "', half, half, b'"}'):
            sent.append(chunk)
            yield chunk

    response = await client.post(
        "/upload", content=chunks(), headers={"content-type": "application/json"}
    )

    assert "content-length" not in response.request.headers
    assert problem(response, 413)["code"] == "body_too_large"
    assert harness.uploads == 0
    assert len(sent) == 3, "the rest of the body was never pulled"


async def test_a_body_within_the_limit_reaches_the_route(
    harness: Harness, client: httpx.AsyncClient
) -> None:
    response = await client.post("/upload", json={"text": "hello"})

    assert response.status_code == 200
    assert response.json() == {"length": 5}
    assert harness.uploads == 1


def test_the_openapi_examples_are_valid_problems() -> None:
    examples = Problem.model_json_schema()["examples"]

    assert examples
    for example in examples:
        assert Problem.model_validate(example).model_dump(exclude_none=True) == example
