"""Projection handlers: every event type, idempotence, and agreement with the aggregate."""

from __future__ import annotations

import random
from collections.abc import Iterable

import pytest

from domain.agent import Agent
from domain.enums import AgentStatus, AgentType, AssignmentRole, SessionStatus
from domain.events import (
    AGENT_EVENT_CLASSES,
    AgentCreated,
    DomainEvent,
    ExecutionResumed,
    ExecutionSuspended,
    SessionMessagesRecorded,
    SessionStarted,
)
from domain.execution_state import LlmMessage
from projections.documents import AgentDocument, SessionDocument
from projections.handlers import ProjectionError, project, session_id_of
from tests.projection_support import Clock, assert_matches_state, create_agent, random_command

from .domain.builders import AGENT_ID, OWNER, answer, at, execution, widget

Documents = tuple[AgentDocument | None, dict[str, SessionDocument]]


def fold(
    events: Iterable[DomainEvent], documents: Documents | None = None, start: int = 1
) -> Documents:
    """Project events at consecutive positions from ``start``, as the projector would."""
    agent, sessions = documents or (None, {})
    sessions = dict(sessions)
    for position, event in enumerate(events, start=start):
        session_id = session_id_of(event)
        projected = project(
            event, position, agent, sessions.get(session_id) if session_id else None
        )
        agent = projected.agent
        if projected.session is not None:
            sessions[projected.session.session_id] = projected.session
    return agent, sessions


class History:
    """Drives an agent and keeps its whole log, like the event store would."""

    def __init__(self, agent: Agent | None = None) -> None:
        self.agent = agent or Agent.create(
            agent_id=AGENT_ID, owner_user_id=OWNER, agent_type=AgentType.TUTOR, now=at(0)
        )
        self.log: list[DomainEvent] = []
        self.commit()

    def commit(self) -> list[DomainEvent]:
        emitted = list(self.agent.pending_events)
        self.log.extend(emitted)
        self.agent.mark_committed()
        return emitted

    def documents(self) -> tuple[AgentDocument, dict[str, SessionDocument]]:
        agent, sessions = fold(self.log)
        assert agent is not None
        return agent, sessions


def started(history: History | None = None, session_id: str = "s-1") -> History:
    history = history or History()
    history.agent.start_session(session_id=session_id, conversation_id=f"c-{session_id}", now=at(1))
    history.commit()
    return history


# ---------------------------------------------------------------------------- each event type


def test_created_gives_an_active_agent_owned_and_seen_by_its_owner() -> None:
    agent, sessions = History().documents()
    assert agent.id == AGENT_ID
    assert agent.owner_user_id == OWNER
    assert agent.agent_type is AgentType.TUTOR
    assert agent.status is AgentStatus.ACTIVE
    assert agent.name == "Tutor agent"
    assert [(a.user_id, a.role) for a in agent.assignments] == [(OWNER, AssignmentRole.PRIMARY)]
    assert agent.member_user_ids == (OWNER,)
    assert (agent.total_sessions, agent.total_interactions, agent.successful_completions) == (
        0,
        0,
        0,
    )
    assert not agent.has_active_session
    assert agent.active_session is None
    assert agent.last_session is None
    assert agent.created_at == agent.updated_at == at(0)
    assert agent.last_interaction_at is None
    assert agent.position == 1
    assert sessions == {}


def test_user_assigned_adds_the_assignment_and_a_member() -> None:
    history = History()
    history.agent.assign_user("user-2", "observer", assigned_by=OWNER, now=at(5))
    history.commit()
    agent, _ = history.documents()
    assert agent.assignments[-1].model_dump() == {
        "user_id": "user-2",
        "role": AssignmentRole.OBSERVER,
        "assigned_by": OWNER,
        "assigned_at": at(5),
    }
    assert agent.member_user_ids == (OWNER, "user-2")
    assert agent.updated_at == at(5)


