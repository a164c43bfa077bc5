"""Write realistic legacy ``session-{uuid}`` streams into an event store, for tests and demos.

Many users, every session type and status, items with responses and evaluations, rejected
submissions, sessions paused on a widget, expired ones; the same ``--seed`` always writes the
same events (ids included), so generating twice into one store appends nothing the second time.

    python -m scripts.generate_legacy_sessions --url sqlite:///var/legacy.db --sessions 2000
"""

from __future__ import annotations

import argparse
import asyncio
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.enums import AGENT_TYPE_OF_SESSION_TYPE, ControlMode, SessionType
from eventstore.factory import open_event_store
from eventstore.port import EventStore, NewEvent, StreamState
from scripts.legacy import model as legacy

EPOCH = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
STATUS_WEIGHTS = {
    "completed": 45,
    "terminated": 10,
    "expired": 13,
    "awaiting": 17,
    "active": 10,
    "pending": 5,
}
MALFORMED_KINDS = (
    "unknown_event_type",
    "missing_user_id",
    "no_created_event",
    "missing_item_field",
)


@dataclass
class _Stream:
    """One legacy stream being written: events get seeded ids and advancing timestamps."""

    rng: random.Random
    session_id: str
    now: datetime
    events: list[NewEvent] = field(default_factory=list)

    def tick(self, low: float = 2, high: float = 90) -> datetime:
        self.now += timedelta(seconds=self.rng.uniform(low, high))
        return self.now

    def add(self, type_: str, **data: Any) -> None:
        self.events.append(
            NewEvent(
                type=type_,
                data={"aggregate_id": self.session_id, **data},
                subject=self.session_id,
                id=uuid.UUID(int=self.rng.getrandbits(128), version=4),
                source=legacy.LEGACY_SOURCE,
                time=self.now,
            )
        )


def _iso(at: datetime) -> str:
    return at.isoformat()


def _widget(rng: random.Random, session_type: SessionType, n: int) -> tuple[dict[str, Any], Any]:
    """A client action and a valid answer to it, in the legacy tool shapes."""
    call_id = f"call_{uuid.UUID(int=rng.getrandbits(128)).hex[:16]}"
    kind = rng.choice(["choices", "choices", "text", "code"])
    if session_type in (SessionType.SURVEY, SessionType.APPROVAL):
        kind = "choices" if kind == "code" else kind
    if kind == "choices":
        options = [f"Option {chr(65 + i)}" for i in range(rng.randint(2, 6))]
        index = rng.randrange(len(options))
        props: dict[str, Any] = {
            "prompt": f"{session_type.value.title()} question {n}: pick one",
            "options": options,
            "context": f"context for item {n}",
        }
        return (
            {
                "tool_call_id": call_id,
                "tool_name": "present_choices",
                "widget_type": "multiple_choice",
                "props": props,
                "lock_input": True,
            },
            {"selection": options[index], "index": index},
        )
    if kind == "text":
        props = {
            "prompt": f"In your own words ({session_type.value}, item {n})",
            "placeholder": "Type here",
            "min_length": 1,
            "max_length": 2000,
            "multiline": True,
        }
        return (
            {
                "tool_call_id": call_id,
                "tool_name": "request_free_text",
                "widget_type": "free_text",
                "props": props,
                "lock_input": True,
            },
            {"text": f"answer {rng.randint(1, 10_000)} to item {n}"},
        )
    props = {
        "prompt": f"Write a function for exercise {n}",
        "language": "python",
        "initial_code": "def solve(x):\n    ...\n",
    }
    return (
        {
            "tool_call_id": call_id,
            "tool_name": "present_code_editor",
            "widget_type": "code_editor",
            "props": props,
            "lock_input": True,
        },
        {"code": f"def solve(x):\n    return x * {rng.randint(2, 9)}\n"},
    )


