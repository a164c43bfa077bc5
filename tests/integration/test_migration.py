"""Legacy sessions -> agents: generate realistic legacy streams, migrate, validate.

Every test runs the real scripts on a real SQLite store in tmp_path: in-process through their
``main`` where that is enough, in a subprocess where the test kills the run half-way.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from application import use_cases
from application.bootstrap import HostConfig, build_application
from domain.enums import SessionStatus, SessionType
from domain.ids import agent_id_for
from eventstore.factory import open_event_store
from eventstore.port import EventStore, NewEvent
from execution.executor import Outcome
from execution.llm.settings import LlmSettings
from scripts import generate_legacy_sessions, migrate_sessions, validate_migration
from scripts.legacy.model import (
    ITEM_COMPLETED,
    PENDING_CLEARED,
    LegacyDataError,
    LegacySession,
    read_session,
)
from scripts.legacy.plan import plan_user
from tests.postgres_support import POSTGRES_URL, drop_schema, require_postgres
from tests.support.fake_llm_server import (
    FakeLlmServer,
    ScriptedCall,
    ToolCallReply,
    running_fake_llm,
)

REPO = Path(__file__).resolve().parents[2]
SESSIONS = 300
MALFORMED = 4


async def _read_all(url: str) -> list[tuple[str, str, str, dict[str, object]]]:
    store = await open_event_store(url)
    try:
        return [(str(e.id), e.stream, e.type, dict(e.data)) for e in await store.read_all(0, 10**6)]
    finally:
        await store.close()


async def _last_position(url: str) -> int:
    store = await open_event_store(url)
    try:
        return await store.last_position()
    finally:
        await store.close()


def generate(url: str, sessions: int = SESSIONS, malformed: int = MALFORMED, seed: int = 7) -> None:
    asyncio.run(
        generate_legacy_sessions.main(
            [
                "--url",
                url,
                "--sessions",
                str(sessions),
                "--malformed",
                str(malformed),
                "--seed",
                str(seed),
            ]
        )
    )


def migrate(url: str, *extra: str) -> dict[str, Any]:
    """Run the migration in-process and return its JSON summary."""
    lines: list[str] = []
    code = _capture(lambda: migrate_sessions.main(["--url", url, "--json", *extra]), lines)
    summary: dict[str, Any] = json.loads(lines[-1])
    summary["exit_code"] = code
    return summary


def _capture(call: Callable[[], int], lines: list[str]) -> int:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = call()
    lines.extend(buffer.getvalue().splitlines())
    return int(code)


def validate(url: str) -> tuple[int, str]:
    lines: list[str] = []
    code = _capture(lambda: validate_migration.main(["--url", url]), lines)
    return code, "\n".join(lines)


@pytest.fixture
def legacy_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    generate(url)
    return url


def test_generator_is_deterministic_and_covers_every_type_and_status(tmp_path: Path) -> None:
    first, second = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    generate(first)
    generate(second)
    events = asyncio.run(_read_all(first))
    assert events == asyncio.run(_read_all(second))
    generate(first)  # the same seed again: every stream is an idempotent re-append
    assert asyncio.run(_read_all(first)) == events

    assert len({stream for _, stream, _, _ in events}) == SESSIONS + MALFORMED
    parsed = asyncio.run(legacy_sessions(first))
    assert len(parsed) == SESSIONS
    assert {s.session_type for s in parsed} == set(SessionType)
    assert {s.status for s in parsed} == set(SessionStatus)
    assert len({s.user_id for s in parsed}) >= 30
    tools = {i.client_action["tool_name"] for s in parsed for i in s.items}
    assert tools == {"present_choices", "request_free_text", "present_code_editor"}
    assert any(i.evaluation for s in parsed for i in s.items)
    assert any(s.rejected_responses for s in parsed)
    expired_paused = [
        s
        for s in parsed
        if s.status is SessionStatus.EXPIRED and s.items and s.items[-1].completed_at is None
    ]
    assert expired_paused


def test_migrate_then_validate_and_a_second_run_appends_nothing(legacy_url: str) -> None:
    first = migrate(legacy_url)
    assert first["exit_code"] == 0
    assert first["sessions_seen"] == SESSIONS + MALFORMED
    assert first["sessions_migrated"] == SESSIONS
    assert first["sessions_skipped"] == MALFORMED
    assert first["events_appended"] == first["events_planned"] > 0
    code, report = validate(legacy_url)
    assert code == 0, report
    assert f"{SESSIONS} sessions checked; 0 mismatches" in report

    position = asyncio.run(_last_position(legacy_url))
    second = migrate(legacy_url)
    assert second["events_appended"] == 0
    assert set(second["agents"]) == {"up_to_date"}
    assert asyncio.run(_last_position(legacy_url)) == position


def test_malformed_streams_are_counted_reported_and_skipped(legacy_url: str) -> None:
    summary = migrate(legacy_url)
    reasons = [p["reason"] for p in summary["problems"]]
    assert len(reasons) == MALFORMED
    assert any("unknown event type" in r for r in reasons)
    assert any("lacks a user_id" in r for r in reasons)
    assert any("no session.created.v1" in r for r in reasons)
    assert any("lacks ['item_id']" in r for r in reasons)
    code, report = validate(legacy_url)
    assert code == 0
    assert report.count("  skipped  ") == MALFORMED


def test_sessions_past_the_history_bound_are_reported_and_kept_in_the_log(
    legacy_url: str,
) -> None:
    plain: list[str] = []
    args = ["--url", legacy_url, "--max-history-size", "2", "--dry-run"]
    _capture(lambda: migrate_sessions.main(args), plain)
    listed = [line for line in plain if line.startswith("  past the history bound of agent")]
    summary = migrate(legacy_url, "--max-history-size", "2")
    dropped = summary["dropped_sessions"]
    assert summary["dropped_from_history"] == sum(len(ids) for ids in dropped.values()) > 0
    assert len(listed) == len(dropped)
    code, report = validate(legacy_url)  # checks the state holds the newest 2, the log all
    assert code == 0, report


@pytest.mark.postgres
def test_migrate_and_validate_on_postgres() -> None:
    require_postgres()
    schema = f"mig_{uuid.uuid4().hex[:10]}"
    url = f"{POSTGRES_URL}?schema={schema}"
    try:
        generate(url, sessions=200, malformed=2)
        first = migrate(url)
        assert first["sessions_migrated"] == 200
        assert first["sessions_skipped"] == 2
        code, report = validate(url)
        assert code == 0, report
        position = asyncio.run(_last_position(url))
        assert migrate(url)["events_appended"] == 0
        assert asyncio.run(_last_position(url)) == position
    finally:
        asyncio.run(drop_schema(schema))


def test_dry_run_writes_nothing(legacy_url: str, tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    lines: list[str] = []
    code = _capture(lambda: migrate_sessions.main(["--url", legacy_url, "--dry-run"]), lines)
    assert code == 0
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    assert "plan (agent, user, type, sessions, events to append, dropped from history):" in lines
    summary = next(line for line in lines if line.startswith("DRY RUN:"))
    assert f"{SESSIONS} migrated, {MALFORMED} skipped" in summary
    assert validate(legacy_url)[0] == 1  # nothing was migrated


def test_a_partial_run_fails_validation_and_a_rerun_completes_it(legacy_url: str) -> None:
    partial = migrate(legacy_url, "--only-users", "10")
    assert partial["users"] == 10
    code, report = validate(legacy_url)
    assert code == 1
    assert "MISMATCH" in report
    assert "missing" in report

    rest = migrate(legacy_url)
    assert rest["agents"]["up_to_date"] > 0
    assert rest["agents"]["created"] > 0
    code, report = validate(legacy_url)
    assert code == 0, report


def test_an_agent_written_half_way_is_resumed(legacy_url: str) -> None:
    """A crash between batches cannot split one agent (one append each), but a stream holding
    a prefix of the plan, however it got there, is completed, not duplicated."""

    async def write_prefix() -> str:
        store = await open_event_store(legacy_url)
        try:
            inventory = await migrate_sessions.scan(store)
            user, streams = next(iter(inventory.users.items()))
            sessions = [read_session(s, await store.read(s)) for s in streams]
            agent = max(plan_user(user, sessions).agents, key=lambda a: len(a.events))
            await store.append(agent.stream, agent.events[: len(agent.events) // 2], 0)
            return agent.agent_id
        finally:
            await store.close()

    agent_id = asyncio.run(write_prefix())
    summary = migrate(legacy_url)
    assert summary["agents"]["resumed"] == 1
    code, report = validate(legacy_url)
    assert code == 0, report
    assert agent_id not in report


def test_a_killed_run_completes_on_the_next_run(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    generate(url, sessions=1200, malformed=0)
    base = asyncio.run(_last_position(url))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scripts.migrate_sessions",
            "--url",
            url,
            "--json",
            "--concurrency",
            "1",
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while asyncio.run(_last_position(url)) < base + 500:
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert validate(url)[0] == 1  # half-way: some agents are missing

    summary = migrate(url)
    assert summary["agents"].get("up_to_date", 0) > 0
    code, report = validate(url)
    assert code == 0, report


def test_legacy_data_changed_after_the_migration_is_flagged_not_merged(legacy_url: str) -> None:
    migrate(legacy_url)
    agent_id, call_id, tool, props = asyncio.run(_paused_agent(legacy_url))

    async def answer_in_the_legacy_system() -> None:
        store = await open_event_store(legacy_url)
        try:
            session = next(
                s
                for s in await legacy_sessions(legacy_url)
                if s.pending_action and s.pending_action["tool_call_id"] == call_id
            )
            at = datetime.now(UTC).isoformat()
            item = session.items[-1].item_id
            data = {"aggregate_id": session.session_id}
            events = [
                NewEvent(
                    PENDING_CLEARED,
                    {**data, "tool_call_id": call_id, "cleared_at": at},
                    session.session_id,
                ),
                NewEvent(
                    ITEM_COMPLETED,
                    {
                        **data,
                        "item_id": item,
                        "completed_at": at,
                        "user_response": ANSWERS[tool](props),
                    },
                    session.session_id,
                ),
            ]
            await store.append(session.stream, events, len(session.event_ids))
        finally:
            await store.close()

    asyncio.run(answer_in_the_legacy_system())
    code, report = validate(legacy_url)
    assert code == 1
    assert agent_id in report
    position = asyncio.run(_last_position(legacy_url))
    rerun = migrate(legacy_url)
    assert rerun["exit_code"] == 1
    assert rerun["agents"]["conflict"] == 1
    assert agent_id in rerun["conflicts"][0]
    assert asyncio.run(_last_position(legacy_url)) == position


@pytest.fixture
async def llm_server() -> AsyncIterator[FakeLlmServer]:
    async with running_fake_llm() as server:
        yield server


async def legacy_sessions(url: str) -> list[LegacySession]:
    """Every readable legacy session in the store."""
    store: EventStore = await open_event_store(url)
    try:
        inventory = await migrate_sessions.scan(store)
        found = []
        for stream in (s for streams in inventory.users.values() for s in streams):
            with contextlib.suppress(LegacyDataError):
                found.append(read_session(stream, await store.read(stream)))
        return found
    finally:
        await store.close()


async def _paused_agent(url: str) -> tuple[str, str, str, dict[str, Any]]:
    """A migrated agent whose active session waits on a widget: (agent, tool call, tool, props)."""
    for session in await legacy_sessions(url):
        pending = session.pending_action
        if session.status is SessionStatus.AWAITING_CLIENT_ACTION and pending is not None:
            agent_id = agent_id_for(session.user_id, session.agent_type)
            return agent_id, pending["tool_call_id"], pending["tool_name"], dict(pending["props"])
    raise AssertionError("no paused session generated")


ANSWERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "present_choices": lambda props: {"selection": props["options"][0]},
    "request_free_text": lambda props: {"text": "a migrated answer"},
    "present_code_editor": lambda props: {"code": "print('hi')"},
}


async def test_a_migrated_paused_session_is_answered_and_continues(
    tmp_path: Path, llm_server: FakeLlmServer
) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    await asyncio.to_thread(generate, url, 60, 0)
    await asyncio.to_thread(migrate, url)
    agent_id, call_id, tool, props = await _paused_agent(url)
    app = build_application(
        HostConfig(
            event_store_url=url,
            llm=LlmSettings(base_url=llm_server.base_url, model="scripted", max_attempts=1),
        )
    )
    try:
        before = await app.agent_state(agent_id)
        assert before is not None
        assert before.active_session is not None
        assert before.execution_state is not None
        assert before.execution_state.pending_tool_call is not None
        assert before.execution_state.pending_tool_call.call_id == call_id
        answer = ANSWERS[tool](props)
        recorded = await app.handle(
            use_cases.AnswerWidget(
                agent_id=agent_id, tool_call_id=call_id, response=answer, then_drive=False
            )
        )
        result = recorded.result
        assert "agent.client.response.received.v1" in result.event_types
        assert "agent.execution.resumed.v1" in result.event_types

        next_widget = {"prompt": "And next?", "options": ["yes", "no"]}
        llm_server.script(
            ToolCallReply([ScriptedCall.split("after-1", "present_choices", next_widget)])
        )
        assert await app.drive(agent_id) is Outcome.WAITING_FOR_USER
        after = await app.agent_state(agent_id)
        assert after is not None
        assert after.active_session is not None
        session = after.active_session
        assert session.session_id == before.active_session.session_id
        answered = next(
            i for i in session.items if i.item_id == before.active_session.items[-1].item_id
        )
        assert isinstance(answered.user_response, dict)
        assert answer.items() <= answered.user_response.items()  # normalised, e.g. + index
        assert session.pending_action is not None
        assert session.pending_action.tool_call_id == "after-1"
    finally:
        await app.close()
    counts = Counter(t for _, _, t, _ in await _read_all(url))
    assert counts["agent.client.response.received.v1"] > 0
