"""Hostile input, by property: arbitrary unicode (NUL, lone surrogates, other control and
invisible characters, huge strings), hostile JSON (NaN, Infinity, huge integers, deep nesting,
hostile keys) and raw invalid UTF-8, sent to every write route in its body, path, query and
headers, and to the reads that take a position, a limit or a session id, on the SQLite and the
PostgreSQL read models.

Every answer is below 500 (a 500 surfaces as the server's own exception: the in-process
transport re-raises it, traceback and all); a 4xx is problem+json with a ``code``; a body is
strict JSON (valid UTF-8, no NaN). Whatever a write accepted is projected before the next
example, so a stall fails on the example that caused it, naming the event. After each route's
examples what they stored reads back (lists and session histories answer 200, strict JSON), and
a fresh user still creates an agent and is served a session.

How the examples run: hypothesis drives a plain function in a worker thread, and each example's
request runs on the test's own event loop (where the app, its stores and the projector live)
through ``run_coroutine_threadsafe``. So hypothesis never sees a pytest fixture, the app is set
up once per route and read model rather than per example, and the batch checks run in the test
after the last example. Examples stay independent: each acts on a target (a user; an agent, its
session, a member) that is replaced after any example whose write the API accepted; one it
refused changed nothing. Seeds are fixed (``derandomize``), so every run tries the same
examples.
"""

from __future__ import annotations

import asyncio
import enum
import json
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote
from uuid import uuid4

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.support.api_client import PROBLEM, as_user
from tests.support.api_flows import new_user
from tests.support.inprocess_api import InProcessApi

EXAMPLES = 40
"""Per route and read model: the module runs in well under a minute on two cores."""
EXAMPLE_TIMEOUT_S = 60.0
RECURSION_LIMIT = sys.getrecursionlimit()
"""The interpreter's, as a server runs with it: hypothesis raises it while a test runs."""
CATCH_UP_TIMEOUT_S = 10.0

# ---------------------------------------------------------------------- hostile values


class Raw(str):
    """A JSON text sent as it is (``1e999``, 4000 digits, ``[[[...]]]``): what ``json.dumps``
    never writes."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Raw({str(self)[:60]!r}{'...' if len(self) > 60 else ''})"


class Slot(enum.Enum):
    """A value only the example's target knows (its agent, session, pending widget, users)."""

    AGENT = "agent"
    SESSION = "session"
    TOOL_CALL = "tool_call"
    OWNER = "owner"
    MEMBER = "member"


ANY_CHAR = st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())
"""Every code point, lone surrogates and unassigned ones included."""
NASTY_CHAR = st.one_of(
    st.just("\x00"),
    st.characters(categories=["Cs"]),  # lone surrogates
    st.characters(categories=["Cc", "Cf", "Zl", "Zp", "Co", "Cn"]),  # control, invisible
    ANY_CHAR,
)


def _repeat(unit: str, length: int) -> str:
    return (unit * length)[:length]


def texts(longest: int) -> st.SearchStrategy[str]:
    """Arbitrary, control-heavy, NUL-heavy and huge text (repeated, up to ``longest``
    characters: past the key, id and reason limits and, in a body, the 4096-byte body limit)."""
    huge = st.one_of(
        st.sampled_from([n for n in (65, 201, 501, 4097, 20_001, 70_000) if n <= longest]),
        st.integers(1, longest),
    )
    return st.one_of(
        st.text(ANY_CHAR, max_size=40),
        st.text(NASTY_CHAR, min_size=1, max_size=40),
        st.lists(st.sampled_from(["\x00", "a", "\x00" * 8]), min_size=1, max_size=12).map("".join),
        st.builds(_repeat, st.text(NASTY_CHAR, min_size=1, max_size=3), huge),
    )