def _session(
    rng: random.Random, user_id: str, session_type: SessionType, status: str, start: datetime
) -> _Stream:
    sid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    s = _Stream(rng, sid, start)
    max_items = rng.randint(3, 8)
    s.add(
        legacy.CREATED,
        user_id=user_id,
        conversation_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        session_type=session_type.value,
        control_mode=rng.choice([ControlMode.PROACTIVE, ControlMode.REACTIVE]).value,
        system_prompt=rng.choice([None, f"You run {session_type.value} sessions kindly."]),
        config={
            "time_limit_seconds": 3600,
            "item_time_limit_seconds": 600,
            "max_items": max_items,
            "completion_criteria": {"min_items": 2},
            "allow_skip": rng.random() < 0.3,
            "model_id": rng.choice([None, "gpt-4o-mini", "llama3.1:8b"]),
            "extra": {"cohort": rng.choice(["a", "b"])},
        },
        created_at=_iso(s.now),
    )
    if status == "pending":
        return s
    s.add(legacy.STARTED, started_at=_iso(s.tick(1, 5)))
    s.add(legacy.STATUS_CHANGED, old_status="pending", new_status="active", changed_at=_iso(s.now))
    scored = session_type in (SessionType.LEARNING, SessionType.VALIDATION)
    answered = rng.randint(0, max_items - 1) if status != "completed" else max_items
    correct = 0
    for n in range(1, answered + 1):
        action, answer = _widget(rng, session_type, n)
        _ask(s, n, action)
        if rng.random() < 0.15:
            s.add(
                legacy.RESPONSE_SUBMITTED,
                tool_call_id=action["tool_call_id"],
                response={"unexpected": True},
                validation_status="invalid",
                validation_errors=["response does not fit the widget"],
                submitted_at=_iso(s.tick()),
            )
        s.add(
            legacy.RESPONSE_SUBMITTED,
            tool_call_id=action["tool_call_id"],
            response=answer,
            validation_status="valid",
            validation_errors=None,
            submitted_at=_iso(s.tick()),
        )
        s.add(legacy.PENDING_CLEARED, tool_call_id=action["tool_call_id"], cleared_at=_iso(s.now))
        evaluation = None
        if scored:
            ok = rng.random() < 0.7
            correct += ok
            evaluation = {"correct": ok, "score": 1.0 if ok else 0.0, "feedback": "checked"}
        s.add(
            legacy.ITEM_COMPLETED,
            item_id=f"item-{n}",
            user_response=answer,
            response_time_ms=rng.choice([None, round(rng.uniform(800, 90_000), 1)]),
            evaluation=evaluation,
            completed_at=_iso(s.now),
        )
        s.add(
            legacy.STATUS_CHANGED,
            old_status="awaiting_client_action",
            new_status="active",
            changed_at=_iso(s.now),
        )
    paused = status == "awaiting" or (status == "expired" and rng.random() < 0.6)
    if paused:
        action, _ = _widget(rng, session_type, answered + 1)
        _ask(s, answered + 1, action)
    end = s.tick(30, 600)
    if status == "completed":
        summary = {"items": answered, "score": correct / answered} if scored else None
        s.add(
            legacy.COMPLETED,
            completed_at=_iso(end),
            completion_reason=rng.choice(["criteria_met", "user_finished", "max_items_reached"]),
            summary=summary,
        )
    elif status == "terminated":
        s.add(legacy.TERMINATED, terminated_at=_iso(end), reason="User terminated")
    elif status == "expired":
        reason = "item_timeout" if paused else rng.choice(["time_limit", "inactivity"])
        s.add(legacy.EXPIRED, expired_at=_iso(end), reason=reason)
    else:
        return s
    s.add(
        legacy.STATUS_CHANGED,
        old_status="awaiting_client_action" if paused else "active",
        new_status=status,
        changed_at=_iso(end),
    )
    return s


def _ask(s: _Stream, n: int, action: dict[str, Any]) -> None:
    s.add(
        legacy.ITEM_STARTED,
        item_id=f"item-{n}",
        sequence=n,
        agent_prompt=action["props"]["prompt"],
        client_action=action,
        started_at=_iso(s.tick()),
    )
    s.add(
        legacy.PENDING_SET,
        tool_call_id=action["tool_call_id"],
        tool_name=action["tool_name"],
        widget_type=action["widget_type"],
        props=action["props"],
        lock_input=action["lock_input"],
        set_at=_iso(s.now),
    )
    s.add(
        legacy.STATUS_CHANGED,
        old_status="active",
        new_status="awaiting_client_action",
        changed_at=_iso(s.now),
    )


