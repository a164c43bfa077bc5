"""RFC 9457 problem details: every error the HTTP API returns is ``application/problem+json``.

``RULES`` maps each error type to its answer; ``docs/http-errors.md`` tabulates them and says
why (a unit test keeps the two in step).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from http import HTTPStatus
from typing import Any, cast
from uuid import uuid4

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from ray.exceptions import GetTimeoutError, RayActorError, RayError, RayTaskError
from starlette.exceptions import HTTPException

from actors.rollout import DeploymentRetired
from application.errors import IdempotencyKeyReused
from domain.errors import (
    AccessDenied,
    AgentAlreadyExists,
    AgentIsArchived,
    AgentNotFound,
    ClientActionAlreadyPending,
    CorruptStream,
    DomainError,
    ExecutionAlreadySuspended,
    ExecutionNotSuspended,
    InvalidAssignment,
    InvalidCommand,
    InvalidResponse,
    NoActiveSession,
    NoPendingClientAction,
    OwnerCannotLeave,
    SessionAlreadyActive,
    SessionMismatch,
    SessionStuck,
    UnknownEventType,
    UserAlreadyAssigned,
    UserNotAssigned,
    WrongToolCall,
)
from eventstore.port import EventStoreError, StoreUnavailable, WrongExpectedVersion
from execution.llm.port import LlmError, LlmRejected, LlmUnavailable
from projections.store import ReadModelUnavailable
from serve_app.auth import AuthError, AuthUnavailable
from serve_app.read_your_writes import ReadModelBehind

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_BASE = "https://agenthost.dev/problems/"

_RETRY_SOON = "1"  # store, actor restart, write race: back within a second or so
_RETRY_LATER = "5"  # an overloaded LLM or identity provider needs longer
_RETRY = "Retrying with the same Idempotency-Key applies it at most once."
_MAX_ECHOED_INPUT = 80
_MAX_ECHOED_PATH = 200


class ValidationIssue(BaseModel):
    """One schema violation: where (``loc``), what, and a short echo of a scalar input."""

    loc: list[str | int]
    msg: str
    type: str
    input: str | int | float | bool | None = None


class Problem(BaseModel):
    """An RFC 9457 problem details object; extension members beyond those declared are allowed."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "https://agenthost.dev/problems/session-already-active",
                    "title": "Session already active",
                    "status": 409,
                    "detail": "agent 5f0c... already has an active session",
                    "instance": "/agents/5f0c.../sessions",
                    "code": "session_already_active",
                },
                {
                    "type": "https://agenthost.dev/problems/validation-failed",
                    "title": "Invalid request",
                    "status": 422,
                    "detail": "The request does not match the API schema; see errors.",
                    "instance": "/agents",
                    "code": "validation_failed",
                    "errors": [
                        {
                            "loc": ["body", "agent_type"],
                            "msg": "Input should be 'tutor' or 'coach'",
                            "type": "enum",
                            "input": "wizard",
                        }
                    ],
                },
                {
                    "type": "https://agenthost.dev/problems/store-unavailable",
                    "title": "Event store unavailable, nothing was lost",
                    "status": 503,
                    "detail": "Nothing was stored. Retry with the same Idempotency-Key.",
                    "instance": "/agents/5f0c.../sessions",
                    "code": "store_unavailable",
                },
            ]
        },
    )

    type: str = Field(default="about:blank", description="A URI naming the kind of problem.")
    title: str = Field(description="Short summary, the same for every occurrence of the type.")
    status: int = Field(description="The HTTP status code of this response.")
    detail: str | None = Field(default=None, description="What went wrong this time.")
    instance: str | None = Field(default=None, description="The request path it happened on.")
    code: str | None = Field(default=None, description="Stable machine-readable error code.")
    errors: list[ValidationIssue] | None = Field(
        default=None, description="Schema violations (validation_failed only)."
    )
    reasons: list[str] | None = Field(
        default=None, description="Why a widget answer was refused (invalid_response only)."
    )


class NotFound(Exception):
    """Something the caller may not see, answered exactly as if it did not exist (404)."""

    def __init__(self, title: str, detail: str, *, code: str) -> None:
        super().__init__(detail)
        self.title = title
        self.detail = detail
        self.code = code


