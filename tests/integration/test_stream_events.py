"""The SSE event source in process: durable events carry their positions, token deltas
interleave while the executor drives, and the stream ends with the session."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from application import use_cases
from application.bootstrap import HostConfig, build_application
from domain.commands import GetOrCreateAgent
from domain.enums import AgentType
from domain.ids import stream_name
from eventstore.factory import open_event_store
from execution.llm.settings import LlmSettings
from serve_app.settings import ApiSettings
from serve_app.streams import agent_events
from tests.support.fake_llm_server import (
    FakeLlmServer,
    ScriptedCall,
    TextReply,
    ToolCallReply,
    running_fake_llm,
)

CHOICE = {"prompt": "6 x 7?", "options": ["41", "42"]}


@pytest.fixture
async def llm_server() -> AsyncIterator[FakeLlmServer]:
    async with running_fake_llm() as server:
        yield server


async def test_deltas_interleave_with_positioned_events_until_the_session_ends(
    llm_server: FakeLlmServer, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    app = build_application(
        HostConfig(event_store_url=url, llm=LlmSettings(base_url=llm_server.base_url, model="m"))
    )
    store = await open_event_store(url)  # the replica's own connection to the same log
    try:
        agent_id = (await app.handle(GetOrCreateAgent.for_user("s", AgentType.TUTOR))).agent_id
        start = use_cases.StartSession(agent_id=agent_id, then_drive=False)
        started = (await app.handle(start)).result
        assert started.session is not None
        services = SimpleNamespace(
            event_store=store,
            runtime=app,  # the stream's runtime calls (``handle``), without the Ray hop
            api=ApiSettings(sse_poll_interval_s=0.01),
        )
        received: list[tuple[str | None, str | None]] = []

        async def watch() -> None:
            session_id = started.session.session_id if started.session else None
            events = agent_events(services, agent_id, 0, session_id, viewer="s", since=0)  # type: ignore[arg-type]
            async for event in events:
                received.append((event.id, event.event))

        watching = asyncio.create_task(watch())
        await asyncio.sleep(0.1)  # connected: what streams from now on is live
        llm_server.script(
            ToolCallReply(
                [ScriptedCall.split("w1", "present_choices", CHOICE)], content=["Let's ", "go"]
            )
        )
        await app.handle(use_cases.DriveSession(agent_id=agent_id))
        await app.handle(
            use_cases.AnswerWidget(
                agent_id=agent_id, tool_call_id="w1", response={"index": 1}, then_drive=False
            )
        )
        llm_server.script(TextReply(["Well ", "done"]), TextReply(["summary"]))
        await app.handle(use_cases.DriveSession(agent_id=agent_id))
        await asyncio.wait_for(watching, 5)  # it ended by itself with the session

        stored = await store.read(stream_name(agent_id))
        durable = [(i, name) for i, name in received if i is not None]
        assert durable == [(str(r.position), r.type) for r in stored]  # all, once, in order
        deltas = [name for i, name in received if i is None]
        assert deltas.count("content_chunk") >= 2
        first_delta = next(n for n, (i, _) in enumerate(received) if i is None)
        assert 0 < first_delta < len(received) - 1  # between durable events, not after them
        assert received[-1][1] == "agent.session.completed.v1"
    finally:
        await store.close()
        await app.close()
