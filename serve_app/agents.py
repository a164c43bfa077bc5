"""The agent API under /api/agents: queries read the read model, writes are commands.

Writes answer from the aggregate itself (strongly consistent) and carry the log position of
what they wrote; a query given ``?after=<position>`` waits until the read model has applied
it (read-your-writes). An ``Idempotency-Key`` header (a UUID) gives the command id, scoped to
the caller and the agent written to (``serve_app/idempotency.py``), so a client that retries
after a lost answer never acts twice, and one that sends the key with another request is
refused.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response, status

from application.replies import SessionReply
from application.use_cases import (
    AnswerWidget,
    ReadCurrentSession,
    StartSession,
    UpdatePreferences,
)
from domain.commands import (
    ArchiveAgent,
    AssignUser,
    Command,
    CommandResult,
    GetOrCreateAgent,
    TerminateSession,
    UnassignUser,
)
from domain.enums import AgentType
from domain.ids import agent_id_for
from projections.documents import AgentDocument, SessionDocument
from serve_app.access import visible
from serve_app.auth import Principal
from serve_app.backend import Backend
from serve_app.dependencies import After, AgentId, BackendDep, PrincipalDep
from serve_app.idempotency import IdempotencyDep
from serve_app.limits import Identifier, Reason
from serve_app.problems import Problem
from serve_app.read_your_writes import ReadModelBehind, caught_up
from serve_app.schemas import (
    ArchiveRequest,
    AssignUserRequest,
    CreateAgentRequest,
    PreferencesRequest,
    RespondRequest,
    SessionState,
    StartSessionRequest,
)

PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "description": description}
    for status, description in (
        (401, "No valid bearer token"),
        (403, "Your role on this agent may not do this (see the role matrix)"),
        (404, "No such agent, or not yours: the same answer either way"),
        (409, "The agent's state refuses this now (e.g. a session is already active)"),
        (422, "Invalid input (nothing was changed)"),
        (503, "A store, actor or LLM is unavailable: retry with the same Idempotency-Key"),
    )
}
router = APIRouter(prefix="/api/agents", tags=["agents"], responses=PROBLEMS)


async def _projected(backend: Backend, result: CommandResult, who: Principal) -> AgentDocument:
    """The agent's document once it shows what ``result`` wrote.

    The command succeeded, so the agent exists: a document still missing means the read model
    is behind (a command that wrote nothing, position 0, on an agent whose creation it has not
    applied yet), never that the agent is not there, so it is waited for up to the log's
    head and then answered as ReadModelBehind (503), not as a missing agent (404).
    """
    await caught_up(backend, result.position)
    agent = await backend.read_model.get_agent(result.agent_id)
    if agent is None and result.position == 0:
        await caught_up(backend, await backend.event_store.last_position())
        agent = await backend.read_model.get_agent(result.agent_id)
    if agent is None:
        raise ReadModelBehind(f"the read model does not show agent {result.agent_id} yet")
    return visible(agent, result.agent_id, who)


async def _act(backend: Backend, who: Principal, command: Command) -> AgentDocument:
    """A command the agent decides (the caller's access included); answers with the updated
    document."""
    return await _projected(backend, await backend.runtime.handle(command), who)


def _session_state(reply: SessionReply) -> SessionState:
    return SessionState(
        agent_id=reply.result.agent_id,
        position=reply.position,
        outcome=reply.outcome,
        session=reply.session,
    )


@router.get("", summary="List the agents I own or am assigned to")
async def list_agents(
    backend: BackendDep,
    who: PrincipalDep,
    after: After = 0,
    include_archived: bool = False,
    agent_type: AgentType | None = None,
) -> list[AgentDocument]:
    await caught_up(backend, after)
    return await backend.read_model.list_agents(
        who.user_id, include_archived=include_archived, agent_type=agent_type
    )


@router.post(
    "",
    summary="Get or create my agent of a type",
    status_code=status.HTTP_200_OK,
    responses={201: {"description": "Created"}, 200: {"description": "Already existed"}},
)
async def get_or_create_agent(
    body: CreateAgentRequest,
    backend: BackendDep,
    who: PrincipalDep,
    response: Response,
    idempotency: IdempotencyDep,
) -> AgentDocument:
    command = GetOrCreateAgent.for_user(
        who.user_id,
        body.agent_type,
        name=body.name,
        preferences=body.preferences,
        command_id=idempotency.command_id(agent_id_for(who.user_id, body.agent_type)),
        request_fingerprint=idempotency.fingerprint,
        caller=who.caller,
    )
    result = await backend.runtime.handle(command)
    if result.event_types or result.duplicate:  # a recognised retry is of the creation
        response.status_code = status.HTTP_201_CREATED
    return await _projected(backend, result, who)


@router.get("/{agent_id}", summary="Get one agent")
async def get_agent(
    agent_id: AgentId, backend: BackendDep, who: PrincipalDep, after: After = 0
) -> AgentDocument:
    await caught_up(backend, after)
    return visible(await backend.read_model.get_agent(agent_id), agent_id, who)


@router.post("/{agent_id}/sessions", summary="Start a session", status_code=201)
async def start_session(
    agent_id: AgentId,
    body: StartSessionRequest,
    backend: BackendDep,
    who: PrincipalDep,
    idempotency: IdempotencyDep,
) -> SessionState:
    reply = await backend.runtime.handle(
        StartSession(
            command_id=idempotency.command_id(agent_id),
            request_fingerprint=idempotency.fingerprint,
            agent_id=agent_id,
            caller=who.caller,
            session_type=body.session_type,
            system_prompt=body.system_prompt,
            config=body.config,
        )
    )
    return _session_state(reply)


@router.get("/{agent_id}/session", summary="The current session, with its pending widget")
async def current_session(
    agent_id: AgentId, backend: BackendDep, who: PrincipalDep
) -> SessionState:
    session = await backend.runtime.handle(ReadCurrentSession(agent_id=agent_id, caller=who.caller))
    return SessionState(agent_id=agent_id, position=0, session=session)


@router.post("/{agent_id}/session/respond", summary="Answer the pending widget")
async def respond(
    agent_id: AgentId,
    body: RespondRequest,
    backend: BackendDep,
    who: PrincipalDep,
    idempotency: IdempotencyDep,
) -> SessionState:
    reply = await backend.runtime.handle(
        AnswerWidget(
            command_id=idempotency.command_id(agent_id),
            request_fingerprint=idempotency.fingerprint,
            agent_id=agent_id,
            caller=who.caller,
            tool_call_id=body.tool_call_id,
            response=body.response,
            response_time_ms=body.response_time_ms,
        )
    )
    return _session_state(reply)


@router.delete("/{agent_id}/session", summary="Terminate the current session")
async def terminate_session(
    agent_id: AgentId,
    backend: BackendDep,
    who: PrincipalDep,
    idempotency: IdempotencyDep,
    reason: Annotated[Reason, Query(description="Why it ends (one line).")] = "User terminated",
) -> SessionState:
    result = await backend.runtime.handle(
        TerminateSession(
            command_id=idempotency.command_id(agent_id),
            request_fingerprint=idempotency.fingerprint,
            agent_id=agent_id,
            caller=who.caller,
            reason=reason,
        )
    )
    return SessionState(agent_id=agent_id, position=result.position, session=result.session)


@router.get("/{agent_id}/sessions", summary="Session history, newest first")
async def session_history(
    agent_id: AgentId,
    backend: BackendDep,
    who: PrincipalDep,
    after: After = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[SessionDocument]:
    await caught_up(backend, after)
    visible(await backend.read_model.get_agent(agent_id), agent_id, who)
    return await backend.read_model.list_sessions(agent_id, limit=limit)


@router.patch("/{agent_id}/preferences", summary="Update preferences")
async def update_preferences(
    agent_id: AgentId,
    body: PreferencesRequest,
    backend: BackendDep,
    who: PrincipalDep,
    idempotency: IdempotencyDep,
) -> AgentDocument:
    result = await backend.runtime.handle(
        UpdatePreferences(
            command_id=idempotency.command_id(agent_id),
            request_fingerprint=idempotency.fingerprint,
            agent_id=agent_id,
            caller=who.caller,
            changes=body.changes,
        )
    )
    return await _projected(backend, result, who)


@router.post("/{agent_id}/assignments", summary="Assign a user with a role", status_code=201)
async def assign_user(
    agent_id: AgentId,
    body: AssignUserRequest,
    backend: BackendDep,
    who: PrincipalDep,
    idempotency: IdempotencyDep,
) -> AgentDocument:
    return await _act(
        backend,
        who,
        AssignUser(
            command_id=idempotency.command_id(agent_id),
            request_fingerprint=idempotency.fingerprint,
            agent_id=agent_id,
            caller=who.caller,
            user_id=body.user_id,
            role=body.role,
            assigned_by=who.user_id,
        ),
    )


@router.delete(
    "/{agent_id}/assignments/{user_id}",
    summary="Unassign a user, or leave (your own user id)",
    response_model=AgentDocument,
    responses={204: {"description": "You left: the agent is no longer yours to see"}},
)
async def unassign_user(
    agent_id: AgentId,
    user_id: Annotated[Identifier, Path(description="Whose assignment.")],
    backend: BackendDep,
    who: PrincipalDep,
    idempotency: IdempotencyDep,
) -> AgentDocument | Response:
    """The owner or an admin unassigns anyone but the owner (200, the updated agent); any
    member leaves (204 once the read model no longer lists the agent for them)."""
    command = UnassignUser(
        command_id=idempotency.command_id(agent_id),
        request_fingerprint=idempotency.fingerprint,
        agent_id=agent_id,
        caller=who.caller,
        user_id=user_id,
        unassigned_by=who.user_id,
    )
    if user_id != who.user_id:
        return await _act(backend, who, command)
    await caught_up(backend, (await backend.runtime.handle(command)).position)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{agent_id}/archive", summary="Archive (ends the active session first)")
async def archive_agent(
    agent_id: AgentId,
    body: ArchiveRequest,
    backend: BackendDep,
    who: PrincipalDep,
    idempotency: IdempotencyDep,
) -> AgentDocument:
    archive = ArchiveAgent(
        command_id=idempotency.command_id(agent_id),
        request_fingerprint=idempotency.fingerprint,
        agent_id=agent_id,
        caller=who.caller,
        reason=body.reason,
    )
    return await _act(backend, who, archive)