class BodyTooLarge(HTTPException):
    """Raised while the body streams in; an ``HTTPException`` because FastAPI turns any other
    error raised while it reads a body into a 400."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413)
        self.max_bytes = max_bytes


class MalformedJson(Exception):
    """A body that is not JSON at all: a 400, where a body that fails the schema is a 422."""

    def __init__(self, reason: object, position: object) -> None:
        super().__init__(f"The request body is not valid JSON: {reason} at character {position}.")


def agent_not_found(agent_id: str) -> NotFound:
    """The one 404 for an agent, whether it is missing or belongs to someone else."""
    return NotFound("Agent not found", f"agent {agent_id} does not exist", code=AgentNotFound.code)


Render = Callable[["Rule", Any, Request], JSONResponse]
"""Builds the answer when the rule alone cannot. The error is ``Any`` because each renderer
takes the type it is filed under, which the lookup guarantees and a ``Callable`` cannot say."""


@dataclass(frozen=True)
class Rule:
    """How one error type is answered. Fields left ``None`` come from the error: a domain
    refusal's own ``code``, its class name as the title, its message as the detail."""

    status: int | None
    """``None`` only for a plain HTTP error, whose renderer takes the error's own status."""
    code: str | None = None
    title: str | None = None
    detail: str | Callable[[Any], str] | None = None
    """A fixed text, or one made from the error; ``None``: its message, else the title."""
    retry_after: str | None = None
    members: Callable[[Any], Mapping[str, Any]] | None = None
    """Extension members taken from the error (``reasons``, ``max_bytes``)."""
    plain: bool = False
    """A plain HTTP error: ``type`` is ``about:blank``, so the title is the status phrase."""
    render: Render | None = None
    """For answers that need the request or reshape the rule (``None``: the rule alone)."""


def problem_for(exc: Exception, request: Request) -> JSONResponse:
    """The answer to ``exc`` (unwrapped from Ray): the rule of its nearest type in ``RULES``."""
    while isinstance(exc, RayTaskError) and isinstance(exc.cause, Exception):
        exc = exc.cause
    rule = next(RULES[t] for t in type(exc).__mro__ if t in RULES)
    return (rule.render or _answer)(rule, exc, request)


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every exception a request can raise with problem+json, per ``RULES``.

    ``Exception`` itself lands in Starlette's outermost middleware, which sends our 500 and then
    re-raises so the server also records the failure.
    """
    for error_type in RULES:
        app.add_exception_handler(error_type, _handle)


async def _handle(request: Request, exc: Exception) -> JSONResponse:
    return problem_for(exc, request)


def _answer(
    rule: Rule,
    exc: Exception,
    request: Request,
    *,
    headers: Mapping[str, str] | None = None,
    **members: Any,
) -> JSONResponse:
    """The problem ``rule`` describes, with what a renderer adds (headers, members)."""
    assert rule.status is not None, "a rule without a status has a renderer that sets it"
    title = rule.title or re.sub(r"(?<!^)(?=[A-Z])", " ", type(exc).__name__).capitalize()
    code = rule.code or cast(DomainError, exc).code  # only a domain refusal leaves it open
    if rule.detail is None:
        detail = str(exc) or title
    elif isinstance(rule.detail, str):
        detail = rule.detail
    else:
        detail = rule.detail(exc)
    if rule.members is not None:
        members = {**rule.members(exc), **members}
    all_headers = dict(headers or {})
    if rule.retry_after is not None:
        all_headers["Retry-After"] = rule.retry_after
    problem = Problem(
        type="about:blank" if rule.plain else PROBLEM_TYPE_BASE + code.replace("_", "-"),
        title=title,
        status=rule.status,
        detail=detail,
        instance=_echoable(request.url.path, _MAX_ECHOED_PATH),
        code=code,
        **members,
    )
    return JSONResponse(
        problem.model_dump(mode="json", exclude_none=True),
        status_code=problem.status,
        headers=all_headers or None,
        media_type=PROBLEM_JSON,
    )


def _plain_http(rule: Rule, exc: HTTPException, request: Request) -> JSONResponse:
    """Unknown route, wrong method and the like: their own status, phrase and headers."""
    try:
        phrase = HTTPStatus(exc.status_code).phrase
    except ValueError:
        phrase = "HTTP error"
    code = re.sub(r"\W+", "_", phrase.lower())
    own = replace(rule, status=exc.status_code, code=code, title=phrase, detail=str(exc.detail))
    return _answer(own, exc, request, headers=exc.headers)


def _challenge(rule: Rule, exc: AuthError, request: Request) -> JSONResponse:
    """RFC 6750: a 401 names the scheme, and what was wrong, in ``WWW-Authenticate``."""
    return _answer(rule, exc, request, headers={"WWW-Authenticate": exc.www_authenticate})


def _not_found(rule: Rule, exc: NotFound, request: Request) -> JSONResponse:
    """Title, detail and code are chosen where it is raised (an agent, a legacy session)."""
    return _answer(replace(rule, code=exc.code, title=exc.title, detail=exc.detail), exc, request)


def _agent_not_found(rule: Rule, exc: AgentNotFound, request: Request) -> JSONResponse:
    """On an agent's path, identical to the answer for an agent the caller may not see."""
    agent_id = request.path_params.get("agent_id")
    if isinstance(agent_id, str):
        return problem_for(agent_not_found(agent_id), request)
    return _answer(rule, exc, request)