def test_user_unassigned_drops_the_assignment_and_the_member() -> None:
    history = History()
    for user, role in (("user-2", "observer"), ("user-3", "shared")):
        history.agent.assign_user(user, role, assigned_by=OWNER, now=at(5))
    history.agent.unassign_user("user-2", unassigned_by="user-2", now=at(6))
    history.commit()
    agent, _ = history.documents()
    assert [(a.user_id, a.role) for a in agent.assignments] == [
        (OWNER, AssignmentRole.PRIMARY),
        ("user-3", AssignmentRole.SHARED),
    ]
    assert agent.member_user_ids == (OWNER, "user-3")
    assert (agent.updated_at, agent.position) == (at(6), 4)


def test_a_user_assigned_again_after_leaving_is_a_member_once() -> None:
    history = History()
    history.agent.assign_user("user-2", "observer", assigned_by=OWNER, now=at(5))
    history.agent.unassign_user("user-2", unassigned_by=OWNER, now=at(6))
    history.agent.assign_user("user-2", "mentee", assigned_by=OWNER, now=at(7))
    history.commit()
    agent, _ = history.documents()
    assert [(a.user_id, a.role) for a in agent.assignments][1:] == [
        ("user-2", AssignmentRole.MENTEE)
    ]
    assert agent.member_user_ids == (OWNER, "user-2")
    assert_matches_state(agent, {}, history.agent.state)


def test_preferences_updated_replaces_the_map() -> None:
    history = History()
    history.agent.update_preferences({"language": "fr", "level": 3}, now=at(5))
    history.agent.update_preferences({"level": None}, now=at(6))
    history.commit()
    agent, _ = history.documents()
    assert agent.preferences == {"language": "fr"}
    assert agent.position == 3


def test_session_started_opens_a_session_view_and_counts_it() -> None:
    agent, sessions = started().documents()
    assert agent.total_sessions == 1
    assert agent.has_active_session
    assert agent.active_session_id == "s-1"
    assert agent.active_session is not None
    assert agent.active_session.status is SessionStatus.ACTIVE
    assert agent.active_session.items_completed == 0
    assert agent.active_session.current_item is None
    assert agent.last_interaction_at == at(1)
    view = sessions["s-1"]
    assert (view.agent_id, view.owner_user_id, view.agent_type) == (
        AGENT_ID,
        OWNER,
        AgentType.TUTOR,
    )
    assert view.conversation_id == "c-s-1"
    assert view.status is SessionStatus.ACTIVE
    assert view.started_at == at(1)
    assert view.ended_at is None
    assert view.position == 2


def test_messages_recorded_extend_the_transcript() -> None:
    history = started()
    messages = [LlmMessage(role="user", content="hi"), LlmMessage(role="assistant", content="yo")]
    history.agent.record_messages(messages, now=at(2))
    history.agent.record_messages(messages[:1], now=at(3))
    history.commit()
    agent, sessions = history.documents()
    assert sessions["s-1"].transcript == (*messages, messages[0])
    assert agent.updated_at == at(3)


def test_client_action_requested_opens_an_item_and_waits() -> None:
    history = started()
    history.agent.request_client_action(widget("call-1"), now=at(2))
    history.commit()
    agent, sessions = history.documents()
    view = sessions["s-1"]
    assert view.status is SessionStatus.AWAITING_CLIENT_ACTION
    assert view.pending_action == widget("call-1")
    [item] = view.items
    assert (item.item_id, item.sequence, item.agent_prompt) == ("call-1", 1, "2 + 2 = ?")
    assert agent.active_session is not None
    assert agent.active_session.status is SessionStatus.AWAITING_CLIENT_ACTION
    assert agent.active_session.pending_action == widget("call-1")
    assert agent.active_session.current_item == item


def test_execution_suspended_and_resumed_touch_only_the_agent_timestamps() -> None:
    history = started()
    history.agent.suspend_execution(execution("call-1"), widget("call-1"), now=at(2))
    emitted = history.commit()
    assert [type(e) for e in emitted][-1] is ExecutionSuspended
    agent, sessions = history.documents()
    before = sessions["s-1"]
    history.agent.resume_execution(answer("call-1"), now=at(3))
    emitted = history.commit()
    assert [type(e) for e in emitted][-1] is ExecutionResumed
    # The suspension itself shows nowhere but in the agent's position and update time.
    agent_after, sessions_after = fold(emitted[-1:], (agent, sessions), start=len(history.log))
    assert agent_after is not None
    assert agent_after.updated_at == at(3)
    assert agent_after.position == len(history.log)
    assert sessions_after["s-1"] is before


