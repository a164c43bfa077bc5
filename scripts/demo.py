"""`make run` until the HTTP API lands: one tutor session, durably, on the configured store.

Each run loads the demo user's tutor agent (creating it the first time), starts a session,
suspends on a multiple-choice widget, forgets everything in memory (as a crash would),
reloads the agent from its stream, answers the widget and completes the session. Run it twice:
the agent remembers its earlier sessions.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from uuid import uuid4

from rich.console import Console
from rich.table import Table

from actors.agent_repository import AgentRepository
from actors.settings import Settings
from domain.enums import AgentType
from domain.execution_state import ExecutionState, LlmMessage, PendingToolCall
from domain.ids import agent_id_for, stream_name
from domain.session import ClientAction, ClientResponse
from eventstore.factory import open_event_store

DEMO_USER = "demo-user"
QUESTION = {"prompt": "What is 7 x 6?", "options": ["36", "42", "48", "56"]}


def _now() -> datetime:
    return datetime.now(UTC)


async def run_demo(console: Console) -> None:
    settings = Settings()
    store = await open_event_store(settings.event_store_url)
    try:
        repository = AgentRepository(store)
        agent_id = agent_id_for(DEMO_USER, AgentType.TUTOR)
        agent = (await repository.load(agent_id)).agent
        if not agent.exists:
            agent.register(
                agent_id=agent_id, owner_user_id=DEMO_USER, agent_type=AgentType.TUTOR, now=_now()
            )
            await repository.save(agent)
        first_version = agent.version + 1

        session_id = str(uuid4())
        agent.start_session(session_id=session_id, conversation_id=str(uuid4()), now=_now())
        await repository.save(agent)

        call_id = f"call-{uuid4().hex[:8]}"
        execution = ExecutionState(
            conversation_snapshot=(
                LlmMessage(role="system", content="You are a patient arithmetic tutor."),
                LlmMessage(role="user", content="Quiz me on multiplication."),
            ),
            iteration=1,
            tool_calls_made=1,
            pending_tool_call=PendingToolCall(
                call_id=call_id, tool_name="present_choices", arguments=QUESTION
            ),
            started_at_ms=time.time() * 1000,
            suspended_at_ms=time.time() * 1000,
        )
        widget = ClientAction(
            tool_call_id=call_id,
            tool_name="present_choices",
            widget_type="multiple_choice",
            props=QUESTION,
        )
        agent.suspend_execution(execution, widget, now=_now())
        await repository.save(agent)
        console.print(f"[bold]suspended[/] on widget {call_id}: {QUESTION['prompt']}")

        del agent  # a crash here loses nothing: the stream has it all
        agent = (await repository.load(agent_id)).agent
        if not agent.is_suspended():
            raise RuntimeError("the suspension did not survive a reload")

        answer = ClientResponse(tool_call_id=call_id, response={"selection": "42", "index": 1})
        agent.resume_execution(answer, now=_now(), evaluation={"correct": True, "score": 1.0})
        await repository.save(agent)
        agent.complete_session(now=_now(), summary={"items": 1, "correct": 1, "score": 1.0})
        await repository.save(agent)

        table = Table(title=f"events of this run on {stream_name(agent_id)}")
        for column in ("version", "position", "type"):
            table.add_column(column)
        for recorded in await store.read(stream_name(agent_id), from_version=first_version):
            table.add_row(str(recorded.version), str(recorded.position), recorded.type)
        console.print(table)
        state = agent.state
        console.print(
            f"agent {agent_id}: {state.total_sessions} sessions, "
            f"{state.successful_completions} completed, {len(state.session_history)} in history "
            f"(store: {settings.event_store_url})"
        )
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(run_demo(Console()))
