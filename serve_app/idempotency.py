"""Idempotency-Key: the command id a write is applied under, and the fingerprint of the request.

A key names one request of one user on one agent. The command id is derived from all three,
so the same key sent by another user, or for another agent, is a command of its own (and its
events, whose ids derive from the command id, never meet another stream's). The fingerprint
says which request the key was sent with: the agent's activation stores it with the command's
first event and refuses the key sent again with another one (``IdempotencyKeyReused``, 422).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated
from uuid import UUID, uuid4, uuid5

from fastapi import Depends, Request
from starlette.routing import Route

from serve_app.dependencies import IdempotencyKey, PrincipalDep

NAMESPACE = UUID("5b736b82-8398-53c6-b3e9-9aff6b9e0e25")
"""uuid5(NAMESPACE_URL, "urn:agenthost:idempotency-key"), fixed forever: changing it would make
every stored key unrecognisable to its retries."""
FINGERPRINT_LENGTH = 32
"""Hex digits of sha256 kept: 128 bits, far past any chance collision, and short to store."""


def command_id_for(user_id: str, agent_id: str, key: UUID | None) -> UUID:
    """The command id of ``key`` sent by ``user_id`` for ``agent_id``; a fresh one without a
    key. The three go in as a JSON array, so no user or agent id can pose as another pair."""
    if key is None:
        return uuid4()
    return uuid5(NAMESPACE, json.dumps([user_id, agent_id, str(key)]))


def request_fingerprint(
    method: str,
    route: str,
    path_params: Mapping[str, str],
    query: Iterable[tuple[str, str]],
    body: bytes,
) -> str:
    """A digest of what the request asks: its method, route template, path and query
    parameters, and its body as canonical JSON (so key order and whitespace do not count); a
    body that is not JSON counts as its bytes (the route refuses it anyway)."""
    try:
        content = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"))
    except (ValueError, RecursionError):  # not JSON, or nested past what Python parses
        content = body.hex()
    request = [method.upper(), route, sorted(path_params.items()), sorted(query), content]
    digest = hashlib.sha256(json.dumps(request).encode())  # ASCII: lone surrogates too
    return digest.hexdigest()[:FINGERPRINT_LENGTH]


@dataclass(frozen=True)
class Idempotency:
    """What a write route needs of the key: the command id for the agent it writes to, and
    the request's fingerprint (None without a key: nothing will come back to compare)."""

    user_id: str
    key: UUID | None
    fingerprint: str | None

    def command_id(self, agent_id: str) -> UUID:
        """Named by the route, which knows the agent: the path's, or the one a get-or-create
        derives (from the caller and the type) or a legacy session runs on."""
        return command_id_for(self.user_id, agent_id, self.key)


async def idempotency(
    request: Request, who: PrincipalDep, idempotency_key: IdempotencyKey = None
) -> Idempotency:
    """The Idempotency-Key header, scoped to the caller (the body is read once: FastAPI
    caches it for the route's own parameters)."""
    if idempotency_key is None:
        return Idempotency(who.user_id, None, None)
    route = request.scope.get("route")
    template = route.path if isinstance(route, Route) else request.url.path
    fingerprint = request_fingerprint(
        request.method,
        template,
        request.path_params,
        request.query_params.multi_items(),
        await request.body(),
    )
    return Idempotency(who.user_id, idempotency_key, fingerprint)


IdempotencyDep = Annotated[Idempotency, Depends(idempotency)]