def test_client_response_received_answers_the_item() -> None:
    history = started()
    history.agent.request_client_action(widget("call-1"), now=at(2))
    history.agent.receive_client_response(answer("call-1"), now=at(4), evaluation={"correct": True})
    history.commit()
    agent, sessions = history.documents()
    view = sessions["s-1"]
    [item] = view.items
    assert item.user_response == {"selection": "4"}
    assert item.response_time_ms == 850
    assert item.evaluation == {"correct": True}
    assert item.completed_at == at(4)
    assert view.pending_action is None
    assert view.status is SessionStatus.ACTIVE
    assert view.items_completed == 1
    assert agent.total_interactions == 1
    assert agent.last_interaction_at == at(4)
    assert agent.active_session is not None
    assert agent.active_session.current_item is None
    assert agent.active_session.items_completed == 1


def test_session_completed_ends_the_view_and_counts_a_success() -> None:
    history = started()
    history.agent.complete_session(now=at(9), reason="criteria_met", summary={"score": 3})
    history.commit()
    agent, sessions = history.documents()
    assert agent.successful_completions == 1
    assert not agent.has_active_session
    assert agent.active_session is None
    assert agent.active_session_id is None
    assert agent.last_session is not None
    assert agent.last_session.model_dump() == {
        "session_id": "s-1",
        "status": SessionStatus.COMPLETED,
        "started_at": at(1),
        "ended_at": at(9),
        "end_reason": "criteria_met",
        "summary": {"score": 3},
    }
    view = sessions["s-1"]
    assert view.status is SessionStatus.COMPLETED
    assert (view.ended_at, view.end_reason, view.summary) == (at(9), "criteria_met", {"score": 3})


@pytest.mark.parametrize("final", ["terminated", "expired"])
def test_session_terminated_ends_the_view_without_a_success(final: str) -> None:
    history = started()
    history.agent.request_client_action(widget("call-1"), now=at(2))
    if final == "expired":
        history.agent.expire_session("time_limit", now=at(9))
    else:
        history.agent.terminate_session("user_left", now=at(9))
    history.commit()
    agent, sessions = history.documents()
    assert agent.successful_completions == 0
    assert agent.total_sessions == 1
    assert agent.last_session is not None
    assert agent.last_session.status == final
    view = sessions["s-1"]
    assert view.status == final
    assert view.pending_action is None
    assert view.ended_at == at(9)
    assert view.summary is None


def test_archived_terminates_the_active_session_first() -> None:
    history = started()
    history.agent.archive("duplicate", now=at(7))
    history.commit()
    agent, sessions = history.documents()
    assert agent.status is AgentStatus.ARCHIVED
    assert (agent.archived_at, agent.archive_reason) == (at(7), "duplicate")
    assert agent.active_session is None
    assert sessions["s-1"].status is SessionStatus.TERMINATED


def test_every_event_type_has_a_rule() -> None:
    history = random_history(random.Random(6), steps=400)
    seen = {type(event) for event in history.log}
    assert seen == set(AGENT_EVENT_CLASSES)
    history.documents()  # and folding them all raises nothing


# ---------------------------------------------------------------------------- idempotence


def test_reapplying_any_event_leaves_every_document_unchanged() -> None:
    history = random_history(random.Random(11), steps=120)
    log = history.log
    for cut in range(1, len(log) + 1):
        documents = fold(log[:cut])
        for position in range(1, cut + 1):
            again = fold(log[position - 1 : position], documents, start=position)
            assert again == documents


def test_replaying_the_whole_log_over_final_documents_changes_nothing() -> None:
    history = random_history(random.Random(3), steps=150)
    documents = history.documents()
    assert fold(history.log, documents) == documents


