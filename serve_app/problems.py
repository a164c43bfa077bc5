"""RFC 9457 problem details: every error the HTTP API returns is ``application/problem+json``.

One shape for every failure lets a client decide what to do from the status and ``code`` alone:
a 4xx means the request was wrong or conflicts with the agent's state, and nothing changed; a
503 with ``Retry-After`` means try the same request again (commands carry an
``Idempotency-Key``, so a retry is applied at most once); other 5xx mean an operator is needed.
``type`` is ``https://agenthost.dev/problems/<code with dashes>`` for our own problems and
``about:blank`` for plain HTTP ones (unknown route, wrong method).

| Error                                                          | Status | ``code``          |
|----------------------------------------------------------------|--------|-------------------|
| malformed JSON body                                            | 400    | malformed_json    |
| request fails the schema (types, missing fields, enum values)  | 422    | validation_failed |
| ``InvalidCommand``, ``InvalidAssignment``                      | 422    | the error's code  |
| ``InvalidResponse`` (a widget answer fails its checks)         | 422    | invalid_response  |
| ``AuthError`` (with its ``WWW-Authenticate`` challenge)        | 401    | unauthorized      |
| ``Forbidden`` (an observer tries to act)                       | 403    | forbidden         |
| ``AgentNotFound``, ``agent_not_found()`` (someone else's too)  | 404    | agent_not_found   |
| ``AgentAlreadyExists``, ``AgentIsArchived``,                   | 409    | the error's code  |
| ``UserAlreadyAssigned``, ``SessionAlreadyActive``,             |        |                   |
| ``NoActiveSession``, ``SessionMismatch``,                      |        |                   |
| ``ClientActionAlreadyPending``, ``NoPendingClientAction``,     |        |                   |
| ``WrongToolCall``, ``ExecutionNotSuspended``,                  |        |                   |
| ``ExecutionAlreadySuspended``                                  |        |                   |
| any other ``DomainError``                                      | 400    | the error's code  |
| body over the limit (``MaxBodySizeMiddleware``)                | 413    | body_too_large    |
| ``HTTPException`` (unknown route 404, wrong method 405, ...)   | same   | e.g. not_found    |
| ``LlmRejected``                                                | 502    | llm_rejected      |
| ``StoreUnavailable`` (Retry-After: 1)                          | 503    | store_unavailable |
| ``WrongExpectedVersion`` after retries (Retry-After: 1)        | 503    | concurrent_write  |
| ``RayActorError`` / ``ActorUnavailableError`` /                | 503    | actor_unavailable |
| ``GetTimeoutError`` (Retry-After: 1)                           |        |                   |
| ``LlmUnavailable`` (Retry-After: 5)                            | 503    | llm_unavailable   |
| ``AuthUnavailable`` (Retry-After: 5)                           | 503    | auth_unavailable  |
| ``UnknownEventType``, ``CorruptStream``, anything else         | 500    | internal_error    |

Every 409 is a state conflict: the request is well formed but the agent is not in the state it
assumes (``WrongToolCall``: the answer names a tool call other than the pending one, e.g. from a
stale tab), so the client should reload the agent, not fix its input; 422 is for input that
could never succeed. ``WrongExpectedVersion`` is the opposite case: the request is fine but
another writer kept winning the race, so the remedy is to send the same request again (503),
not to reload the agent and rethink it (409). ``UnknownEventType`` and ``CorruptStream``
describe the stored log, not the request, so they are server errors. A 500 never shows the
exception: its ``error_id`` appears in the log line that holds the traceback. A domain error
raised inside an actor reaches the route wrapped in Ray's ``RayTaskError`` and is unwrapped to
the same answer as when raised locally.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any
from uuid import uuid4

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from ray.exceptions import GetTimeoutError, RayActorError, RayError, RayTaskError
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from domain.errors import (
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
    NoActiveSession,
    NoPendingClientAction,
    SessionAlreadyActive,
    SessionMismatch,
    UnknownEventType,
    UserAlreadyAssigned,
    WrongToolCall,
)
from eventstore.port import EventStoreError, StoreUnavailable, WrongExpectedVersion
from execution.executor import InvalidResponse
from execution.llm.port import LlmError, LlmRejected, LlmUnavailable
from serve_app.auth import AuthError, AuthUnavailable

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_BASE = "https://agenthost.dev/problems/"

_RETRY_SOON = "1"  # store, actor restart, write race: back within a second or so
_RETRY_LATER = "5"  # an overloaded LLM or identity provider needs longer
_MAX_ECHOED_INPUT = 80

DOMAIN_STATUS: Mapping[type[DomainError], int] = {
    AgentNotFound: 404,
    InvalidCommand: 422,
    InvalidAssignment: 422,
    AgentAlreadyExists: 409,
    AgentIsArchived: 409,
    UserAlreadyAssigned: 409,
    SessionAlreadyActive: 409,
    NoActiveSession: 409,
    SessionMismatch: 409,
    ClientActionAlreadyPending: 409,
    NoPendingClientAction: 409,
    WrongToolCall: 409,
    ExecutionNotSuspended: 409,
    ExecutionAlreadySuspended: 409,
}
"""Status per domain refusal (looked up along the MRO); any other ``DomainError`` is a 400."""

_SERVER_SIDE_DOMAIN_ERRORS = (UnknownEventType, CorruptStream)


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


class Forbidden(Exception):
    """The caller may see the agent but not act on it (an observer): 403, not 404."""


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


def agent_not_found(agent_id: str) -> NotFound:
    """The one 404 for an agent, whether it is missing or belongs to someone else."""
    return NotFound("Agent not found", f"agent {agent_id} does not exist", code=AgentNotFound.code)


def _problem_type(code: str) -> str:
    return PROBLEM_TYPE_BASE + code.replace("_", "-")


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    code: str,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    """A problem+json response of our own ``type`` (derived from ``code``)."""
    problem = Problem(
        type=_problem_type(code),
        title=title,
        status=status,
        detail=detail,
        instance=instance,
        code=code,
        **extensions,
    )
    return _render(problem, headers)


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every exception a request can raise with problem+json, per the module table.

    ``Exception`` itself lands in Starlette's outermost middleware, which sends our 500 and then
    re-raises so the server also records the failure.
    """
    for exc_class in (
        HTTPException,
        RequestValidationError,
        DomainError,
        InvalidResponse,
        EventStoreError,
        LlmError,
        RayError,
        AuthError,
        AuthUnavailable,
        Forbidden,
        NotFound,
        Exception,
    ):
        app.add_exception_handler(exc_class, _handle)


