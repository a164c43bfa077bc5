"""The single-writer activation, without Ray: persist-before-ack, exactly-once, the fence."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from application.activation import AgentActivation
from application.agent_repository import REQUEST_DIGEST, SNAPSHOT_SCHEMA, AgentRepository
from application.errors import IdempotencyKeyReused
from domain.agent import Agent
from domain.commands import (
    CompleteSession,
    GetOrCreateAgent,
    RecordMessages,
    StartSession,
    SubmitResponse,
    SuspendExecution,
    UpdatePreferences,
)
from domain.enums import AgentType
from domain.errors import AgentNotFound, SessionAlreadyActive
from domain.execution_state import ExecutionState, LlmMessage, PendingToolCall
from domain.ids import agent_id_for, stream_name
from domain.session import ClientAction, ClientResponse
from eventstore.codec import from_envelope
from eventstore.port import (
    AppendResult,
    EventStore,
    ExpectedVersion,
    NewEvent,
    StoreUnavailable,
    WrongExpectedVersion,
)
from eventstore.sqlite import SQLiteEventStore

AGENT = agent_id_for("user-1", AgentType.TUTOR)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteEventStore]:
    opened = await SQLiteEventStore.open(tmp_path / "events.db")
    yield opened
    await opened.close()


def activation(store: EventStore, snapshot_every: int = 100) -> AgentActivation:
    return AgentActivation(AGENT, AgentRepository(store), snapshot_every=snapshot_every)


def create() -> GetOrCreateAgent:
    return GetOrCreateAgent.for_user("user-1", AgentType.TUTOR)


def message(text: str) -> RecordMessages:
    return RecordMessages(agent_id=AGENT, messages=(LlmMessage(role="assistant", content=text),))


async def replayed(store: EventStore) -> Agent:
    return Agent.replay(from_envelope(r) for r in await store.read(stream_name(AGENT)))


async def test_commands_persist_before_they_are_acknowledged(store: SQLiteEventStore) -> None:
    host = activation(store)
    created = await host.execute(create())
    assert created.version == 1
    assert created.event_types == ("agent.created.v1",)
    started = await host.execute(StartSession(agent_id=AGENT))
    assert started.version == 2
    assert started.session is not None
    stored = await store.read(stream_name(AGENT))
    assert [r.type for r in stored] == ["agent.created.v1", "agent.session.started.v1"]
    assert (await replayed(store)).state == await host.state()


async def test_get_or_create_is_idempotent_across_command_ids(store: SQLiteEventStore) -> None:
    host = activation(store)
    await host.execute(create())
    again = await host.execute(create())
    assert again.event_types == ()
    assert again.version == 1
    assert len(await store.read(stream_name(AGENT))) == 1


async def test_a_retried_command_is_answered_without_acting_twice(store: SQLiteEventStore) -> None:
    host = activation(store)
    await host.execute(create())
    start = StartSession(agent_id=AGENT)
    first = await host.execute(start)
    # A new activation (a restarted host) receives the same command again.
    retried = await activation(store).execute(start)
    assert retried.duplicate
    assert retried.version == first.version
    assert retried.session == first.session
    assert [r.type for r in await store.read(stream_name(AGENT))].count(
        "agent.session.started.v1"
    ) == 1


async def test_a_retried_command_is_answered_with_the_position_of_the_original(
    store: SQLiteEventStore,
) -> None:
    """Callers wait for the read side to reach ``position``: a retry must name the same one."""
    host = activation(store)
    await host.execute(create())
    start = StartSession(agent_id=AGENT)
    first = await host.execute(start)
    await host.execute(message("later"))  # the log moves on past the original
    stored = await store.read(stream_name(AGENT))
    assert first.position == stored[1].position > 0

    same_host = await host.execute(start)  # recognised by the activation's window
    restarted = await activation(store).execute(start)  # window rebuilt from the stream
    for retried in (same_host, restarted):
        assert retried.duplicate
        assert (retried.version, retried.position) == (first.version, first.position)


async def test_a_retry_recognised_only_by_the_store_gets_the_original_position(
    store: SQLiteEventStore,
) -> None:
    host = activation(store)
    await host.execute(create())
    overlapping = activation(store)  # a failover overlap: another host's activation...
    await overlapping.state()  # ...loaded before the command, so its window cannot know it
    start = StartSession(agent_id=AGENT)
    first = await host.execute(start)
    # It decides again and appends the same event ids: the store's idempotent re-append.
    retried = await overlapping.execute(start)
    assert (retried.version, retried.position) == (first.version, first.position)
    assert len(await store.read(stream_name(AGENT))) == 2


async def test_a_retry_the_store_recognises_further_back_is_a_duplicate_and_reloads(
    store: SQLiteEventStore,
) -> None:
    host = activation(store)
    await host.execute(create())
    overlapping = activation(store)
    await overlapping.state()  # at version 1
    await host.execute(UpdatePreferences(agent_id=AGENT, changes={"language": "fr"}))
    start = StartSession(agent_id=AGENT)
    first = await host.execute(start)  # version 3
    retried = await overlapping.execute(start)  # decided at version 1, stored at 3
    assert retried.duplicate
    assert (retried.version, retried.position) == (first.version, first.position)
    # What it had decided in memory was dropped: it serves the stored state, not its own.
    assert await overlapping.state() == await activation(store).state()
    assert (await overlapping.state()).preferences["language"] == "fr"  # type: ignore[union-attr]


async def test_a_command_that_emits_nothing_has_no_position(store: SQLiteEventStore) -> None:
    host = activation(store)
    created = await host.execute(create())
    assert created.position == (await store.read(stream_name(AGENT)))[0].position
    again = await host.execute(create())  # get-or-create of an existing agent: no event
    assert (again.version, again.position, again.duplicate) == (1, 0, False)


async def test_retry_is_recognised_after_a_snapshot(store: SQLiteEventStore) -> None:
    host = activation(store, snapshot_every=2)
    await host.execute(create())
    command = message("hello")
    await host.execute(StartSession(agent_id=AGENT))
    await host.execute(command)  # version 3: a snapshot was taken at 2
    snapshot = await store.load_snapshot(stream_name(AGENT))
    assert snapshot is not None
    assert snapshot.version == 2
    await host.execute(message("more"))  # version 4: snapshot at 4
    snapshot = await store.load_snapshot(stream_name(AGENT))
    assert snapshot is not None
    assert snapshot.version == 4
    retried = await activation(store, snapshot_every=2).execute(command)
    assert retried.duplicate
    assert retried.version == 3
    assert retried.position == (await store.read(stream_name(AGENT)))[2].position


async def test_commands_for_a_missing_agent_are_refused(store: SQLiteEventStore) -> None:
    with pytest.raises(AgentNotFound):
        await activation(store).execute(StartSession(agent_id=AGENT))
    assert await store.read(stream_name(AGENT)) == []


async def test_a_refusal_writes_nothing(store: SQLiteEventStore) -> None:
    host = activation(store)
    await host.execute(create())
    await host.execute(StartSession(agent_id=AGENT))
    with pytest.raises(SessionAlreadyActive):
        await host.execute(StartSession(agent_id=AGENT))
    assert len(await store.read(stream_name(AGENT))) == 2


class FailingStore(SQLiteEventStore):
    """Appends fail while ``down`` is set, as a lost database connection would."""

    down = False

    async def append(
        self, stream: str, events: Sequence[NewEvent], expected_version: ExpectedVersion
    ) -> AppendResult:
        if self.down:
            raise StoreUnavailable("database is down")
        return await super().append(stream, events, expected_version)


async def test_a_failed_append_leaves_nothing_in_memory(tmp_path: Path) -> None:
    store = await FailingStore.open(tmp_path / "events.db")
    try:
        host = activation(store)
        await host.execute(create())
        store.down = True
        with pytest.raises(StoreUnavailable):
            await host.execute(StartSession(agent_id=AGENT))
        store.down = False
        state = await host.state()
        assert state is not None
        assert state.active_session is None  # the unpersisted session is gone
        assert (await replayed(store)).state == state
        # and the same command can now go through
        assert (await host.execute(StartSession(agent_id=AGENT))).version == 2
    finally:
        await store.close()


async def test_commands_for_one_agent_run_one_at_a_time(store: SQLiteEventStore) -> None:
    host = activation(store)
    await host.execute(create())
    await host.execute(StartSession(agent_id=AGENT))
    commands = [message(f"m{n}") for n in range(200)]
    results = await asyncio.gather(*(host.execute(c) for c in commands))
    assert sorted(r.version for r in results) == list(range(3, 203))
    stored = await store.read(stream_name(AGENT))
    assert [r.version for r in stored] == list(range(1, 203))
    texts = [m.content for m in (await replayed(store)).state.active_session.transcript]  # type: ignore[union-attr]
    assert sorted(texts) == sorted(f"m{n}" for n in range(200))


async def test_two_activations_of_one_agent_never_both_commit(tmp_path: Path) -> None:
    """A failover overlap: two processes host the same agent; the version check is the fence."""
    first_store = await SQLiteEventStore.open(tmp_path / "events.db")
    second_store = await SQLiteEventStore.open(tmp_path / "events.db")
    try:
        one, other = activation(first_store), activation(second_store)
        await one.execute(create())
        await one.execute(StartSession(agent_id=AGENT))
        await other.state()  # both now cache version 2
        commands = [message(f"m{n}") for n in range(60)]
        outcomes = await asyncio.gather(
            *((one if n % 2 else other).execute(command) for n, command in enumerate(commands)),
            return_exceptions=True,
        )
        acknowledged = {
            f"m{n}" for n, outcome in enumerate(outcomes) if not isinstance(outcome, BaseException)
        }
        refused = [o for o in outcomes if isinstance(o, BaseException)]
        assert all(isinstance(error, WrongExpectedVersion) for error in refused)
        assert len(acknowledged) >= 50  # losers reload and retry; few run out of attempts
        agent = await replayed(first_store)
        assert agent.version == 2 + len(acknowledged)  # nothing refused was written
        transcript = agent.state.active_session.transcript  # type: ignore[union-attr]
        assert sorted(m.content for m in transcript) == sorted(acknowledged)
    finally:
        await first_store.close()
        await second_store.close()


async def test_suspend_and_resume_survive_a_new_activation(store: SQLiteEventStore) -> None:
    host = activation(store)
    await host.execute(create())
    await host.execute(StartSession(agent_id=AGENT))
    call = f"call-{uuid4().hex[:6]}"
    widget = ClientAction(tool_call_id=call, tool_name="request_free_text", widget_type="free_text")
    execution = ExecutionState(
        pending_tool_call=PendingToolCall(call_id=call, tool_name="request_free_text")
    )
    await host.execute(SuspendExecution(agent_id=AGENT, execution_state=execution, action=widget))
    restarted = activation(store)
    answer = SubmitResponse(
        agent_id=AGENT, response=ClientResponse(tool_call_id=call, response={"text": "hi"})
    )
    answered = await restarted.execute(answer)
    assert answered.event_types == (
        "agent.client.response.received.v1",
        "agent.execution.resumed.v1",
    )
    done = await restarted.execute(CompleteSession(agent_id=AGENT, summary={"score": 1}))
    assert done.session is not None
    assert done.session.summary == {"score": 1}
    assert (await restarted.state()).successful_completions == 1  # type: ignore[union-attr]


async def test_a_fresh_host_creates_one_activation_per_agent(tmp_path: Path) -> None:
    """Concurrent first commands must share one activation (one writer per agent)."""
    from application.bootstrap import HostConfig, build_application

    app = build_application(HostConfig(event_store_url=f"sqlite:///{tmp_path / 'events.db'}"))
    try:
        await app.execute(create())
        await app.execute(StartSession(agent_id=AGENT))
        app.passivate_idle(0.0)
        fresh = build_application(HostConfig(event_store_url=f"sqlite:///{tmp_path / 'events.db'}"))
        results = await asyncio.gather(*(fresh.execute(message(f"m{n}")) for n in range(50)))
        assert sorted(r.version for r in results) == list(range(3, 53))
        assert fresh.agent_ids() == (AGENT,)
        await fresh.close()
    finally:
        await app.close()


async def test_results_leave_the_growing_transcript_out(store: SQLiteEventStore) -> None:
    host = activation(store)
    await host.execute(create())
    await host.execute(StartSession(agent_id=AGENT))
    for n in range(3):
        result = await host.execute(message(f"m{n}"))
    assert result.session is not None
    assert result.session.transcript == ()  # a result's size does not grow with the talk
    state = await host.state()
    assert state is not None
    assert state.active_session is not None
    assert len(state.active_session.transcript) == 3


# ---------------------------------------------------------------------- request fingerprints

FIRST, SECOND = "a" * 32, "b" * 32


def fingerprinted(
    fingerprint: str | None, command_id: UUID, language: str = "fr"
) -> UpdatePreferences:
    return UpdatePreferences(
        agent_id=AGENT,
        command_id=command_id,
        changes={"language": language},
        request_fingerprint=fingerprint,
    )


async def test_a_commands_first_event_carries_its_request_fingerprint(
    store: SQLiteEventStore,
) -> None:
    host = activation(store)
    await host.execute(create())
    started = StartSession(agent_id=AGENT, request_fingerprint=FIRST)
    await host.execute(started)
    await host.execute(message("no fingerprint"))
    stored = await store.read(stream_name(AGENT))
    assert [dict(r.extensions) for r in stored] == [{}, {REQUEST_DIGEST: FIRST}, {}]


async def test_a_command_id_sent_again_for_another_request_is_refused(
    store: SQLiteEventStore,
) -> None:
    host = activation(store)
    await host.execute(create())
    command_id = uuid4()
    first = await host.execute(fingerprinted(FIRST, command_id))
    retried = await host.execute(fingerprinted(FIRST, command_id))
    assert retried.duplicate
    assert (retried.version, retried.position) == (first.version, first.position)
    with pytest.raises(IdempotencyKeyReused):
        await host.execute(fingerprinted(SECOND, command_id, language="de"))
    assert len(await store.read(stream_name(AGENT))) == 2
    assert (await host.state()).preferences["language"] == "fr"  # type: ignore[union-attr]
    # One side without a fingerprint (a system retry, an older event) has nothing to compare.
    assert (await host.execute(fingerprinted(None, command_id, language="de"))).duplicate


async def test_the_fingerprint_survives_a_reload_from_the_stream(store: SQLiteEventStore) -> None:
    host = activation(store)
    await host.execute(create())
    command_id = uuid4()
    await host.execute(fingerprinted(FIRST, command_id))
    restarted = activation(store)  # the window rebuilt from the stream's events
    with pytest.raises(IdempotencyKeyReused):
        await restarted.execute(fingerprinted(SECOND, command_id, language="de"))
    assert (await restarted.execute(fingerprinted(FIRST, command_id))).duplicate
    assert len(await store.read(stream_name(AGENT))) == 2


async def test_the_fingerprint_survives_a_reload_from_a_snapshot(store: SQLiteEventStore) -> None:
    host = activation(store, snapshot_every=1)
    await host.execute(create())
    command_id = uuid4()
    await host.execute(fingerprinted(FIRST, command_id))  # version 2: snapshot at 2
    snapshot = await store.load_snapshot(stream_name(AGENT))
    assert snapshot is not None
    assert (snapshot.version, snapshot.schema) == (2, SNAPSHOT_SCHEMA)
    restarted = activation(store, snapshot_every=1)
    with pytest.raises(IdempotencyKeyReused):
        await restarted.execute(fingerprinted(SECOND, command_id, language="de"))
    assert (await restarted.execute(fingerprinted(FIRST, command_id))).duplicate
    assert len(await store.read(stream_name(AGENT))) == 2


async def test_a_retry_only_the_store_recognises_is_checked_against_its_fingerprint(
    store: SQLiteEventStore,
) -> None:
    host = activation(store)
    await host.execute(create())
    overlapping = activation(store)
    await overlapping.state()  # at version 1: its window cannot know what follows
    await host.execute(fingerprinted(None, uuid4(), language="en"))
    command_id = uuid4()
    await host.execute(fingerprinted(FIRST, command_id))  # version 3
    # Decided again at version 1, its events are found stored at 3, for another request.
    with pytest.raises(IdempotencyKeyReused):
        await overlapping.execute(fingerprinted(SECOND, command_id, language="fr"))
    assert len(await store.read(stream_name(AGENT))) == 3
    assert await overlapping.state() == await activation(store).state()


async def test_an_activation_whose_step_another_stored_first_answers_from_the_store(
    tmp_path: Path,
) -> None:
    """Two activations run the same executor step (same command id, so the same event ids)
    with different LLM output: the store keeps the first and recognises the second as a
    replay. The loser must answer from what is stored, keep nothing of its own decision in
    memory, and never snapshot it."""
    # Given two activations of one agent on one log, both at the same version
    first_store = await SQLiteEventStore.open(tmp_path / "events.db")
    second_store = await SQLiteEventStore.open(tmp_path / "events.db")
    try:
        winner, loser = activation(first_store), activation(second_store, snapshot_every=1)
        await winner.execute(create())
        await winner.execute(StartSession(agent_id=AGENT))
        await loser.state()
        step = uuid4()

        # When each runs the same step, deciding it differently
        stored = await winner.execute(
            message("what was stored").model_copy(update={"command_id": step})
        )
        answer = await loser.execute(
            message("never stored").model_copy(update={"command_id": step})
        )

        # Then the loser answers as a duplicate of what is stored
        assert answer.duplicate
        assert (answer.version, answer.position) == (stored.version, stored.position)
        # and its memory is the store's, not its own decision
        in_memory = await loser.state()
        assert in_memory == (await replayed(first_store)).state
        transcript = in_memory.active_session.transcript  # type: ignore[union-attr]
        assert [m.content for m in transcript] == ["what was stored"]
        # and it snapshotted nothing of the decision it never stored
        snapshot = await second_store.load_snapshot(stream_name(AGENT))
        assert snapshot is None or "never stored" not in str(snapshot.state)
    finally:
        await first_store.close()
        await second_store.close()
