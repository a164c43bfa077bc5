"""Sessions: start, transcript, widgets, suspend/resume, completion, termination, history."""

from __future__ import annotations

import pytest

from domain.enums import ControlMode, SessionStatus, SessionType
from domain.errors import (
    ClientActionAlreadyPending,
    ExecutionAlreadySuspended,
    ExecutionNotSuspended,
    InvalidCommand,
    NoActiveSession,
    NoPendingClientAction,
    SessionAlreadyActive,
    SessionMismatch,
    WrongToolCall,
)
from domain.events import (
    ClientActionRequested,
    ClientResponseReceived,
    ExecutionResumed,
    ExecutionSuspended,
    SessionCompleted,
    SessionMessagesRecorded,
    SessionStarted,
    SessionTerminated,
)
from domain.execution_state import LlmMessage
from domain.session import SessionConfig

from .builders import answer, at, execution, new_agent, suspended, widget, with_session


def test_start_session_when_idle_succeeds() -> None:
    agent = new_agent()
    config = SessionConfig(max_items=5, template_id="arithmetic")
    session = agent.start_session(
        session_id="s-1",
        conversation_id="c-1",
        now=at(1),
        system_prompt="Be kind.",
        config=config,
    )
    (event,) = agent.pending_events
    assert isinstance(event, SessionStarted)
    assert session.session_type is SessionType.LEARNING  # the tutor's default
    assert session.control_mode is ControlMode.PROACTIVE
    assert session.status is SessionStatus.ACTIVE
    assert session.config == config
    state = agent.state
    assert state.active_session == session
    assert state.total_sessions == 1
    assert state.last_interaction_at == at(1)
    assert agent.has_active_session()


def test_start_session_when_active_raises_error() -> None:
    agent = with_session()
    with pytest.raises(SessionAlreadyActive):
        agent.start_session(session_id="s-2", conversation_id="c-2", now=at(5))
    assert agent.pending_events == ()
    assert agent.state.total_sessions == 1


def test_start_session_refuses_a_reused_session_id() -> None:
    agent = with_session()
    agent.terminate_session("bye", now=at(3))
    agent.mark_committed()
    with pytest.raises(InvalidCommand):
        agent.start_session(session_id="s-1", conversation_id="c-x", now=at(4))


def test_record_messages_extends_the_transcript() -> None:
    agent = with_session()
    hello = LlmMessage(role="assistant", content="Hello!")
    agent.record_messages([hello], now=at(2))
    (event,) = agent.pending_events
    assert isinstance(event, SessionMessagesRecorded)
    session = agent.get_active_session()
    assert session is not None
    assert session.transcript == (hello,)


def test_record_messages_refusals() -> None:
    with pytest.raises(NoActiveSession):
        new_agent().record_messages([LlmMessage(role="user", content="hi")], now=at(1))
    agent = with_session()
    with pytest.raises(InvalidCommand):
        agent.record_messages([], now=at(1))
    with pytest.raises(SessionMismatch):
        agent.record_messages([LlmMessage(role="user")], now=at(1), session_id="other")
    assert agent.pending_events == ()


def test_request_client_action_opens_an_item_and_awaits() -> None:
    agent = with_session()
    agent.request_client_action(widget(), now=at(2))
    (event,) = agent.pending_events
    assert isinstance(event, ClientActionRequested)
    session = agent.get_active_session()
    assert session is not None
    assert session.status is SessionStatus.AWAITING_CLIENT_ACTION
    assert session.pending_action == widget()
    assert session.current_item is not None
    assert session.current_item.sequence == 1
    assert session.current_item.agent_prompt == "2 + 2 = ?"


def test_only_one_client_action_at_a_time() -> None:
    agent = with_session()
    agent.request_client_action(widget("call-1"), now=at(2))
    agent.mark_committed()
    with pytest.raises(ClientActionAlreadyPending):
        agent.request_client_action(widget("call-2"), now=at(3))
    assert agent.pending_events == ()


def test_suspend_execution_persists_state_and_requests_the_action() -> None:
    agent = with_session()
    agent.suspend_execution(execution(), widget(), now=at(2))
    requested, suspended_event = agent.pending_events
    assert isinstance(requested, ClientActionRequested)
    assert isinstance(suspended_event, ExecutionSuspended)
    assert agent.is_suspended()
    assert agent.get_execution_state() == execution()


def test_suspend_after_the_action_was_requested_records_only_the_suspension() -> None:
    agent = with_session()
    agent.request_client_action(widget(), now=at(2))
    agent.mark_committed()
    agent.suspend_execution(execution(), widget(), now=at(3))
    (event,) = agent.pending_events
    assert isinstance(event, ExecutionSuspended)


def test_suspend_refusals() -> None:
    agent = with_session()
    with pytest.raises(WrongToolCall):
        agent.suspend_execution(execution("call-1"), widget("call-2"), now=at(2))
    no_call = execution().model_copy(update={"pending_tool_call": None})
    with pytest.raises(InvalidCommand):
        agent.suspend_execution(no_call, widget(), now=at(2))
    agent.request_client_action(widget("call-9"), now=at(2))
    agent.mark_committed()
    with pytest.raises(ClientActionAlreadyPending):
        agent.suspend_execution(execution(), widget(), now=at(3))
    assert agent.pending_events == ()
    twice = suspended()
    with pytest.raises(ExecutionAlreadySuspended):
        twice.suspend_execution(execution(), widget(), now=at(3))
    assert twice.pending_events == ()


