"""What routes take from a request besides their body: the replica's backend, the caller, the
agent named in the path, the Idempotency-Key and the read-your-writes position."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import Depends, Header, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from serve_app.auth import Principal
from serve_app.backend import Backend

BEARER = HTTPBearer(auto_error=False, description="A JWT: OIDC (Keycloak) or the dev HS256 secret")

IdempotencyKey = Annotated[
    UUID | None,
    Header(description="A UUID per intended action: retries with it are applied once."),
]
After = Annotated[
    int,
    Query(ge=0, description="Wait until the read model has applied this log position."),
]
AgentId = Annotated[str, Path(description="The agent's id (a UUID).")]


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
