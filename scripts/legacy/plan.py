"""Pure planning: one user's legacy sessions -> the events of their Agents, via the domain.

Every event is decided by the Agent aggregate's own commands, so the migrated streams obey the
same invariants as live ones. Event ids are UUIDv5 of the legacy stream, the event's index
within that session's translation (the agent id and 0 for its creation) and a digest of the
event: planning the same data twice gives the same ids, so re-appending is a no-op and an
interrupted run resumes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from domain.agent import Agent
from domain.enums import AgentType, SessionStatus
from domain.errors import DomainError
from domain.execution_state import ExecutionState, PendingToolCall
from domain.ids import agent_id_for, stream_name
from domain.session import ClientAction, ClientResponse, SessionConfig
from domain.state import DEFAULT_MAX_HISTORY_SIZE
from eventstore.codec import to_envelope
from eventstore.port import NewEvent
from scripts.legacy.model import LegacyDataError, LegacySession, select_sessions

MIGRATION_NAMESPACE = uuid.UUID("0d7c1f52-6a39-4f0e-8f8e-3b0f7f6d2a19")
MIGRATION_SOURCE = "urn:agenthost:migration"


@dataclass(frozen=True)
class StreamProblem:
    stream: str
    reason: str


@dataclass
class AgentPlan:
    agent_id: str
    user_id: str
    agent_type: AgentType
    events: list[NewEvent] = field(default_factory=list)
    sessions: list[str] = field(default_factory=list)
    """Legacy session ids migrated into this agent, in the order they were written."""
    dropped_from_history: list[str] = field(default_factory=list)
    """Finished sessions past max_history_size: in the agent's log, not in its state."""
    rejected_responses: int = 0
    """Legacy submissions that failed validation: the legacy API discarded them too."""

    @property
    def stream(self) -> str:
        return stream_name(self.agent_id)


@dataclass
class UserPlan:
    user_id: str
    agents: list[AgentPlan] = field(default_factory=list)
    problems: list[StreamProblem] = field(default_factory=list)


def event_id(key: str, index: int, event: NewEvent) -> uuid.UUID:
    """Derived from where the event comes from and from what it says: the same legacy data
    gives the same id, and changed legacy data gives another, so a stream written from older
    data is recognised as diverging instead of being extended."""
    content = json.dumps([event.type, event.data, event.time.isoformat()], sort_keys=True)
    digest = hashlib.sha256(content.encode()).hexdigest()
    return uuid.uuid5(MIGRATION_NAMESPACE, f"{key}#{index}#{digest}")


def plan_user(
    user_id: str,
    sessions: Iterable[LegacySession],
    *,
    max_history_size: int = DEFAULT_MAX_HISTORY_SIZE,
    problems: Iterable[StreamProblem] = (),
) -> UserPlan:
    """Group a user's readable sessions by agent type and plan one agent for each."""
    plan = UserPlan(user_id, problems=list(problems))
    by_type: dict[AgentType, list[LegacySession]] = defaultdict(list)
    for session in sessions:
        if session.user_id != user_id:
            raise ValueError(f"session {session.session_id} belongs to {session.user_id}")
        by_type[session.agent_type].append(session)
    for agent_type in sorted(by_type):
        agent_plan = _plan_agent(user_id, agent_type, by_type[agent_type], max_history_size, plan)
        if agent_plan.sessions:
            plan.agents.append(agent_plan)
    return plan


def _plan_agent(
    user_id: str,
    agent_type: AgentType,
    sessions: list[LegacySession],
    max_history_size: int,
    user_plan: UserPlan,
) -> AgentPlan:
    selected = select_sessions(sessions)
    for older in selected.superseded:
        user_plan.problems.append(
            StreamProblem(older.stream, "another, newer session of this agent is unfinished")
        )
    agent_id = agent_id_for(user_id, agent_type)
    plan = AgentPlan(agent_id, user_id, agent_type)
    first = min(s.created_at for s in sessions)
    agent = Agent.create(
        agent_id=agent_id,
        owner_user_id=user_id,
        agent_type=agent_type,
        now=first,
        max_history_size=max_history_size,
    )
    plan.events.append(_envelope(agent, 0, agent_id))
    agent.mark_committed()
    ordered = [*selected.finished, *([selected.active] if selected.active else [])]
    for session in ordered:
        try:
            _translate(Agent(agent.state, 0), session)  # a dry run: a refusal changes nothing
        except (LegacyDataError, DomainError, ValueError) as error:
            user_plan.problems.append(StreamProblem(session.stream, str(error)))
            continue
        _translate(agent, session)
        for index in range(len(agent.pending_events)):
            plan.events.append(_envelope(agent, index, session.stream))
        agent.mark_committed()
        plan.sessions.append(session.session_id)
        plan.rejected_responses += session.rejected_responses
    migrated = set(plan.sessions)
    finished = [s.session_id for s in selected.finished if s.session_id in migrated]
    plan.dropped_from_history = finished[: max(0, len(finished) - max_history_size)]
    return plan