def _invalid_request(rule: Rule, exc: RequestValidationError, request: Request) -> JSONResponse:
    """Schema violations are listed; a body that is not JSON at all is its own problem."""
    errors = exc.errors()
    for error in errors:
        if error.get("type") == "json_invalid":
            reason = error.get("ctx", {}).get("error", "invalid JSON")
            return problem_for(MalformedJson(reason, error["loc"][-1]), request)
    return _answer(rule, exc, request, errors=[_issue(error) for error in errors])


def _issue(error: Mapping[str, Any]) -> ValidationIssue:
    """Echo only short, encodable scalars: a whole body (missing fields), a huge string, a lone
    surrogate or a NaN stays out, so the refusal itself can always be sent."""
    value = error.get("input")
    if isinstance(value, str):
        value = _echoable(value)
    elif isinstance(value, float) and not math.isfinite(value):
        value = str(value)
    elif not isinstance(value, int | float | bool):
        value = None
    loc = [part if isinstance(part, int) else _echoable(str(part)) for part in error["loc"]]
    return ValidationIssue(
        loc=loc, msg=_echoable(str(error["msg"]), 400), type=str(error["type"]), input=value
    )


def _echoable(text: str, limit: int = _MAX_ECHOED_INPUT) -> str:
    """``text`` cut to ``limit`` and made valid UTF-8 (a lone surrogate becomes U+FFFD)."""
    if len(text) > limit:
        text = text[:limit] + "…"
    return "".join("\ufffd" if 0xD800 <= ord(char) <= 0xDFFF else char for char in text)


def _internal_error(rule: Rule, exc: Exception, request: Request) -> JSONResponse:
    """Shows nothing of the exception: its ``error_id`` finds the traceback in the log."""
    error_id = str(uuid4())
    log.error(
        "unhandled error error_id=%s %s %s",
        error_id,
        request.method,
        request.url.path,
        exc_info=exc,
    )
    return _answer(rule, exc, request, error_id=error_id)


def _dependency_failed(rule: Rule, exc: Exception, request: Request) -> JSONResponse:
    """A fixed text only: what the dependency said (a URL, a model name, driver or Ray text)
    goes to the log, under the ``error_id`` the answer quotes."""
    error_id = str(uuid4())
    cause = exc.__cause__
    log.warning(
        "dependency failed error_id=%s code=%s %s %s: %s: %s%s",
        error_id,
        rule.code,
        request.method,
        request.url.path,
        type(exc).__name__,
        exc,
        f" (from {type(cause).__name__}: {cause})" if cause is not None else "",
    )
    return _answer(rule, exc, request, error_id=error_id)


_ACTOR_UNAVAILABLE = Rule(
    503,
    "actor_unavailable",
    "Agent host unavailable, nothing was lost",
    f"The agent's host is restarting or did not answer in time. {_RETRY}",
    retry_after=_RETRY_SOON,
    render=_dependency_failed,
)
_INTERNAL = Rule(
    500,
    "internal_error",
    "Internal server error",
    "The server failed unexpectedly; nothing acknowledged was lost. Quote error_id when"
    " reporting it.",
    render=_internal_error,
)