class MaxBodySizeMiddleware:
    """Refuses request bodies over ``max_bytes`` with a 413 before the route runs.

    A declared ``Content-Length`` over the limit is refused without reading a byte; a chunked
    body is counted as it arrives and refused at the first chunk past the limit. Pure ASGI, not
    ``BaseHTTPMiddleware``, so streaming responses (SSE) pass through unbuffered.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            response = _body_too_large(self.max_bytes, scope["path"])
            await response(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, counting_receive, send)


async def _handle(request: Request, exc: Exception) -> JSONResponse:
    return _problem_for(_unwrap(exc), request)


def _unwrap(exc: Exception) -> Exception:
    """The error an actor raised, however many Ray task boundaries it crossed."""
    while isinstance(exc, RayTaskError) and isinstance(exc.cause, Exception):
        exc = exc.cause
    return exc


def _problem_for(exc: Exception, request: Request) -> JSONResponse:
    path = request.url.path
    if isinstance(exc, BodyTooLarge):
        return _body_too_large(exc.max_bytes, path)
    if isinstance(exc, HTTPException):
        return _http_problem(exc.status_code, str(exc.detail), path, exc.headers)
    if isinstance(exc, RequestValidationError):
        return _validation_problem(exc, path)
    if isinstance(exc, AuthUnavailable):
        return _unavailable(
            "auth_unavailable",
            "Authentication unavailable, nothing was lost",
            "The identity provider did not answer; nothing was done. Retry later.",
            path,
            retry_after=_RETRY_LATER,
        )
    if isinstance(exc, AuthError):
        challenge = {"WWW-Authenticate": exc.www_authenticate} if exc.www_authenticate else None
        return _http_problem(exc.status_code, exc.detail, path, challenge)
    if isinstance(exc, Forbidden):
        return problem_response(403, "Forbidden", str(exc), code="forbidden", instance=path)
    if isinstance(exc, NotFound):
        return problem_response(404, exc.title, exc.detail, code=exc.code, instance=path)
    if isinstance(exc, DomainError) and not isinstance(exc, _SERVER_SIDE_DOMAIN_ERRORS):
        return _domain_problem(exc, request)
    if isinstance(exc, InvalidResponse):
        return problem_response(
            422,
            "Invalid widget answer",
            "The answer does not satisfy the widget; see reasons.",
            code="invalid_response",
            instance=path,
            reasons=exc.reasons,
        )
    return _dependency_problem(exc, path) or _internal_error(exc, request)


def _domain_problem(exc: DomainError, request: Request) -> JSONResponse:
    agent_id = request.path_params.get("agent_id")
    if isinstance(exc, AgentNotFound) and isinstance(agent_id, str):
        # Identical to the answer for an agent the caller may not see.
        return _problem_for(agent_not_found(agent_id), request)
    status = next((DOMAIN_STATUS[c] for c in type(exc).__mro__ if c in DOMAIN_STATUS), 400)
    title = re.sub(r"(?<!^)(?=[A-Z])", " ", type(exc).__name__).capitalize()
    return problem_response(
        status, title, str(exc) or title, code=exc.code, instance=request.url.path
    )


def _dependency_problem(exc: Exception, path: str) -> JSONResponse | None:
    """A store, actor or LLM that failed: retryable ones are 503, a refusing LLM is 502."""
    retry = "Retrying with the same Idempotency-Key applies it at most once."
    if isinstance(exc, StoreUnavailable):
        return _unavailable(
            "store_unavailable",
            "Event store unavailable, nothing was lost",
            f"The event store did not answer; nothing was stored. {retry}",
            path,
        )
    if isinstance(exc, WrongExpectedVersion):
        return _unavailable(
            "concurrent_write",
            "Concurrent write, nothing was lost",
            f"Another write to this agent kept winning the race; nothing was stored. {retry}",
            path,
        )
    if isinstance(exc, RayActorError | GetTimeoutError):
        return _unavailable(
            "actor_unavailable",
            "Agent host unavailable, nothing was lost",
            f"The agent's host is restarting or did not answer in time. {retry}",
            path,
        )
    if isinstance(exc, LlmUnavailable):
        return _unavailable(
            "llm_unavailable",
            "Language model unavailable, nothing was lost",
            f"The language model did not answer ({exc.message}); the session stays resumable."
            f" {retry}",
            path,
            retry_after=_RETRY_LATER,
        )
    if isinstance(exc, LlmRejected):
        return problem_response(
            502,
            "Language model refused the request",
            f"The language model refused the step ({exc.message}); nothing was stored."
            " Retrying will not help until the model or its configuration changes.",
            code="llm_rejected",
            instance=path,
        )
    return None


def _unavailable(
    code: str, title: str, detail: str, path: str, *, retry_after: str = _RETRY_SOON
) -> JSONResponse:
    return problem_response(
        503, title, detail, code=code, instance=path, headers={"Retry-After": retry_after}
    )


def _internal_error(exc: Exception, request: Request) -> JSONResponse:
    error_id = str(uuid4())
    log.error(
        "unhandled error error_id=%s %s %s",
        error_id,
        request.method,
        request.url.path,
        exc_info=exc,
    )
    return problem_response(
        500,
        "Internal server error",
        "The server failed unexpectedly; nothing acknowledged was lost. Quote error_id when"
        " reporting it.",
        code="internal_error",
        instance=request.url.path,
        error_id=error_id,
    )


def _http_problem(
    status: int, detail: str, path: str, headers: Mapping[str, str] | None
) -> JSONResponse:
    """A plain HTTP error: ``about:blank``, whose title is by definition the status phrase."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "HTTP error"
    code = re.sub(r"\W+", "_", phrase.lower())
    problem = Problem(title=phrase, status=status, detail=detail, instance=path, code=code)
    return _render(problem, headers)