def _envelope(agent: Agent, index: int, key: str) -> NewEvent:
    draft = to_envelope(agent.pending_events[index], uuid.UUID(int=0), source=MIGRATION_SOURCE)
    return dataclasses.replace(draft, id=event_id(key, index, draft))


def _translate(agent: Agent, session: LegacySession) -> None:
    """Replay one legacy session through the domain commands, at its own timestamps."""
    sid = session.session_id
    agent.start_session(
        session_id=sid,
        conversation_id=session.conversation_id,
        now=session.started_at or session.created_at,
        session_type=session.session_type,
        control_mode=session.control_mode,
        system_prompt=session.system_prompt,
        config=SessionConfig.model_validate(session.config),
    )
    pending = session.pending_action
    for position, item in enumerate(session.items, start=1):
        if item.sequence != position:
            raise LegacyDataError(
                f"item {item.item_id} has sequence {item.sequence}, not {position}"
            )
        action = ClientAction.model_validate(item.client_action)
        if item.agent_prompt != str(action.props.get("prompt", "")):
            raise LegacyDataError(f"item {item.item_id}: agent_prompt differs from the widget's")
        if item.completed_at is not None:
            agent.request_client_action(
                action, now=item.started_at, session_id=sid, item_id=item.item_id
            )
            agent.receive_client_response(
                ClientResponse(
                    tool_call_id=action.tool_call_id,
                    response=item.user_response,
                    response_time_ms=item.response_time_ms,
                ),
                now=item.completed_at,
                session_id=sid,
                evaluation=item.evaluation,
            )
        elif session.end is None and pending is not None:
            _suspend(agent, session, action, item.item_id)
        else:
            agent.request_client_action(
                action, now=item.started_at, session_id=sid, item_id=item.item_id
            )
    if (
        session.end is None
        and pending is not None
        and (not session.items or session.items[-1].completed_at is not None)
    ):
        raise LegacyDataError("a widget is pending but no item is open")
    _end(agent, session)


def _suspend(agent: Agent, session: LegacySession, action: ClientAction, item_id: str) -> None:
    """The paused session keeps its widget and an execution state the executor resumes from."""
    pending = session.pending_action or {}
    if pending != action.to_dict():
        raise LegacyDataError(
            f"pending widget {pending.get('tool_call_id')} is not item {item_id}'s"
        )
    suspended_at = session.pending_set_at or session.items[-1].started_at
    execution = ExecutionState(
        iteration=len(session.items),
        tool_calls_made=len(session.items),
        pending_tool_call=PendingToolCall(
            call_id=action.tool_call_id, tool_name=action.tool_name, arguments=action.props
        ),
        started_at_ms=(session.started_at or session.created_at).timestamp() * 1000,
        suspended_at_ms=suspended_at.timestamp() * 1000,
    )
    agent.suspend_execution(
        execution,
        action,
        now=session.items[-1].started_at,
        session_id=session.session_id,
        item_id=item_id,
    )


def _end(agent: Agent, session: LegacySession) -> None:
    end, sid = session.end, session.session_id
    if end is None:
        return
    if end.status is SessionStatus.COMPLETED:
        agent.complete_session(now=end.at, reason=end.reason, summary=end.summary, session_id=sid)
    elif end.status is SessionStatus.EXPIRED:
        agent.expire_session(end.reason, now=end.at, session_id=sid)
    else:
        agent.terminate_session(end.reason, now=end.at, session_id=sid)