RULES: Mapping[type[Exception], Rule] = {
    # The request itself.
    HTTPException: Rule(None, plain=True, render=_plain_http),
    BodyTooLarge: Rule(
        413,
        "body_too_large",
        "Request body too large",
        lambda exc: f"The request body exceeds the limit of {exc.max_bytes} bytes.",
        members=lambda exc: {"max_bytes": exc.max_bytes},
    ),
    MalformedJson: Rule(400, "malformed_json", "Malformed JSON"),
    RequestValidationError: Rule(
        422,
        "validation_failed",
        "Invalid request",
        "The request does not match the API schema; see errors.",
        render=_invalid_request,
    ),
    # Who is asking.
    AuthError: Rule(401, "unauthorized", "Unauthorized", plain=True, render=_challenge),
    AuthUnavailable: Rule(
        503,
        "auth_unavailable",
        "Authentication unavailable, nothing was lost",
        "The identity provider did not answer; nothing was done. Retry later.",
        retry_after=_RETRY_LATER,
        render=_dependency_failed,
    ),
    AccessDenied: Rule(403, "forbidden", "Forbidden", str),
    NotFound: Rule(404, render=_not_found),
    # Domain refusals: the status here, the code, title and message from the error.
    AgentNotFound: Rule(404, render=_agent_not_found),
    InvalidCommand: Rule(422),
    IdempotencyKeyReused: Rule(422, "idempotency_key_reused", "Idempotency key reused"),
    InvalidAssignment: Rule(422),
    AgentAlreadyExists: Rule(409),
    AgentIsArchived: Rule(409),
    UserAlreadyAssigned: Rule(409),
    UserNotAssigned: Rule(409),
    OwnerCannotLeave: Rule(409),
    SessionAlreadyActive: Rule(409),
    NoActiveSession: Rule(409),
    SessionMismatch: Rule(409),
    ClientActionAlreadyPending: Rule(409),
    NoPendingClientAction: Rule(409),
    WrongToolCall: Rule(409),
    SessionStuck: Rule(409),
    ExecutionNotSuspended: Rule(409),
    ExecutionAlreadySuspended: Rule(409),
    DomainError: Rule(400),
    UnknownEventType: _INTERNAL,
    CorruptStream: _INTERNAL,
    InvalidResponse: Rule(
        422,
        "invalid_response",
        "Invalid widget answer",
        "The answer does not satisfy the widget; see reasons.",
        members=lambda exc: {"reasons": exc.reasons},
    ),
    # Dependencies.
    StoreUnavailable: Rule(
        503,
        "store_unavailable",
        "Event store unavailable, nothing was lost",
        f"The event store did not answer; nothing was stored. {_RETRY}",
        retry_after=_RETRY_SOON,
        render=_dependency_failed,
    ),
    WrongExpectedVersion: Rule(
        503,
        "concurrent_write",
        "Concurrent write, nothing was lost",
        f"Another write to this agent kept winning the race; nothing was stored. {_RETRY}",
        retry_after=_RETRY_SOON,
        render=_dependency_failed,
    ),
    ReadModelUnavailable: Rule(
        503,
        "read_model_unavailable",
        "Read model unavailable, nothing was lost",
        f"The read model did not answer; a write this request made is kept. {_RETRY}",
        retry_after=_RETRY_SOON,
        render=_dependency_failed,
    ),
    ReadModelBehind: Rule(
        503,
        "read_model_behind",
        "Read model behind, nothing was lost",
        "The read model has not applied the writes this answer waits for yet; a write this"
        f" request made is kept. {_RETRY}",
        retry_after=_RETRY_SOON,
        render=_dependency_failed,
    ),
    RayActorError: _ACTOR_UNAVAILABLE,
    GetTimeoutError: _ACTOR_UNAVAILABLE,
    DeploymentRetired: Rule(
        503,
        "deployment_retired",
        "Service being redeployed, nothing was lost",
        f"This replica belongs to a deployment that was just replaced. {_RETRY}",
        retry_after=_RETRY_SOON,
        render=_dependency_failed,
    ),
    LlmUnavailable: Rule(
        503,
        "llm_unavailable",
        "Language model unavailable, nothing was lost",
        f"The language model did not answer; the session stays resumable. {_RETRY}",
        retry_after=_RETRY_LATER,
        render=_dependency_failed,
    ),
    LlmRejected: Rule(
        502,
        "llm_rejected",
        "Language model refused the request",
        "The language model refused the step; nothing was stored. Retrying will not help"
        " until the model or its configuration changes; quote error_id when reporting it.",
        render=_dependency_failed,
    ),
    # Anything else is a bug or a broken dependency: a 500 that shows nothing of it.
    EventStoreError: _INTERNAL,
    LlmError: _INTERNAL,
    RayError: _INTERNAL,
    Exception: _INTERNAL,
}
"""Looked up along the error's MRO, so a subclass answers like its nearest listed base."""