def _malform(s: _Stream, kind: str) -> _Stream:
    if kind == "unknown_event_type":
        s.now = s.events[-1].time
        s.add("session.hint.shown.v1", hint="try again")
    elif kind in ("missing_user_id", "missing_item_field"):
        index, drop = (0, "user_id") if kind == "missing_user_id" else (-1, "item_id")
        if kind == "missing_item_field":
            s.add(legacy.ITEM_STARTED, sequence=99, agent_prompt="?", started_at=_iso(s.tick()))
        old = s.events[index]
        data = {k: v for k, v in old.data.items() if k != drop}
        s.events[index] = NewEvent(old.type, data, old.subject, old.id, old.source, old.time)
    else:
        if len(s.events) == 1:
            s.add(legacy.STARTED, started_at=_iso(s.tick()))
        s.events = s.events[1:]
    return s


def generate(seed: int, sessions: int, malformed: int = 0) -> Iterator[_Stream]:
    """The streams, in a fixed order; users own ~5-15 sessions each (one unfinished session
    per user and agent type, as the legacy API allowed without allow_concurrent_sessions)."""
    rng = random.Random(seed)
    users = [f"user-{seed}-{i:05d}" for i in range(max(1, sessions // 8))]
    busy: set[tuple[str, str]] = set()
    clock = {user: EPOCH + timedelta(hours=rng.uniform(0, 240)) for user in users}
    types = list(SessionType)
    statuses = list(STATUS_WEIGHTS)
    weights = list(STATUS_WEIGHTS.values())
    for index in range(sessions + malformed):
        user = users[index % len(users)] if index < len(users) else rng.choice(users)
        session_type = types[index % len(types)] if index < len(types) else rng.choice(types)
        status = (
            statuses[index % len(statuses)] if index < 12 else rng.choices(statuses, weights)[0]
        )
        agent_key = (user, AGENT_TYPE_OF_SESSION_TYPE[session_type].value)
        if status in ("awaiting", "active", "pending"):
            if agent_key in busy:
                status = "completed"
            else:
                busy.add(agent_key)
        clock[user] += timedelta(hours=rng.uniform(1, 72))
        stream = _session(rng, user, session_type, status, clock[user])
        if index >= sessions:
            stream = _malform(stream, MALFORMED_KINDS[(index - sessions) % len(MALFORMED_KINDS)])
        yield stream


async def write(store: EventStore, streams: Iterator[_Stream], concurrency: int = 8) -> int:
    """Append each stream in one batch (NO_STREAM, or an idempotent re-append)."""
    limit = asyncio.Semaphore(concurrency)
    count = 0

    async def one(s: _Stream) -> None:
        async with limit:
            await store.append(
                f"{legacy.STREAM_PREFIX}{s.session_id}", s.events, StreamState.NO_STREAM
            )

    pending: set[asyncio.Task[None]] = set()
    for stream in streams:
        pending.add(asyncio.create_task(one(stream)))
        count += 1
        if len(pending) >= concurrency * 4:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
    await asyncio.gather(*pending)
    return count


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url", required=True, help="event store URL (sqlite:///..., postgresql://...)"
    )
    parser.add_argument("--sessions", type=int, default=300, help="well-formed sessions")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--malformed",
        type=int,
        default=0,
        help="extra bad streams, cycling: unknown event type, created without user_id, "
        "no created event, item without item_id",
    )
    args = parser.parse_args(argv)
    store = await open_event_store(args.url)
    try:
        count = await write(store, generate(args.seed, args.sessions, args.malformed))
    finally:
        await store.close()
    print(f"wrote {count} legacy session streams ({args.malformed} malformed) to {args.url}")


if __name__ == "__main__":
    asyncio.run(main())
