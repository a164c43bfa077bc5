"""What an LLM session needs next, decided from its durable transcript alone.

The executor keeps nothing between steps: after a crash anywhere (mid LLM call, mid tool call,
between the user's answer and its tool message) the next step is read off the transcript and
the session's items, so any process continues exactly where the stored history stops.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from domain.execution_state import LlmMessage, ToolCall
from domain.session import Session, SessionItem


@dataclass(frozen=True)
class WaitForClient:
    """A widget is on screen: nothing to do until the user answers."""


@dataclass(frozen=True)
class CallLlm:
    iteration: int
    """How many assistant turns the session has had (the next one is ``iteration + 1``)."""


@dataclass(frozen=True)
class RunServerTool:
    call: ToolCall


@dataclass(frozen=True)
class AskClient:
    call: ToolCall
    """A client tool the LLM called: show its widget and suspend."""
    item_id: str
    """The session item its answer goes in: the call's id scoped to its turn
    (``turn_item_id``), since providers reuse ids across turns."""


@dataclass(frozen=True)
class RecordAnswer:
    call: ToolCall
    item: SessionItem
    """The user answered the widget: its answer becomes the tool result."""


@dataclass(frozen=True)
class TurnEnded:
    """The LLM answered without calling a tool."""

    message: LlmMessage


LlmStep = WaitForClient | CallLlm | RunServerTool | AskClient | RecordAnswer | TurnEnded


def next_llm_step(session: Session, is_client_tool: Callable[[str], bool]) -> LlmStep:
    """``is_client_tool`` tells widgets (shown in the browser) from server tools."""
    if session.pending_action is not None:
        return WaitForClient()
    transcript = session.transcript
    iteration = assistant_turns(transcript)
    last_assistant = _last_assistant_index(transcript)
    if last_assistant is None:
        return CallLlm(iteration)
    assistant = transcript[last_assistant]
    answered = {m.tool_call_id for m in transcript[last_assistant + 1 :] if m.role == "tool"}
    for call in assistant.tool_calls:
        if call.id in answered:
            continue
        if not is_client_tool(call.name):
            return RunServerTool(call)
        item_id = turn_item_id(last_assistant, call.id)
        item = _answered_item(session.items, item_id)
        return RecordAnswer(call, item) if item is not None else AskClient(call, item_id)
    if not assistant.tool_calls and last_assistant == len(transcript) - 1:
        return TurnEnded(assistant)
    return CallLlm(iteration)


def turn_item_id(turn: int, call_id: str) -> str:
    """A widget's item id: its call id within the assistant turn at transcript index ``turn``.

    Tool-call ids are the provider's, unique within one response at best: a server that
    answers every turn with ``call_0`` would otherwise find the first widget's answer for
    every later one.
    """
    return f"{turn}/{call_id}"


def with_unique_call_ids(message: LlmMessage) -> LlmMessage:
    """The assistant turn with one id per tool call: a repeated id gets a ``~n`` suffix, so
    each call gets its own tool message (the model sees the ids the turn is stored with)."""
    seen: dict[str, int] = {}
    calls = []
    for call in message.tool_calls:
        count = seen[call.id] = seen.get(call.id, 0) + 1
        calls.append(call if count == 1 else call.model_copy(update={"id": f"{call.id}~{count}"}))
    return (
        message.model_copy(update={"tool_calls": tuple(calls)})
        if len(seen) < len(calls)
        else message
    )


def assistant_turns(transcript: Sequence[LlmMessage]) -> int:
    return sum(1 for message in transcript if message.role == "assistant")


def answer_message(call: ToolCall, item: SessionItem) -> LlmMessage:
    """The tool message that hands the user's answer (and its evaluation) back to the LLM."""
    content: dict[str, Any] = {"response": item.user_response}
    if item.evaluation is not None:
        content["evaluation"] = item.evaluation
    return tool_message(call, json.dumps(content, ensure_ascii=False))


def tool_message(call: ToolCall, content: str) -> LlmMessage:
    return LlmMessage(role="tool", content=content, tool_call_id=call.id, name=call.name)


def _last_assistant_index(transcript: Sequence[LlmMessage]) -> int | None:
    for index in range(len(transcript) - 1, -1, -1):
        if transcript[index].role == "assistant":
            return index
    return None


def _answered_item(items: Sequence[SessionItem], item_id: str) -> SessionItem | None:
    for item in items:
        if item.item_id == item_id and item.completed_at is not None:
            return item
    return None