TEXT = texts(70_000)
URL_TEXT = texts(1_200)
"""For a path or query part: httpx refuses a URL past 64 KiB (a server one far shorter:
h11's request head is 16 KiB), and a character takes up to 12 once percent-encoded."""
NUMBER = st.one_of(
    st.integers(),
    st.integers(min_value=2**63 - 2, max_value=2**80),
    st.integers(min_value=-(2**80), max_value=-(2**63) + 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [Raw("1e999"), Raw("-1e999"), Raw("1e-999"), Raw("-0"), Raw("9" * 4000), Raw("NaN")]
    ),
)
KEY = st.one_of(
    TEXT,
    st.sampled_from(
        ["language", "temperature", "default_template", "response_policy", "selection", "text"]
    ),
)
JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), NUMBER, TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(KEY, inner, max_size=5)),
    max_leaves=12,
)
JSON_OBJECT = st.dictionaries(KEY, JSON, max_size=5)
DEEP = st.integers(1, 2040).map(lambda depth: Raw("[" * depth + "]" * depth))
"""Nested past the JSON depth bound and past Python's recursion limit, within the body limit."""
INVALID_UTF8 = st.one_of(
    st.binary(min_size=1, max_size=24),
    st.sampled_from([b"\xff", b"\x80", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"]),
)
"""Stray bytes, an overlong NUL, an encoded surrogate, a code point past U+10FFFF."""
POSITION = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(["1e3", " 5", "+5", "5_000", "0x10", "-0", "NaN"]),
    st.builds(_repeat, st.just("9"), st.integers(4300, 5000)),  # past int()'s digit limit
    URL_TEXT,
)
"""``?after=``, ``Last-Event-ID``, ``?limit=`` and the like: numbers, near-numbers, huge ones,
and text."""


def pick(*weighted: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, each as often as its weight, shrinking toward the first
    (``one_of`` flattens nested ``one_of``s and weighs every branch alike)."""
    table = [strategy for weight, strategy in weighted for _ in range(weight)]
    return st.sampled_from(range(len(table))).flatmap(table.__getitem__)


def field_value(*valid: object, hostile: st.SearchStrategy[Any] = TEXT) -> st.SearchStrategy[Any]:
    """Half the time a valid value of the field, else a hostile one of its kind or any JSON."""
    return pick((2, st.sampled_from(valid)), (1, hostile), (1, JSON))


def mostly(slot: Slot, instead: st.SearchStrategy[str] = URL_TEXT) -> st.SearchStrategy[Any]:
    """Mostly the target's own value, so the rest of the request reaches validation and the
    domain; sometimes hostile text instead."""
    return pick((3, st.just(slot)), (1, instead))


def bodies(
    required: Mapping[str, st.SearchStrategy[Any]],
    optional: Mapping[str, st.SearchStrategy[Any]] | None = None,
) -> st.SearchStrategy[Any]:
    """Mostly a body of the route's own fields (each valid or hostile); else one with a
    hostile extra key, any JSON value, nested arrays, or raw bytes (invalid UTF-8 among
    them)."""
    named = [*required, *(optional or {}), "extra"]
    fields = st.fixed_dictionaries(required, optional=optional or {})
    with_extra = st.builds(
        lambda own, extra: {**own, **extra},
        fields,
        st.dictionaries(KEY, JSON, min_size=1, max_size=1),
    )
    in_a_field = st.builds(
        lambda name, bad: b'{"' + name.encode() + b'": "' + bad + b'"}',
        st.sampled_from(named),
        INVALID_UTF8,
    )
    return pick(
        (4, fields),
        (1, with_extra),
        (1, JSON),
        (1, DEEP),
        (1, in_a_field),
        (1, st.binary(max_size=64)),
    )


ONE_KEY = "4f5c3a8e-0c1d-4d2e-9f3a-6b7c8d9e0f1a"
IDEMPOTENCY_KEY = pick(
    (3, st.none()),
    (2, st.uuids().map(str)),
    (1, st.just(ONE_KEY)),  # one key, sent with many requests
    (1, TEXT),
    (1, INVALID_UTF8),  # raw bytes in the header
)
CONTENT_TYPE = pick(
    (5, st.just("application/json")),
    (1, st.sampled_from(["application/json; charset=latin-1", "text/plain", ""])),
    (1, TEXT),
)


# ---------------------------------------------------------------------- requests


@dataclass(frozen=True)
class Attack:
    """One request: path segments (a slot is the target's value), query, body, headers."""

    method: str
    path: tuple[str | Slot, ...]
    body: Any = None
    query: tuple[tuple[str, Any], ...] = ()
    idempotency_key: str | bytes | None = None
    content_type: str = "application/json"
    extra_headers: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Target:
    """What an example acts on: an agent of ``owner``'s, maybe in a session, with a member."""

    owner: str
    agent_id: str = ""
    session_id: str = ""
    tool_call_id: str = ""
    member: str = ""

    def resolve(self, value: Any) -> Any:
        if isinstance(value, Slot):
            return {
                Slot.AGENT: self.agent_id,
                Slot.SESSION: self.session_id,
                Slot.TOOL_CALL: self.tool_call_id,
                Slot.OWNER: self.owner,
                Slot.MEMBER: self.member,
            }[value]
        if isinstance(value, dict):
            return {key: self.resolve(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        return value


def _json_text(value: Any) -> str:
    """JSON as a hostile client writes it: ASCII only (a lone surrogate travels as its
    ``\\udXXX`` escape), NaN and Infinity as literals, ``Raw`` text as it is."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, dict):
        items = (f"{json.dumps(key)}:{_json_text(item)}" for key, item in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_json_text(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=True)


def _wire(value: Any) -> bytes:
    """A header value or URL part as bytes: text as UTF-8, lone surrogates included."""
    return value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogatepass")


def _url(attack: Attack, target: Target) -> str:
    path = "/".join(quote(_wire(target.resolve(part)), safe="") for part in attack.path)
    query = "&".join(
        f"{quote(name)}={quote(_wire(target.resolve(value)), safe='')}"
        for name, value in attack.query
    )
    return f"/{path}?{query}" if query else f"/{path}"


async def send(http: httpx.AsyncClient, attack: Attack, target: Target) -> httpx.Response:
    headers = {name.encode(): value.encode() for name, value in as_user(target.owner).items()}
    body = target.resolve(attack.body)
    content = None
    if body is not None:
        content = body if isinstance(body, bytes) else _json_text(body).encode("ascii")
        headers[b"content-type"] = _wire(attack.content_type)
    if attack.idempotency_key is not None:
        headers[b"idempotency-key"] = _wire(attack.idempotency_key)
    for name, value in attack.extra_headers:
        headers[name.encode()] = _wire(value)
    return await http.request(attack.method, _url(attack, target), content=content, headers=headers)


def _no_constant(literal: str) -> None:
    raise AssertionError(f"the answer holds {literal}, which JSON has no word for")


def assert_clean(response: httpx.Response, what: str) -> None:
    """Below 500; a 4xx a problem with a ``code``; whatever came back strict JSON (SSE: each
    event's data)."""
    shown = f"{what}: {response.status_code} {response.text[:600]}"
    assert response.status_code < 500, shown
    media = response.headers.get("content-type", "")
    if 400 <= response.status_code < 500:
        assert media == PROBLEM, shown
    if not response.content:
        assert response.status_code in (204, 304) or response.is_redirect, shown
        return
    text = response.content.decode("utf-8")  # strict: an answer is valid UTF-8
    if media.startswith("text/event-stream"):
        documents = [line[5:] for line in text.splitlines() if line.startswith("data:")]
    else:
        assert media in ("application/json", PROBLEM), shown
        documents = [text]
    parsed = [json.loads(document, parse_constant=_no_constant) for document in documents]
    if 400 <= response.status_code < 500:
        assert isinstance(parsed[0].get("code"), str), shown
        assert parsed[0].get("status") == response.status_code, shown


# ---------------------------------------------------------------------- targets


async def new_agent(http: httpx.AsyncClient, user: str) -> str:
    created = await http.post("/api/agents", json={"agent_type": "tutor"}, headers=as_user(user))
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def in_session(http: httpx.AsyncClient, user: str, agent_id: str) -> tuple[str, str]:
    """The session started on the agent, and the tool call of the widget it shows."""
    started = await http.post(f"/api/agents/{agent_id}/sessions", json={}, headers=as_user(user))
    assert started.status_code == 201, started.text
    session = started.json()["session"]
    return str(session["session_id"]), str(session["pending_action"]["tool_call_id"])


async def fresh_user(api: InProcessApi) -> Target:
    return Target(owner=new_user("eve"))


async def idle_agent(api: InProcessApi) -> Target:
    """A tutor with no session; its session slot names a session that does not exist."""
    owner = new_user("eve")
    agent_id = await new_agent(api.http, owner)
    return Target(owner=owner, agent_id=agent_id, session_id=str(uuid4()))


async def agent_in_session(api: InProcessApi) -> Target:
    """A tutor mid-session, its first widget showing."""
    owner = new_user("eve")
    agent_id = await new_agent(api.http, owner)
    session_id, tool_call_id = await in_session(api.http, owner, agent_id)
    return Target(owner, agent_id, session_id, tool_call_id)


async def legacy_session(api: InProcessApi) -> Target:
    """A tutor mid-session that the read model shows (a legacy route finds it there)."""
    target = await agent_in_session(api)
    await catch_up(api)
    return target


async def agent_with_member(api: InProcessApi) -> Target:
    """A tutor mid-session with a shared member."""
    target = await agent_in_session(api)
    member = new_user("mia")
    assigned = await api.http.post(
        f"/api/agents/{target.agent_id}/assignments",
        json={"user_id": member, "role": "shared"},
        headers=as_user(target.owner),
    )
    assert assigned.status_code == 201, assigned.text
    return Target(target.owner, target.agent_id, target.session_id, target.tool_call_id, member)


# ---------------------------------------------------------------------- routes

CONFIG = st.fixed_dictionaries(
    {},
    optional={
        "template_id": field_value("arithmetic-basics", "python-basics", "daily-reflection"),
        "model_id": field_value("some-model"),
        "max_items": field_value(1, 3, hostile=NUMBER),
        "time_limit_seconds": field_value(60, hostile=NUMBER),
        "item_time_limit_seconds": field_value(30, hostile=NUMBER),
        "completion_criteria": field_value({"min_score": 1}, hostile=JSON_OBJECT),
        "extra": field_value({"note": "x"}, hostile=JSON_OBJECT),
        "allow_skip": field_value(True, hostile=NUMBER),
    },
)
SESSION_TYPES = ("learning", "thought", "validation", "survey", "workflow")
START = {
    "system_prompt": field_value("Be brief.", "line one\nline two\ttabbed"),
    "config": field_value({}, hostile=CONFIG),
}
PREFERENCES = field_value({"language": "fr"}, {"ui.theme": "dark"}, hostile=JSON_OBJECT)
RESPOND = bodies(
    {
        "tool_call_id": mostly(Slot.TOOL_CALL, TEXT),
        "response": field_value(
            {"selection": "56"}, {"selection": "54"}, {"text": "12"}, "56", hostile=JSON_OBJECT
        ),
    },
    {"response_time_ms": field_value(1200.0, 0, hostile=NUMBER)},
)
NO_BODY = st.none()
MAYBE_A_BODY = pick((3, NO_BODY), (1, bodies({})))
"""What a DELETE carries: usually nothing, but nothing stops a client sending a body."""
REASONS = st.lists(
    st.tuples(st.just("reason"), pick((1, st.just("done")), (2, URL_TEXT))), max_size=2
).map(tuple)
"""``?reason=``: absent, valid, hostile, or given twice."""
IN_THE_PATH = {
    Slot.AGENT: mostly(Slot.AGENT),
    Slot.SESSION: mostly(Slot.SESSION),
    Slot.MEMBER: pick((2, st.just(Slot.MEMBER)), (1, st.just(Slot.OWNER)), (2, URL_TEXT)),
}
"""What goes where a path names the target's agent, session or user."""
TOO_DEEP_FOR_PYTHON = Raw("[" * 2000 + "]" * 2000)
"""JSON nested past Python's recursion limit (``json.loads`` raises RecursionError), in 4000
bytes: within the body limit."""
NO_PARTS: st.SearchStrategy[tuple[tuple[str, Any], ...]] = st.just(())


def _queries(*names: str) -> st.SearchStrategy[tuple[tuple[str, Any], ...]]:
    return st.lists(st.tuples(st.sampled_from(names), POSITION), max_size=3).map(tuple)


LAST_EVENT_ID = st.lists(st.tuples(st.just("last-event-id"), POSITION), max_size=1).map(tuple)


@dataclass(frozen=True)
class Route:
    """A route and the target its examples act on; its attacks vary every part of a request
    that the route reads."""

    method: str
    path: tuple[str | Slot, ...]
    target: Callable[[InProcessApi], Awaitable[Target]]
    body: st.SearchStrategy[Any] = NO_BODY
    query: st.SearchStrategy[tuple[tuple[str, Any], ...]] = NO_PARTS
    headers: st.SearchStrategy[tuple[tuple[str, Any], ...]] = NO_PARTS
    kept_after_success: bool = False
    """The target still serves once a write succeeded (one that only adds; reads always do)."""

    @property
    def name(self) -> str:
        parts = (f"{{{part.value}}}" if isinstance(part, Slot) else part for part in self.path)
        return f"{self.method} /{'/'.join(parts)}"

    @property
    def writes(self) -> bool:
        return self.method != "GET"

    def attacks(self) -> st.SearchStrategy[Attack]:
        path = st.tuples(
            *(IN_THE_PATH[part] if isinstance(part, Slot) else st.just(part) for part in self.path)
        )
        writes = {"idempotency_key": IDEMPOTENCY_KEY, "content_type": CONTENT_TYPE}
        return st.builds(
            Attack,
            st.just(self.method),
            path,
            body=self.body,
            query=self.query,
            extra_headers=self.headers,
            **(writes if self.writes else {}),
        )

    def explicit(self) -> list[Attack]:
        """Always tried on a write: a body too deep for Python under a content type the
        route does not parse as JSON, with an Idempotency-Key (whose fingerprint parses it)."""
        if not self.writes:
            return []
        deep = Attack(
            self.method,
            self.path,
            body=TOO_DEEP_FOR_PYTHON,
            idempotency_key=ONE_KEY,
            content_type="text/plain",
        )
        return [deep]


AGENTS = ("api", "agents")
AGENT = (*AGENTS, Slot.AGENT)
LEGACY = ("api", "session")
ROUTES = [
    Route(
        "POST",
        AGENTS,
        fresh_user,
        body=bodies(
            {"agent_type": field_value("tutor", "thought", "coach", "wellness")},
            {"name": field_value("My tutor", "Ünïcødé ✓"), "preferences": PREFERENCES},
        ),
    ),
    Route(
        "POST",
        (*AGENT, "sessions"),
        idle_agent,
        body=bodies({}, {"session_type": field_value(*SESSION_TYPES), **START}),
    ),
    Route("POST", (*AGENT, "session", "respond"), agent_in_session, body=RESPOND),
    Route("DELETE", (*AGENT, "session"), agent_in_session, body=MAYBE_A_BODY, query=REASONS),
    Route(
        "PATCH",
        (*AGENT, "preferences"),
        agent_in_session,
        body=bodies({"changes": PREFERENCES}),
        kept_after_success=True,
    ),
    Route(
        "POST",
        (*AGENT, "assignments"),
        agent_with_member,
        body=bodies(
            {
                "user_id": pick((1, IN_THE_PATH[Slot.MEMBER]), (1, field_value("bob"))),
                "role": field_value("shared", "mentee", "observer", "primary"),
            }
        ),
        kept_after_success=True,
    ),
    Route("DELETE", (*AGENT, "assignments", Slot.MEMBER), agent_with_member, body=MAYBE_A_BODY),
    Route(
        "POST",
        (*AGENT, "archive"),
        agent_in_session,
        body=bodies({"reason": field_value("done", "course finished ✓")}),
    ),
    Route(
        "POST",
        LEGACY,
        fresh_user,
        body=bodies(
            {"session_type": field_value(*SESSION_TYPES)},
            {**START, "model_id": field_value("some-model")},
        ),
    ),
    Route("POST", (*LEGACY, Slot.SESSION, "respond"), legacy_session, body=RESPOND),
    Route("DELETE", (*LEGACY, Slot.SESSION), legacy_session, body=MAYBE_A_BODY, query=REASONS),
    # The reads that take a position, a limit or a session id. The agent is idle, so its
    # stream ends after the catch-up; its session slot names no session.
    Route("GET", AGENTS, idle_agent, query=_queries("after", "include_archived", "agent_type")),
    Route("GET", AGENT, idle_agent, query=_queries("after")),
    Route("GET", (*AGENT, "sessions"), idle_agent, query=_queries("after", "limit")),
    Route(
        "GET",
        (*AGENT, "stream"),
        idle_agent,
        query=_queries("last_event_id", "session_id"),
        headers=LAST_EVENT_ID,
    ),
    Route(
        "GET",
        (*LEGACY, Slot.SESSION, "stream"),
        idle_agent,
        query=_queries("last_event_id"),
        headers=LAST_EVENT_ID,
    ),
]


# ---------------------------------------------------------------------- the checks


class Stage:
    """The current target of a route's examples: kept while the API refuses, replaced after
    an example of a write route it accepted (that one may have ended the session, archived the
    agent, taken the member away)."""

    def __init__(self, api: InProcessApi, route: Route) -> None:
        self._api = api
        self._route = route
        self._current: Target | None = None
        self.seen: list[Target] = []

    async def target(self) -> Target:
        if self._current is None:
            self._current = await self._route.target(self._api)
            self.seen.append(self._current)
        return self._current

    def answered(self, response: httpx.Response) -> None:
        route = self._route
        if response.is_success and route.writes and not route.kept_after_success:
            self._current = None


async def catch_up(api: InProcessApi) -> None:
    """The projector follows the log up to its head within a few seconds, never stopping."""
    deadline = time.monotonic() + CATCH_UP_TIMEOUT_S
    while True:
        status = await api.services.projector.status()
        assert status.stopped_by is None, await stopped_at(api, status.stopped_at)
        if status.lag == 0:
            return
        assert time.monotonic() < deadline, f"the projector is {status.lag} positions behind"
        await asyncio.sleep(0.02)


async def assert_not_stopped_before(api: InProcessApi) -> None:
    """An example that finds the projector stopped did not stop it: an earlier one did, and
    failed then (this only keeps the rest from blaming themselves, waiting on it)."""
    status = await api.services.projector.status()
    assert status.stopped_by is None, "before this example: " + await stopped_at(
        api, status.stopped_at
    )


async def stopped_at(api: InProcessApi, position: int | None) -> str:
    """The event the projector stopped at: what the hostile input made of it."""
    if position is None:
        return "the projector stopped (not at an event)"
    events = await api.services.event_store.read_all(position - 1, 1)
    shown = [(event.type, repr(dict(event.data))[:2000]) for event in events]
    return f"the projector stopped at position {position}: {shown}"


async def assert_read_back(http: httpx.AsyncClient, targets: Iterable[Target]) -> None:
    """What the examples stored reads back: lists and histories answer 200, strict JSON."""
    for target in targets:
        listed = await http.get("/api/agents?include_archived=true", headers=as_user(target.owner))
        assert listed.status_code == 200, listed.text
        assert_clean(listed, "GET /api/agents")
        if target.agent_id:
            history = await http.get(
                f"/api/agents/{target.agent_id}/sessions", headers=as_user(target.owner)
            )
            assert history.status_code == 200, history.text
            assert_clean(history, "GET /api/agents/{id}/sessions")


async def assert_still_serving(api: InProcessApi) -> None:
    """A fresh user creates an agent, is served a session, and sees the agent listed."""
    user = new_user("fay")
    agent_id = await new_agent(api.http, user)
    await in_session(api.http, user, agent_id)
    listed = await api.http.get("/api/agents", headers=as_user(user))
    assert listed.status_code == 200, listed.text
    assert [agent["id"] for agent in listed.json()] == [agent_id]
    await catch_up(api)


@pytest.mark.parametrize("route", ROUTES, ids=lambda route: route.name)
async def test_hostile_input_is_refused_cleanly_and_the_projector_goes_on(
    api_on_each_read_model: InProcessApi, route: Route
) -> None:
    api = api_on_each_read_model
    stage = Stage(api, route)
    loop = asyncio.get_running_loop()

    async def attack_once(attack: Attack) -> None:
        await assert_not_stopped_before(api)
        target = await stage.target()
        raised = sys.getrecursionlimit()
        sys.setrecursionlimit(RECURSION_LIMIT)  # the hypothesis thread waits meanwhile
        try:
            response = await send(api.http, attack, target)
        finally:
            sys.setrecursionlimit(raised)
        assert_clean(response, route.name)
        if route.writes and response.is_success:
            await catch_up(api)  # what it stored is projected: a stall shows on this example
        stage.answered(response)

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        # Huge strings are slow to build and large to draw, by design.
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(attack=route.attacks())
    def examples(attack: Attack) -> None:
        asyncio.run_coroutine_threadsafe(attack_once(attack), loop).result(EXAMPLE_TIMEOUT_S)

    for attack in route.explicit():
        examples = example(attack=attack)(examples)

    await asyncio.to_thread(examples)
    await catch_up(api)
    await assert_read_back(api.http, stage.seen)
    await assert_still_serving(api)
