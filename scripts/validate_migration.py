"""Check a session -> agent migration against the legacy streams it came from.

Reads the legacy data as the migration does (scripts/legacy/model.py) but judges the result by
replaying each agent's own stream, so a planner bug cannot hide behind itself. Checks: every
user with sessions has their agents; history counts match; active sessions and their pending
widgets (and the suspended execution) are preserved; every session's items and responses are
identical; nothing is duplicated. Exits 1 with a readable report on any mismatch.

    python -m scripts.validate_migration --url sqlite:///var/agenthost/events.db
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from domain.agent import Agent
from domain.enums import SessionStatus
from domain.events import AgentCreated, DomainEvent
from domain.ids import agent_id_for, stream_name
from domain.session import ClientAction, Session, SessionConfig, SessionItem
from eventstore.codec import from_envelope
from eventstore.factory import open_event_store
from eventstore.port import EventStore
from scripts.legacy.model import (
    LegacyDataError,
    LegacyItem,
    LegacySession,
    read_session,
    select_sessions,
)
from scripts.migrate_sessions import scan

UNBOUNDED_HISTORY = 10**9


@dataclass
class Report:
    users: int = 0
    agents: int = 0
    sessions: int = 0
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def fail(self, where: str, what: str) -> None:
        self.failures.append(f"{where}: {what}")


def _item_view(item: LegacyItem | SessionItem) -> dict[str, Any]:
    action = item.client_action
    return {
        "item_id": item.item_id,
        "sequence": item.sequence,
        "agent_prompt": item.agent_prompt,
        "client_action": action.to_dict()
        if isinstance(action, ClientAction)
        else ClientAction.model_validate(action).to_dict()
        if action is not None
        else None,
        "started_at": item.started_at,
        "user_response": item.user_response,
        "response_time_ms": item.response_time_ms,
        "evaluation": dict(item.evaluation) if item.evaluation is not None else None,
        "completed_at": item.completed_at,
    }


def compare_session(legacy: LegacySession, migrated: Session) -> list[str]:
    """Every difference between a legacy session and its migrated form, in words."""
    expected: dict[str, Any] = {
        "conversation_id": legacy.conversation_id,
        "session_type": legacy.session_type,
        "control_mode": legacy.control_mode,
        "system_prompt": legacy.system_prompt,
        "config": SessionConfig.model_validate(legacy.config),
        # an agent has no "pending" status: a created, unstarted session is simply active
        "status": SessionStatus.ACTIVE if legacy.status is SessionStatus.PENDING else legacy.status,
        "started_at": legacy.started_at or legacy.created_at,
        "ended_at": legacy.end.at if legacy.end else None,
        "end_reason": legacy.end.reason if legacy.end else None,
        "summary": dict(legacy.end.summary) if legacy.end and legacy.end.summary else None,
    }
    differences = [
        f"{name}: legacy {value!r} != migrated {getattr(migrated, name)!r}"
        for name, value in expected.items()
        if getattr(migrated, name) != value
    ]
    legacy_items = [_item_view(item) for item in legacy.items]
    migrated_items = [_item_view(item) for item in migrated.items]
    if len(legacy_items) != len(migrated_items):
        differences.append(f"{len(legacy_items)} legacy items, {len(migrated_items)} migrated")
    for old, new in zip(legacy_items, migrated_items, strict=False):
        changed = [key for key in old if old[key] != new[key]]
        if changed:
            differences.append(f"item {old['item_id']} differs in {changed}")
    return differences


def _unbounded(events: list[DomainEvent]) -> list[DomainEvent]:
    """The same stream with an unbounded history: every session ever migrated stays visible."""
    return [
        e.model_copy(update={"max_history_size": UNBOUNDED_HISTORY})
        if isinstance(e, AgentCreated)
        else e
        for e in events
    ]


async def check_user(
    store: EventStore, user_id: str, streams: Sequence[str], report: Report
) -> None:
    by_type: dict[Any, list[LegacySession]] = defaultdict(list)
    for stream in streams:
        try:
            session = read_session(stream, await store.read(stream))
        except LegacyDataError as error:
            report.warnings.append(f"{stream}: unreadable legacy data, not migrated ({error})")
            continue
        by_type[session.agent_type].append(session)
    for agent_type, sessions in sorted(by_type.items()):
        agent_id = agent_id_for(user_id, agent_type)
        where = f"user {user_id} / {agent_type.value} agent {agent_id}"
        report.agents += 1
        recorded = await store.read(stream_name(agent_id))
        if not recorded:
            report.fail(where, f"missing (the user has {len(sessions)} such sessions)")
            continue
        if len({event.id for event in recorded}) != len(recorded):
            report.fail(where, "duplicate event ids in the stream")
        events = [from_envelope(event) for event in recorded]
        agent = Agent.replay(events)
        full = Agent.replay(_unbounded(events)).state
        state = agent.state
        if state.owner_user_id != user_id or state.agent_type is not agent_type:
            report.fail(where, f"owned by {state.owner_user_id} as {state.agent_type.value}")
        selected = select_sessions(sessions)
        for older in selected.superseded:
            report.warnings.append(f"{older.stream}: unfinished, superseded by a newer one")
        history = {s.session_id: s for s in full.session_history}
        if len(history) != len(full.session_history):
            report.fail(where, "a session appears twice in the history")
        expected_ids = [s.session_id for s in selected.finished]
        migrated_ids = [s.session_id for s in full.session_history]
        if migrated_ids != expected_ids:
            missing = sorted(set(expected_ids) - set(migrated_ids))
            extra = sorted(set(migrated_ids) - set(expected_ids))
            report.fail(
                where,
                f"history has {len(migrated_ids)} sessions, legacy {len(expected_ids)} finished"
                f" (missing {missing}, unexpected {extra}, or out of time order)",
            )
        bound = state.max_history_size
        if state.session_history != full.session_history[-bound:]:
            report.fail(where, f"state history is not the newest {bound} finished sessions")
        for legacy in selected.finished:
            report.sessions += 1
            migrated = history.get(legacy.session_id)
            if migrated is not None:
                for difference in compare_session(legacy, migrated):
                    report.fail(f"{where} session {legacy.session_id}", difference)
        _check_active(where, selected.active, agent, report)


def _check_active(where: str, legacy: LegacySession | None, agent: Agent, report: Report) -> None:
    active = agent.get_active_session()
    if legacy is None:
        if active is not None:
            report.fail(where, f"active session {active.session_id} has no legacy origin")
        return
    report.sessions += 1
    if active is None or active.session_id != legacy.session_id:
        found = active.session_id if active else None
        report.fail(where, f"active session should be {legacy.session_id}, is {found}")
        return
    for difference in compare_session(legacy, active):
        report.fail(f"{where} active session {legacy.session_id}", difference)
    pending = active.pending_action.to_dict() if active.pending_action else None
    if pending != legacy.pending_action:
        report.fail(where, f"pending widget {pending} != legacy {legacy.pending_action}")
    execution = agent.get_execution_state()
    waits_on = execution.pending_tool_call if execution else None
    if legacy.pending_action is not None and (
        waits_on is None or waits_on.call_id != legacy.pending_action["tool_call_id"]
    ):
        report.fail(where, "the suspended execution does not wait on the pending widget")


async def validate(url: str) -> Report:
    store = await open_event_store(url)
    report = Report()
    try:
        inventory = await scan(store)
        report.warnings.extend(
            f"{p.stream}: unreadable legacy data, not migrated ({p.reason})"
            for p in inventory.problems
        )
        for user_id, streams in inventory.users.items():
            report.users += 1
            await check_user(store, user_id, streams, report)
    finally:
        await store.close()
    return report


def render(report: Report) -> str:
    verdict = "FAILED" if report.failures else "OK"
    lines = [
        f"migration validation {verdict}: {report.users} users, {report.agents} agents, "
        f"{report.sessions} sessions checked; {len(report.failures)} mismatches, "
        f"{len(report.warnings)} legacy streams not migrated by design"
    ]
    lines += [f"  MISMATCH {failure}" for failure in report.failures]
    lines += [f"  skipped  {warning}" for warning in report.warnings]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="event store URL (legacy and agent streams)")
    args = parser.parse_args(argv)
    report = asyncio.run(validate(args.url))
    print(render(report))
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
