"""The next step of an LLM session is read off its stored transcript and items alone."""

from __future__ import annotations

from datetime import UTC, datetime

from domain.enums import ControlMode, SessionStatus, SessionType
from domain.execution_state import LlmMessage, ToolCall
from domain.session import ClientAction, Session, SessionItem
from execution import widgets
from execution.llm_steps import (
    AskClient,
    CallLlm,
    RecordAnswer,
    RunServerTool,
    TurnEnded,
    WaitForClient,
    next_llm_step,
    turn_item_id,
    with_unique_call_ids,
)

T0 = datetime(2026, 11, 25, tzinfo=UTC)
CALC = ToolCall(id="c1", name="calculator", arguments={"expression": "1+1"})
WIDGET = ToolCall(id="w1", name="request_free_text", arguments={"prompt": "Why?"})


def session(*transcript: LlmMessage, items: tuple[SessionItem, ...] = ()) -> Session:
    return Session(
        session_id="s",
        conversation_id="c",
        session_type=SessionType.LEARNING,
        control_mode=ControlMode.PROACTIVE,
        status=SessionStatus.ACTIVE,
        started_at=T0,
        transcript=transcript,
        items=items,
    )


def assistant(*calls: ToolCall, text: str = "") -> LlmMessage:
    return LlmMessage(role="assistant", content=text, tool_calls=calls)


def result(call: ToolCall) -> LlmMessage:
    return LlmMessage(role="tool", content="2", tool_call_id=call.id, name=call.name)


def answered_item(call: ToolCall, turn: int = 0) -> SessionItem:
    action = widgets.client_action(call.id, call.name, call.arguments)
    return SessionItem(
        item_id=turn_item_id(turn, call.id),
        sequence=1,
        client_action=action,
        started_at=T0,
        user_response={"text": "because"},
        completed_at=T0,
    )


def step(s: Session) -> object:
    return next_llm_step(s, widgets.is_client_tool)


def test_an_empty_session_starts_with_an_llm_turn() -> None:
    assert step(session()) == CallLlm(iteration=0)


def test_unanswered_server_tools_run_before_anything_else() -> None:
    assert step(session(assistant(CALC, WIDGET))) == RunServerTool(CALC)


def test_a_client_tool_is_asked_once_the_server_tools_have_results() -> None:
    assert step(session(assistant(CALC, WIDGET), result(CALC))) == AskClient(WIDGET, "0/w1")


def test_a_pending_widget_means_waiting() -> None:
    waiting = session(assistant(WIDGET)).model_copy(
        update={"pending_action": ClientAction(tool_call_id="w1", tool_name="t", widget_type="w")}
    )
    assert step(waiting) == WaitForClient()


def test_an_answered_widget_without_its_tool_message_records_the_answer() -> None:
    item = answered_item(WIDGET)
    assert step(session(assistant(WIDGET), items=(item,))) == RecordAnswer(WIDGET, item)


def test_when_every_call_has_a_result_the_llm_takes_the_next_turn() -> None:
    history = session(assistant(CALC), result(CALC), assistant(WIDGET), result(WIDGET))
    assert step(history) == CallLlm(iteration=2)


def test_a_reply_without_tool_calls_ends_the_turn_unless_the_user_spoke_after() -> None:
    final = assistant(text="Done.")
    assert step(session(final)) == TurnEnded(final)
    assert step(session(final, LlmMessage(role="user", content="one more?"))) == CallLlm(1)


def test_a_call_id_the_provider_reuses_in_a_later_turn_is_a_new_widget() -> None:
    # Given a first widget answered under call id w1
    first = assistant(WIDGET)
    answered = session(first, result(WIDGET), items=(answered_item(WIDGET, turn=0),))
    # When a later turn calls a widget with the same id
    later = answered.model_copy(update={"transcript": (*answered.transcript, assistant(WIDGET))})
    # Then it is asked, not answered with the first one's answer
    assert step(later) == AskClient(WIDGET, turn_item_id(2, "w1"))


def test_tool_calls_sharing_an_id_in_one_turn_get_one_id_each() -> None:
    twice = assistant(CALC, CALC.model_copy(update={"name": "other"}), CALC)
    assert [c.id for c in with_unique_call_ids(twice).tool_calls] == ["c1", "c1~2", "c1~3"]
    once = assistant(CALC, WIDGET)
    assert with_unique_call_ids(once) is once
