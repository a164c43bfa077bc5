"""Sessions: start, transcript, widgets, suspend/resume, completion, termination, history."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from uuid import uuid5

from domain.agent import Agent
from domain.commands import (
    CompleteSession,
    RecordMessages,
    RequestClientAction,
    StartSession,
    SubmitResponse,
    SuspendExecution,
    TerminateSession,
)
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
    ClientResponseReceived,
    ExecutionResumed,
    SessionMessagesRecorded,
    SessionStarted,
)
from domain.execution_state import LlmMessage
from domain.session import ClientResponse, SessionConfig

from .builders import (
    AGENT_ID,
    action_requested,
    agent_created,
    answer,
    at,
    execution,
    execution_resumed,
    execution_suspended,
    new_agent,
    response_received,
    session_completed,
    session_events,
    session_started,
    session_terminated,
    suspended,
    suspended_events,
    widget,
)
from .given import COMMAND_ID, NOW, given

REQUESTED = [*session_events(), action_requested()]
"""A session waiting on widget call-1, with no suspended execution."""


def _resume(
    response: ClientResponse, session_id: str | None = None
) -> Callable[[Agent, datetime], object]:
    """``Agent.resume_execution`` (no command of its own) as a given/when step."""

    def resume(agent: Agent, now: datetime) -> object:
        return agent.resume_execution(response, now=now, session_id=session_id)

    return resume


def test_start_session_when_idle_succeeds() -> None:
    config = SessionConfig(max_items=5, template_id="arithmetic")
    start = StartSession(
        agent_id=AGENT_ID, command_id=COMMAND_ID, system_prompt="Be kind.", config=config
    )
    agent = (
        given(agent_created())
        .when(start)
        .then(
            SessionStarted(
                agent_id=AGENT_ID,
                occurred_at=NOW,
                session_id=str(uuid5(COMMAND_ID, "session")),
                conversation_id=str(uuid5(COMMAND_ID, "conversation")),
                session_type=SessionType.LEARNING,  # the tutor's default
                control_mode=ControlMode.PROACTIVE,
                system_prompt="Be kind.",
                config=config,
            )
        )
    )
    session = agent.get_active_session()
    assert session is not None
    assert session.session_id == start.session_id
    assert start.session_of(agent) == session
    assert session.session_type is SessionType.LEARNING
    assert session.control_mode is ControlMode.PROACTIVE
    assert session.status is SessionStatus.ACTIVE
    assert session.config == config
    state = agent.state
    assert state.total_sessions == 1
    assert state.last_interaction_at == NOW
    assert agent.has_active_session()


def test_start_session_when_active_raises_error() -> None:
    start = StartSession(agent_id=AGENT_ID, command_id=COMMAND_ID)
    agent = given(*session_events()).when(start).then_refuses(SessionAlreadyActive)
    assert agent.state.total_sessions == 1


def test_start_session_refuses_a_reused_session_id() -> None:
    start = StartSession(agent_id=AGENT_ID, command_id=COMMAND_ID)
    ended = [
        agent_created(),
        session_started(start.session_id),
        session_terminated(start.session_id, occurred_at=at(3), reason="bye"),
    ]
    given(*ended).when(start).then_refuses(InvalidCommand)


def test_record_messages_extends_the_transcript() -> None:
    hello = LlmMessage(role="assistant", content="Hello!")
    record = RecordMessages(agent_id=AGENT_ID, messages=(hello,))
    agent = (
        given(*session_events())
        .when(record)
        .then(
            SessionMessagesRecorded(
                agent_id=AGENT_ID, occurred_at=NOW, session_id="s-1", messages=(hello,)
            )
        )
    )
    session = agent.get_active_session()
    assert session is not None
    assert session.transcript == (hello,)


def test_record_messages_refusals() -> None:
    hi = (LlmMessage(role="user", content="hi"),)
    given(agent_created()).when(RecordMessages(agent_id=AGENT_ID, messages=hi)).then_refuses(
        NoActiveSession
    )
    given(*session_events()).when(RecordMessages(agent_id=AGENT_ID, messages=())).then_refuses(
        InvalidCommand
    )
    stale = RecordMessages(
        agent_id=AGENT_ID, messages=(LlmMessage(role="user"),), session_id="other"
    )
    given(*session_events()).when(stale).then_refuses(SessionMismatch)


def test_request_client_action_opens_an_item_and_awaits() -> None:
    request = RequestClientAction(agent_id=AGENT_ID, action=widget())
    agent = given(*session_events()).when(request).then(action_requested(occurred_at=NOW))
    session = agent.get_active_session()
    assert session is not None
    assert session.status is SessionStatus.AWAITING_CLIENT_ACTION
    assert session.pending_action == widget()
    assert session.current_item is not None
    assert session.current_item.sequence == 1
    assert session.current_item.agent_prompt == "2 + 2 = ?"


def test_only_one_client_action_at_a_time() -> None:
    another = RequestClientAction(agent_id=AGENT_ID, action=widget("call-2"))
    given(*REQUESTED).when(another).then_refuses(ClientActionAlreadyPending)


def test_suspend_execution_persists_state_and_requests_the_action() -> None:
    suspend = SuspendExecution(agent_id=AGENT_ID, execution_state=execution(), action=widget())
    agent = (
        given(*session_events())
        .when(suspend)
        .then(action_requested(occurred_at=NOW), execution_suspended(occurred_at=NOW))
    )
    assert agent.is_suspended()
    assert agent.get_execution_state() == execution()


def test_suspend_after_the_action_was_requested_records_only_the_suspension() -> None:
    suspend = SuspendExecution(agent_id=AGENT_ID, execution_state=execution(), action=widget())
    given(*REQUESTED).when(suspend).then(execution_suspended(occurred_at=NOW))


def test_suspend_refusals() -> None:
    mismatched = SuspendExecution(
        agent_id=AGENT_ID, execution_state=execution("call-1"), action=widget("call-2")
    )
    given(*session_events()).when(mismatched).then_refuses(WrongToolCall)
    no_call = SuspendExecution(
        agent_id=AGENT_ID,
        execution_state=execution().replace(pending_tool_call=None),
        action=widget(),
    )
    given(*session_events()).when(no_call).then_refuses(InvalidCommand)
    suspend = SuspendExecution(agent_id=AGENT_ID, execution_state=execution(), action=widget())
    waiting_on_another = [*session_events(), action_requested("call-9")]
    given(*waiting_on_another).when(suspend).then_refuses(ClientActionAlreadyPending)
    given(*suspended_events()).when(suspend).then_refuses(ExecutionAlreadySuspended)


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
    given(*suspended_events()).when(_resume(answer("call-other"))).then_refuses(WrongToolCall)


def test_resume_without_suspension_is_refused() -> None:
    given(*REQUESTED).when(_resume(answer())).then_refuses(ExecutionNotSuspended)


def test_client_response_only_while_an_action_is_pending() -> None:
    respond = SubmitResponse(agent_id=AGENT_ID, response=answer())
    given(*session_events()).when(respond).then_refuses(NoPendingClientAction)


def test_client_response_to_the_wrong_call_is_refused() -> None:
    respond = SubmitResponse(agent_id=AGENT_ID, response=answer("call-2"))
    given(*REQUESTED).when(respond).then_refuses(WrongToolCall)


def test_client_response_without_suspension_does_not_resume() -> None:
    respond = SubmitResponse(agent_id=AGENT_ID, response=answer())
    given(*REQUESTED).when(respond).then(response_received(occurred_at=NOW))


def test_client_response_to_a_suspended_call_also_resumes() -> None:
    respond = SubmitResponse(agent_id=AGENT_ID, response=answer(), evaluation={"correct": True})
    agent = (
        given(*suspended_events())
        .when(respond)
        .then(
            response_received(occurred_at=NOW, evaluation={"correct": True}),
            execution_resumed(occurred_at=NOW),
        )
    )
    assert agent.get_execution_state() is None


def test_complete_session_archives_to_history() -> None:
    answered = [*suspended_events(), response_received(), execution_resumed()]
    complete = CompleteSession(agent_id=AGENT_ID, summary={"score": 1.0})
    agent = (
        given(*answered)
        .when(complete)
        .then(session_completed(occurred_at=NOW, summary={"score": 1.0}))
    )
    state = agent.state
    ended = complete.session_of(agent)
    assert ended is not None
    assert state.active_session is None
    assert state.execution_state is None
    assert state.session_history == (ended,)
    assert ended.status is SessionStatus.COMPLETED
    assert ended.summary == {"score": 1.0}
    assert ended.ended_at == NOW
    assert ended.items_completed == 1
    assert state.successful_completions == 1
    assert state.total_sessions == 1


def test_complete_refuses_while_a_widget_is_pending() -> None:
    complete = CompleteSession(agent_id=AGENT_ID)
    given(*suspended_events()).when(complete).then_refuses(ClientActionAlreadyPending)


def test_complete_without_session_is_refused() -> None:
    given(agent_created()).when(CompleteSession(agent_id=AGENT_ID)).then_refuses(NoActiveSession)
    terminate = TerminateSession(agent_id=AGENT_ID, reason="x")
    given(agent_created()).when(terminate).then_refuses(NoActiveSession)


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
    terminate = TerminateSession(agent_id=AGENT_ID, reason="User terminated")
    agent = (
        given(*suspended_events())
        .when(terminate)
        .then(session_terminated(occurred_at=NOW, reason="User terminated"))
    )
    state = agent.state
    ended = state.session_history[-1]
    assert terminate.session_of(agent) == ended
    assert state.execution_state is None
    assert state.active_session is None
    assert ended.status is SessionStatus.TERMINATED
    assert ended.pending_action is None
    assert ended.end_reason == "User terminated"
    assert state.successful_completions == 0


def test_expire_session_records_expired_status() -> None:
    expire = TerminateSession(agent_id=AGENT_ID, reason="time_limit", expired=True)
    agent = (
        given(*session_events())
        .when(expire)
        .then(session_terminated(occurred_at=NOW, reason="time_limit", final_status="expired"))
    )
    assert agent.state.session_history[-1].status is SessionStatus.EXPIRED


def test_session_commands_refuse_a_stale_session_id() -> None:
    stale = TerminateSession(agent_id=AGENT_ID, reason="x", session_id="s-old")
    given(*suspended_events()).when(stale).then_refuses(SessionMismatch)
    stale_answer = SubmitResponse(agent_id=AGENT_ID, response=answer(), session_id="s-old")
    given(*suspended_events()).when(stale_answer).then_refuses(SessionMismatch)
    given(*suspended_events()).when(_resume(answer(), session_id="s-old")).then_refuses(
        SessionMismatch
    )


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