def test_positions_start_at_one() -> None:
    with pytest.raises(ValueError, match="positions start at 1"):
        project(History().log[0], 0, None, None)


# ---------------------------------------------------------------------------- inconsistent logs


def test_an_event_for_an_unknown_agent_is_refused() -> None:
    event = started().log[1]
    with pytest.raises(ProjectionError, match="does not have"):
        project(event, 5, None, None)


def test_a_session_event_for_an_unknown_session_is_refused() -> None:
    history = started()
    agent, _ = history.documents()
    event = SessionMessagesRecorded(
        agent_id=AGENT_ID, occurred_at=at(3), session_id="s-1", messages=(LlmMessage(role="user"),)
    )
    with pytest.raises(ProjectionError, match="does not have"):
        project(event, 9, agent, None)


def test_a_session_event_for_another_session_is_refused() -> None:
    history = started()
    agent, sessions = history.documents()
    event = SessionMessagesRecorded(
        agent_id=AGENT_ID, occurred_at=at(3), session_id="s-9", messages=(LlmMessage(role="user"),)
    )
    with pytest.raises(ProjectionError, match="has active session s-1"):
        project(event, 9, agent, sessions["s-1"])


def test_a_second_creation_or_start_is_refused() -> None:
    history = started()
    agent, sessions = history.documents()
    created, session_started = history.log[0], history.log[1]
    assert isinstance(created, AgentCreated)
    assert isinstance(session_started, SessionStarted)
    with pytest.raises(ProjectionError, match="created again"):
        project(created, 10, agent, None)
    with pytest.raises(ProjectionError, match="while agent"):
        project(session_started, 10, agent, sessions["s-1"])


# ---------------------------------------------------------------------------- vs the aggregate


def random_history(rng: random.Random, steps: int, max_history_size: int = 50) -> History:
    clock = Clock(rng=rng)
    history = History(create_agent(rng, clock, AGENT_ID, OWNER, max_history_size))
    for _ in range(steps):
        if not random_command(history.agent, rng, clock):
            break
        _now_and_then_a_member_leaves(history.agent, rng, clock)
        history.commit()
    return history


def _now_and_then_a_member_leaves(agent: Agent, rng: random.Random, clock: Clock) -> None:
    """``random_command`` only assigns: members leave here, so random histories unassign too."""
    members = [a.user_id for a in agent.state.assignments if a.user_id != OWNER]
    if members and not agent.is_archived() and rng.random() < 0.05:
        agent.unassign_user(rng.choice(members), unassigned_by=OWNER, now=clock.tick())


@pytest.mark.parametrize("seed", range(40))
def test_documents_match_the_aggregate_for_random_histories(seed: int) -> None:
    rng = random.Random(seed)
    history = random_history(rng, steps=rng.randint(5, 80), max_history_size=3)
    agent, sessions = history.documents()
    assert_matches_state(agent, sessions, history.agent.state)
    assert agent.position == len(history.log)


def test_documents_match_the_aggregate_after_every_step() -> None:
    rng = random.Random(99)
    history = random_history(rng, steps=0)
    clock = Clock(now=history.agent.state.updated_at, rng=rng)
    documents: Documents = fold(history.log)
    for _ in range(150):
        if not random_command(history.agent, rng, clock):
            break
        start = len(history.log) + 1
        documents = fold(history.commit(), documents, start=start)
        agent, sessions = documents
        assert agent is not None
        assert_matches_state(agent, sessions, history.agent.state)


def test_session_scores_feed_the_agents_average_like_the_aggregate() -> None:
    history = started()
    history.agent.complete_session(now=at(9), summary={"score": 0.5})
    history.agent.start_session(session_id="s2", conversation_id="c2", now=at(10))
    history.agent.complete_session(now=at(11), summary={"score": 3})  # not a fraction: no score
    history.commit()
    agent, _ = history.documents()
    assert (agent.scored_sessions, agent.score_total, agent.average_score) == (1, 0.5, 0.5)
    assert agent.average_score == history.agent.state.average_score