def test_resume_execution_returns_saved_state() -> None:
    agent = suspended()
    saved = agent.resume_execution(answer(), now=at(3), evaluation={"correct": True})
    assert saved == execution()
    received, resumed = agent.pending_events
    assert isinstance(received, ClientResponseReceived)
    assert isinstance(resumed, ExecutionResumed)
    assert resumed.tool_call_id == "call-1"
    state = agent.state
    assert state.execution_state is None
    assert not agent.is_suspended()
    session = state.active_session
    assert session is not None
    assert session.status is SessionStatus.ACTIVE
    assert session.pending_action is None
    (item,) = session.items
    assert item.user_response == {"selection": "4"}
    assert item.evaluation == {"correct": True}
    assert item.response_time_ms == 850
    assert item.completed_at == at(3)
    assert state.total_interactions == 1


def test_resume_with_wrong_tool_call_id_raises_error() -> None:
    agent = suspended()
    before = agent.state
    with pytest.raises(WrongToolCall):
        agent.resume_execution(answer("call-other"), now=at(3))
    assert agent.pending_events == ()
    assert agent.state == before


def test_resume_without_suspension_is_refused() -> None:
    agent = with_session()
    agent.request_client_action(widget(), now=at(2))
    agent.mark_committed()
    with pytest.raises(ExecutionNotSuspended):
        agent.resume_execution(answer(), now=at(3))
    assert agent.pending_events == ()


def test_client_response_only_while_an_action_is_pending() -> None:
    agent = with_session()
    with pytest.raises(NoPendingClientAction):
        agent.receive_client_response(answer(), now=at(2))
    assert agent.pending_events == ()


def test_client_response_to_the_wrong_call_is_refused() -> None:
    agent = with_session()
    agent.request_client_action(widget(), now=at(2))
    agent.mark_committed()
    with pytest.raises(WrongToolCall):
        agent.receive_client_response(answer("call-2"), now=at(3))
    assert agent.pending_events == ()


def test_client_response_without_suspension_does_not_resume() -> None:
    agent = with_session()
    agent.request_client_action(widget(), now=at(2))
    agent.mark_committed()
    agent.receive_client_response(answer(), now=at(3))
    (event,) = agent.pending_events
    assert isinstance(event, ClientResponseReceived)


def test_client_response_to_a_suspended_call_also_resumes() -> None:
    agent = suspended()
    agent.receive_client_response(answer(), now=at(3))
    assert [type(e) for e in agent.pending_events] == [ClientResponseReceived, ExecutionResumed]
    assert agent.get_execution_state() is None


def test_complete_session_archives_to_history() -> None:
    agent = suspended()
    agent.resume_execution(answer(), now=at(3))
    agent.mark_committed()
    ended = agent.complete_session(now=at(4), summary={"score": 1.0})
    (event,) = agent.pending_events
    assert isinstance(event, SessionCompleted)
    assert event.reason == "criteria_met"
    state = agent.state
    assert state.active_session is None
    assert state.execution_state is None
    assert state.session_history == (ended,)
    assert ended.status is SessionStatus.COMPLETED
    assert ended.summary == {"score": 1.0}
    assert ended.ended_at == at(4)
    assert ended.items_completed == 1
    assert state.successful_completions == 1
    assert state.total_sessions == 1


def test_complete_refuses_while_a_widget_is_pending() -> None:
    agent = suspended()
    with pytest.raises(ClientActionAlreadyPending):
        agent.complete_session(now=at(3))
    assert agent.pending_events == ()


def test_complete_without_session_is_refused() -> None:
    agent = new_agent()
    with pytest.raises(NoActiveSession):
        agent.complete_session(now=at(3))
    with pytest.raises(NoActiveSession):
        agent.terminate_session("x", now=at(3))


def test_session_history_maintains_max_size() -> None:
    agent = new_agent(max_history_size=3)
    for n in range(5):
        agent.start_session(session_id=f"s-{n}", conversation_id=f"c-{n}", now=at(10 * n))
        agent.complete_session(now=at(10 * n + 1))
    history = agent.state.session_history
    assert [s.session_id for s in history] == ["s-2", "s-3", "s-4"]
    assert agent.state.total_sessions == 5
    assert agent.state.successful_completions == 5


def test_terminate_session_clears_execution_state() -> None:
    agent = suspended()
    ended = agent.terminate_session("User terminated", now=at(3))
    (event,) = agent.pending_events
    assert isinstance(event, SessionTerminated)
    assert event.final_status == "terminated"
    state = agent.state
    assert state.execution_state is None
    assert state.active_session is None
    assert ended.status is SessionStatus.TERMINATED
    assert ended.pending_action is None
    assert ended.end_reason == "User terminated"
    assert state.successful_completions == 0


def test_expire_session_records_expired_status() -> None:
    agent = with_session()
    ended = agent.expire_session("time_limit", now=at(3))
    (event,) = agent.pending_events
    assert isinstance(event, SessionTerminated)
    assert event.final_status == "expired"
    assert ended.status is SessionStatus.EXPIRED


def test_session_commands_refuse_a_stale_session_id() -> None:
    agent = suspended()
    with pytest.raises(SessionMismatch):
        agent.terminate_session("x", now=at(3), session_id="s-old")
    with pytest.raises(SessionMismatch):
        agent.resume_execution(answer(), now=at(3), session_id="s-old")
    assert agent.pending_events == ()


def test_completed_sessions_with_a_score_feed_the_average() -> None:
    agent = new_agent()
    for n, summary in enumerate(
        [{"score": 1.0}, {"score": 0.5}, None, {"score": 7}, {"score": True}, {"note": "x"}]
    ):
        agent.start_session(session_id=f"s{n}", conversation_id=f"c{n}", now=at(2 * n))
        agent.complete_session(now=at(2 * n + 1), summary=summary)
    state = agent.state
    assert state.successful_completions == 6
    assert (state.scored_sessions, state.score_total) == (2, 1.5)  # only fractions in [0, 1]
    assert state.average_score == 0.75
    assert new_agent().state.average_score is None