def _validation_problem(exc: RequestValidationError, path: str) -> JSONResponse:
    errors = exc.errors()
    for error in errors:
        if error.get("type") == "json_invalid":
            reason = error.get("ctx", {}).get("error", "invalid JSON")
            return problem_response(
                400,
                "Malformed JSON",
                f"The request body is not valid JSON: {reason} at character {error['loc'][-1]}.",
                code="malformed_json",
                instance=path,
            )
    return problem_response(
        422,
        "Invalid request",
        "The request does not match the API schema; see errors.",
        code="validation_failed",
        instance=path,
        errors=[_issue(error) for error in errors],
    )


def _issue(error: Mapping[str, Any]) -> ValidationIssue:
    """Echo only short scalars: a whole body (missing fields) or a huge string stays out."""
    value = error.get("input")
    if isinstance(value, str) and len(value) > _MAX_ECHOED_INPUT:
        value = value[:_MAX_ECHOED_INPUT] + "…"
    elif not isinstance(value, str | int | float | bool):
        value = None
    return ValidationIssue(
        loc=list(error["loc"]), msg=str(error["msg"]), type=str(error["type"]), input=value
    )


def _body_too_large(max_bytes: int, path: str) -> JSONResponse:
    return problem_response(
        413,
        "Request body too large",
        f"The request body exceeds the limit of {max_bytes} bytes.",
        code="body_too_large",
        instance=path,
        max_bytes=max_bytes,
    )


def _declared_length(scope: Scope) -> int | None:
    """The Content-Length header, if any and numeric (the server refuses a malformed one)."""
    try:
        return int(Headers(scope=scope)["content-length"])
    except (KeyError, ValueError):
        return None


def _render(problem: Problem, headers: Mapping[str, str] | None) -> JSONResponse:
    return JSONResponse(
        problem.model_dump(mode="json", exclude_none=True),
        status_code=problem.status,
        headers=headers,
        media_type=PROBLEM_JSON,
    )
