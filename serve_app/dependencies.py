"""What routes take from a request besides their body: the replica's backend, the caller, the
agent named in the path, the Idempotency-Key, the read-your-writes position and a stream's
resume position."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import Depends, Header, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from serve_app.auth import Principal
from serve_app.backend import Backend
from serve_app.problems import agent_not_found

BEARER = HTTPBearer(auto_error=False, description="A JWT: OIDC (Keycloak) or the dev HS256 secret")

IdempotencyKey = Annotated[
    UUID | None,
    Header(
        description="A UUID per intended action: retries with it are applied once; reusing it"
        " for another request on the same agent is 422 idempotency_key_reused."
    ),
]
_LastEventIdHeader = Annotated[
    int | None,
    Header(alias="Last-Event-ID", ge=0, description="The last event id seen: resume after it."),
]
_LastEventIdQuery = Annotated[
    int | None,
    Query(
        ge=0, description="The same as the Last-Event-ID header, for clients that cannot set it."
    ),
]


def resume_after(
    last_event_id_header: _LastEventIdHeader = None, last_event_id: _LastEventIdQuery = None
) -> int | None:
    """The position a stream resumes after: the Last-Event-ID header if sent, else the query
    value (None: neither, the stream starts at the head)."""
    return last_event_id_header if last_event_id_header is not None else last_event_id


ResumeAfter = Annotated[int | None, Depends(resume_after)]
After = Annotated[
    int,
    Query(ge=0, description="Wait until the read model has applied this log position."),
]


def backend_of(request: Request) -> Backend:
    found: Backend = request.app.state.backend
    return found


async def principal(
    request: Request,
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
) -> Principal:
    """The caller, from the bearer token (the scheme shows in OpenAPI through BEARER)."""
    backend = backend_of(request)
    return await backend.authenticator.authenticate(request.headers.get("authorization"))


BackendDep = Annotated[Backend, Depends(backend_of)]
PrincipalDep = Annotated[Principal, Depends(principal)]

_CANONICAL_UUID_LENGTH = 36


async def agent_id_in_path(
    agent_id: Annotated[
        str,
        Path(
            description="The agent's id: a UUID in canonical form (lower case, hyphenated).",
            json_schema_extra={"format": "uuid"},
        ),
    ],
    _: PrincipalDep,
) -> str:
    """The agent named in the path, once the caller is known (anonymous is a 401 whatever the
    path). Every agent id is a canonical UUID, so any other string names no agent: it gets a
    missing agent's 404 here, before an actor, a store or the read model is spent on it, and
    is not echoed back (it may be huge or hostile). Async: checked inline, no thread hop."""
    if len(agent_id) != _CANONICAL_UUID_LENGTH or not _is_canonical_uuid(agent_id):
        raise agent_not_found("(malformed id)")
    return agent_id


def _is_canonical_uuid(text: str) -> bool:
    try:
        return str(UUID(text)) == text
    except ValueError:
        return False


AgentId = Annotated[str, Depends(agent_id_in_path)]
