"""Input limits at the edge: every string, key, list and map that enters over HTTP is bounded
and clean, preferences are checked against the agent's profile, and session configs against
what their session will run.

Each attack is refused with a 422 problem+json naming the field; nothing is written (the log's
last position stays), the agent reads back as it was, the projector has caught up and has not
stopped, and another user's write is still projected. The NUL cases run on the SQLite and the
PostgreSQL read models: PostgreSQL refuses NUL in text and jsonb, so one stored NUL used to stop
the projector on the same batch for ever.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from domain import commands
from execution.templates.loader import get_template
from execution.templates.model import right_answer
from serve_app.settings import ApiSettings
from tests.security.aftermath import AgentAsItWas, as_it_is, assert_as_it_was, settled
from tests.support.api_client import PROBLEM, SECRET, as_user
from tests.support.api_flows import TEMPLATE, new_tutor, new_user
from tests.support.inprocess_api import InProcessApi, inprocess_api

NUL = "\x00"
LEGACY = "/api/session"


@pytest.fixture
async def roomy(tmp_path: Path) -> AsyncIterator[InProcessApi]:
    """The API with the production body limit (64 KiB), so the field limits are what refuse."""
    max_body_bytes = ApiSettings().max_body_bytes
    async with inprocess_api(tmp_path, secret=SECRET, max_body_bytes=max_body_bytes) as opened:
        yield opened


# ---------------------------------------------------------------------- the scene


@dataclass(frozen=True)
class Scene:
    """Alice's tutor (idle, or in a session on its free-text item); Tess, another tenant."""

    owner: str
    agent_id: str
    session_id: str | None
    tenant: str
    tenant_agent: str

    @property
    def url(self) -> str:
        return f"/api/agents/{self.agent_id}"


async def scene(api: InProcessApi, *, answering: bool) -> Scene:
    http = api.http
    owner, tenant = new_user("alice"), new_user("tess")
    agent_id = await new_tutor(http, owner)
    session_id = None
    if answering:  # the first item answered: the free-text one is showing
        started = await http.post(
            f"/api/agents/{agent_id}/sessions", json={}, headers=as_user(owner)
        )
        assert started.status_code == 201, started.text
        pending = started.json()["session"]["pending_action"]
        answer = right_answer(get_template(TEMPLATE).item(pending["tool_call_id"]))
        answered = await http.post(
            f"/api/agents/{agent_id}/session/respond",
            json={"tool_call_id": pending["tool_call_id"], "response": answer},
            headers=as_user(owner),
        )
        assert answered.status_code == 200, answered.text
        assert answered.json()["session"]["pending_action"]["widget_type"] == "free_text"
        session_id = answered.json()["session"]["session_id"]
    tenant_agent = await new_tutor(http, tenant)
    return Scene(owner, agent_id, session_id, tenant, tenant_agent)


async def before(api: InProcessApi, at: Scene) -> AgentAsItWas:
    return await as_it_is(api, at.url, as_user(at.owner))


async def assert_unaffected(api: InProcessApi, at: Scene, was: AgentAsItWas) -> None:
    """Nothing written, the agent as it was, and another user's write still projected."""
    await assert_as_it_was(api, at.url, as_user(at.owner), was)
    changed = await api.http.patch(
        f"/api/agents/{at.tenant_agent}/preferences",
        json={"changes": {"language": "de"}},
        headers=as_user(at.tenant),
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["preferences"] == {"language": "de"}
    await settled(api)


def assert_invalid(response: httpx.Response, *loc: str | int) -> dict[str, Any]:
    """422 validation_failed, with an error at (or inside) ``loc``."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["code"] == "validation_failed"
    locs = [error["loc"] for error in body["errors"]]
    assert any(found[: len(loc)] == list(loc) for found in locs), locs
    return body


def assert_refused_command(response: httpx.Response, *named: str) -> None:
    """422 invalid_command whose detail names every one of ``named``."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["code"] == "invalid_command"
    for name in named:
        assert name in body["detail"], body["detail"]


# ---------------------------------------------------------------------- NUL, everywhere


@dataclass(frozen=True)
class Attack:
    name: str
    method: str
    path: str
    """Formatted with ``url`` (the agent's), ``session`` (its session id) and ``legacy``."""
    loc: tuple[str | int, ...]
    body: Any = None
    params: dict[str, str] | None = None
    answering: bool = False
    """Needs the session on its free-text item (else: the agent idle, no session)."""


NUL_ATTACKS = [
    Attack("preference key", "PATCH", "{url}/preferences", ("body", "changes"),
           {"changes": {f"the{NUL}key": 1}}),
    Attack("preference value", "PATCH", "{url}/preferences", ("body", "changes", "language"),
           {"changes": {"language": f"f{NUL}r"}}),
    Attack("nested preference", "PATCH", "{url}/preferences",
           ("body", "changes", "ui", "theme"), {"changes": {"ui": {"theme": f"dark{NUL}"}}}),
    Attack("assignment user id", "POST", "{url}/assignments", ("body", "user_id"),
           {"user_id": f"bob{NUL}", "role": "observer"}),
    Attack("widget answer", "POST", "{url}/session/respond", ("body", "response", "text"),
           {"tool_call_id": "divide-144-by-12", "response": {"text": f"1{NUL}2"}}, answering=True),
    Attack("agent name", "POST", "/api/agents", ("body", "name"),
           {"agent_type": "coach", "name": f"Coach{NUL}"}),
    Attack("new agent's preference", "POST", "/api/agents", ("body", "preferences", "language"),
           {"agent_type": "coach", "preferences": {"language": NUL}}),
    Attack("system prompt", "POST", "{url}/sessions", ("body", "system_prompt"),
           {"system_prompt": f"Be brief.{NUL}"}),
    Attack("config.extra", "POST", "{url}/sessions", ("body", "config", "extra", "source"),
           {"config": {"extra": {"source": f"lms{NUL}"}}}),
    Attack("config.model_id", "POST", "{url}/sessions", ("body", "config", "model_id"),
           {"config": {"model_id": f"gpt{NUL}"}}),
    Attack("terminate reason", "DELETE", "{url}/session", ("query", "reason"),
           params={"reason": f"done{NUL}"}, answering=True),
    Attack("archive reason", "POST", "{url}/archive", ("body", "reason"),
           {"reason": f"finished{NUL}"}),
    Attack("legacy system prompt", "POST", "{legacy}", ("body", "system_prompt"),
           {"session_type": "learning", "system_prompt": NUL}),
    Attack("legacy config.extra", "POST", "{legacy}", ("body", "config", "extra", "k"),
           {"session_type": "learning", "config": {"extra": {"k": NUL}}}),
    Attack("legacy model_id", "POST", "{legacy}", ("body", "model_id"),
           {"session_type": "learning", "model_id": f"m{NUL}"}),
    Attack("legacy widget answer", "POST", "{legacy}/{session}/respond",
           ("body", "response", "text"),
           {"tool_call_id": "divide-144-by-12", "response": {"text": f"1{NUL}2"}}, answering=True),
    Attack("legacy terminate reason", "DELETE", "{legacy}/{session}", ("query", "reason"),
           params={"reason": f"done{NUL}"}, answering=True),
    Attack("legacy session id", "GET", "{legacy}/s%00", ("path", "session_id")),
]  # fmt: skip


async def send(api: InProcessApi, at: Scene, attack: Attack) -> httpx.Response:
    path = attack.path.format(url=at.url, session=at.session_id, legacy=LEGACY)
    return await api.http.request(
        attack.method, path, json=attack.body, params=attack.params, headers=as_user(at.owner)
    )


@pytest.mark.parametrize("attack", NUL_ATTACKS, ids=lambda attack: attack.name)
async def test_a_nul_character_is_refused_and_the_projector_goes_on(
    api_on_each_read_model: InProcessApi, attack: Attack
) -> None:
    api = api_on_each_read_model
    at = await scene(api, answering=attack.answering)
    was = await before(api, at)

    assert_invalid(await send(api, at, attack), *attack.loc)

    await assert_unaffected(api, at, was)


# ---------------------------------------------------------------------- other characters


@pytest.mark.parametrize(
    "text", ["\x07bell", "\x1b[31mred", "next\x85line", "\x7f", "C1\x9b"], ids=repr
)
async def test_control_characters_are_refused_in_a_name(api: InProcessApi, text: str) -> None:
    at = await scene(api, answering=False)
    was = await before(api, at)

    refused = await api.http.post(
        "/api/agents", json={"agent_type": "coach", "name": text}, headers=as_user(at.owner)
    )

    assert_invalid(refused, "body", "name")
    await assert_unaffected(api, at, was)


async def test_a_lone_surrogate_is_refused(api: InProcessApi) -> None:
    """``\\ud800`` is valid JSON but no UTF-8: stored, it stopped even SQLite's projector."""
    at = await scene(api, answering=False)
    was = await before(api, at)

    refused = await api.http.patch(
        f"{at.url}/preferences",
        content='{"changes": {"language": "\\ud800"}}',
        headers={**as_user(at.owner), "content-type": "application/json"},
    )

    assert_invalid(refused, "body", "changes", "language")
    await assert_unaffected(api, at, was)


async def test_a_multi_line_system_prompt_is_fine_but_not_a_multi_line_reason(
    api: InProcessApi,
) -> None:
    at = await scene(api, answering=False)
    started = await api.http.post(
        f"{at.url}/sessions",
        json={"system_prompt": "Be brief.\n\tUse examples.\r\n"},
        headers=as_user(at.owner),
    )
    assert started.status_code == 201, started.text
    was = await before(api, at)

    refused = await api.http.delete(
        f"{at.url}/session", params={"reason": "two\nlines"}, headers=as_user(at.owner)
    )

    assert_invalid(refused, "query", "reason")
    await assert_unaffected(api, at, was)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
async def test_non_finite_numbers_are_refused(api: InProcessApi, literal: str) -> None:
    """Python's JSON parser reads them, but they are not JSON: no store could keep them."""
    at = await scene(api, answering=True)
    was = await before(api, at)
    json_headers = {**as_user(at.owner), "content-type": "application/json"}

    preference = await api.http.patch(
        f"{at.url}/preferences", content=f'{{"changes": {{"x": {literal}}}}}', headers=json_headers
    )
    timed = await api.http.post(
        f"{at.url}/session/respond",
        content='{"tool_call_id": "divide-144-by-12", "response": {"text": "12"},'
        f' "response_time_ms": {literal}}}',
        headers=json_headers,
    )

    assert_invalid(preference, "body", "changes", "x")
    assert_invalid(timed, "body", "response_time_ms")
    await assert_unaffected(api, at, was)


# ---------------------------------------------------------------------- sizes


LONG = "x" * 201
SIZE_ATTACKS = [
    Attack("user id", "POST", "{url}/assignments", ("body", "user_id"),
           {"user_id": LONG, "role": "observer"}),
    Attack("user id with a blank", "POST", "{url}/assignments", ("body", "user_id"),
           {"user_id": "bob smith", "role": "observer"}),
    Attack("tool call id", "POST", "{url}/session/respond", ("body", "tool_call_id"),
           {"tool_call_id": LONG, "response": {"text": "12"}}, answering=True),
    Attack("preference key", "PATCH", "{url}/preferences", ("body", "changes"),
           {"changes": {"k" * 65: 1}}),
    Attack("preference string", "PATCH", "{url}/preferences", ("body", "changes", "notes"),
           {"changes": {"notes": "x" * 20_001}}),
    Attack("too many preferences", "PATCH", "{url}/preferences", ("body", "changes"),
           {"changes": {f"k{i}": i for i in range(65)}}),
    Attack("preferences too large", "PATCH", "{url}/preferences", ("body", "changes"),
           {"changes": {"a": "x" * 17_000, "b": "y" * 17_000}}),
    Attack("deep preference", "PATCH", "{url}/preferences", ("body", "changes", "deep"),
           {"changes": {"deep": [[[[[[[[[1]]]]]]]]]}}),
    Attack("long list", "PATCH", "{url}/preferences", ("body", "changes", "many"),
           {"changes": {"many": list(range(257))}}),
    Attack("huge integer", "PATCH", "{url}/preferences", ("body", "changes", "n"),
           {"changes": {"n": 2**63}}),
    Attack("deep answer", "POST", "{url}/session/respond", ("body", "response"),
           {"tool_call_id": "divide-144-by-12", "response": {"text": [[[[[[[[["12"]]]]]]]]]}},
           answering=True),
    Attack("wide answer", "POST", "{url}/session/respond", ("body", "response"),
           {"tool_call_id": "divide-144-by-12", "response": {f"k{i}": 1 for i in range(65)}},
           answering=True),
    Attack("config.extra too large", "POST", "{url}/sessions", ("body", "config", "extra"),
           {"config": {"extra": {"a": "x" * 17_000, "b": "y" * 17_000, "c": "z" * 17_000}}}),
    Attack("config.model_id", "POST", "{url}/sessions", ("body", "config", "model_id"),
           {"config": {"model_id": LONG}}),
    Attack("time limit", "POST", "{url}/sessions", ("body", "config", "time_limit_seconds"),
           {"config": {"time_limit_seconds": 10**20}}),
    Attack("max items", "POST", "{url}/sessions", ("body", "config", "max_items"),
           {"config": {"max_items": 10**20}}),
    Attack("response time", "POST", "{url}/session/respond", ("body", "response_time_ms"),
           {"tool_call_id": "divide-144-by-12", "response": {"text": "12"},
            "response_time_ms": 1e300}, answering=True),
    Attack("legacy system prompt", "POST", "{legacy}", ("body", "system_prompt"),
           {"session_type": "learning", "system_prompt": "x" * 20_001}),
    Attack("legacy tool call id", "POST", "{legacy}/{session}/respond", ("body", "tool_call_id"),
           {"tool_call_id": LONG, "response": {"text": "12"}}, answering=True),
    Attack("legacy session id", "GET", "{legacy}/" + "s" * 201, ("path", "session_id")),
]  # fmt: skip


@pytest.mark.parametrize("attack", SIZE_ATTACKS, ids=lambda attack: attack.name)
async def test_oversize_and_overdeep_input_is_refused_naming_the_field(
    roomy: InProcessApi, attack: Attack
) -> None:
    at = await scene(roomy, answering=attack.answering)
    was = await before(roomy, at)

    assert_invalid(await send(roomy, at, attack), *attack.loc)

    await assert_unaffected(roomy, at, was)


async def test_preferences_cannot_grow_past_the_bound_a_patch_at_a_time(
    roomy: InProcessApi,
) -> None:
    """Each event holds the whole map: many small patches must not build a huge one."""
    at = await scene(roomy, answering=False)
    for batch in range(2):
        changes = {f"k{batch}-{i}": i for i in range(32)}
        kept = await roomy.http.patch(
            f"{at.url}/preferences", json={"changes": changes}, headers=as_user(at.owner)
        )
        assert kept.status_code == 200, kept.text
    was = await before(roomy, at)

    refused = await roomy.http.patch(
        f"{at.url}/preferences", json={"changes": {"one-more": 1}}, headers=as_user(at.owner)
    )

    assert_refused_command(refused, "64")
    await assert_unaffected(roomy, at, was)
    removed = await roomy.http.patch(
        f"{at.url}/preferences", json={"changes": {"k0-0": None}}, headers=as_user(at.owner)
    )
    assert removed.status_code == 200, removed.text


# ---------------------------------------------------------------------- preferences


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("max_iterations", "x"),
        ("max_iterations", 0),
        ("memory_sessions", -1),
        ("temperature", 5),
        ("response_policy", "sometimes"),
        ("default_template", "no-such-template"),
        ("system_prompt", ""),
        ("server_tools", "calculator"),
        ("language", "x" * 65),
    ],
)
async def test_a_preference_the_profile_refuses_is_422_naming_it(
    api: InProcessApi, key: str, value: Any
) -> None:
    at = await scene(api, answering=False)
    was = await before(api, at)

    refused = await api.http.patch(
        f"{at.url}/preferences",
        json={"changes": {key: value, "theme": "dark"}},
        headers=as_user(at.owner),
    )

    assert_refused_command(refused, key)
    await assert_unaffected(api, at, was)
    started = await api.http.post(f"{at.url}/sessions", json={}, headers=as_user(at.owner))
    assert started.status_code == 201, started.text


async def test_a_new_agent_with_a_preference_its_profile_refuses_is_422(
    api: InProcessApi,
) -> None:
    at = await scene(api, answering=False)
    was = await before(api, at)

    refused = await api.http.post(
        "/api/agents",
        json={"agent_type": "coach", "preferences": {"max_iterations": "x"}},
        headers=as_user(at.owner),
    )

    body = assert_invalid(refused, "body", "preferences", "max_iterations")
    assert "max_iterations" in str(body["errors"])
    await assert_unaffected(api, at, was)


async def test_a_bad_preference_stored_before_the_check_falls_back_to_the_default(
    api: InProcessApi,
) -> None:
    """Events written before preferences were checked stay in the log: the agent still
    starts, answers and drives, on its type's defaults for the keys its profile refuses,
    and its owner may change other keys and repair the bad ones."""
    at = await scene(api, answering=False)
    await api.application.execute(
        commands.UpdatePreferences(
            agent_id=at.agent_id,
            changes={"max_iterations": "x", "response_policy": "sometimes", "theme": "dark"},
        )
    )
    owner = as_user(at.owner)

    started = await api.http.post(f"{at.url}/sessions", json={}, headers=owner)
    assert started.status_code == 201, started.text
    pending = started.json()["session"]["pending_action"]
    answered = await api.http.post(
        f"{at.url}/session/respond",
        json={
            "tool_call_id": pending["tool_call_id"],
            "response": right_answer(get_template(TEMPLATE).item(pending["tool_call_id"])),
        },
        headers=owner,
    )
    assert answered.status_code == 200, answered.text
    other = await api.http.patch(
        f"{at.url}/preferences", json={"changes": {"language": "fr"}}, headers=owner
    )
    assert other.status_code == 200, other.text
    repaired = await api.http.patch(
        f"{at.url}/preferences",
        json={"changes": {"max_iterations": 4, "response_policy": None}},
        headers=owner,
    )
    assert repaired.status_code == 200, repaired.text
    assert repaired.json()["preferences"] == {
        "max_iterations": 4,
        "theme": "dark",
        "language": "fr",
    }
    await settled(api)


# ---------------------------------------------------------------------- session configs


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"completion_criteria": {"pass_mark": 5}}, "completion_criteria.pass_mark"),
        ({"completion_criteria": {"pass_mark": "high"}}, "completion_criteria.pass_mark"),
        ({"completion_criteria": {"min_items": 2}}, "completion_criteria.min_items"),
        ({"completion_criteria": {"max_items": 99}}, "max_items 99"),
        ({"completion_criteria": {"stop_early_when_passed": "yes"}}, "stop_early_when_passed"),
        (
            {"template_id": "daily-reflection", "completion_criteria": {"pass_mark": 0.5}},
            "completion_criteria",
        ),
        (
            {
                "template_id": "daily-reflection",
                "completion_criteria": {"stop_early_when_failed": True},
            },
            "completion_criteria",
        ),
        ({"template_id": "no-such-template"}, "no-such-template"),
    ],
)
async def test_a_session_config_that_would_fail_later_is_refused_at_the_start(
    api: InProcessApi, config: dict[str, Any], named: str
) -> None:
    at = await scene(api, answering=False)
    was = await before(api, at)

    refused = await api.http.post(
        f"{at.url}/sessions", json={"config": config}, headers=as_user(at.owner)
    )
    legacy = await api.http.post(
        LEGACY, json={"session_type": "learning", "config": config}, headers=as_user(at.owner)
    )

    assert_refused_command(refused, named)
    assert_refused_command(legacy, named)
    await assert_unaffected(api, at, was)
    started = await api.http.post(
        f"{at.url}/sessions",
        json={
            "config": {"completion_criteria": {"pass_mark": 0.5, "stop_early_when_passed": True}}
        },
        headers=as_user(at.owner),
    )
    assert started.status_code == 201, started.text


# ---------------------------------------------------------------------- terminate reasons


@pytest.mark.parametrize("reason", ["", "x" * 501], ids=["empty", "501 characters"])
@pytest.mark.parametrize("route", ["agent", "legacy"])
async def test_a_terminate_reason_out_of_bounds_is_422_and_the_session_goes_on(
    api: InProcessApi, route: str, reason: str
) -> None:
    at = await scene(api, answering=True)
    was = await before(api, at)
    path = f"{at.url}/session" if route == "agent" else f"{LEGACY}/{at.session_id}"

    refused = await api.http.delete(path, params={"reason": reason}, headers=as_user(at.owner))

    assert_invalid(refused, "query", "reason")
    await assert_unaffected(api, at, was)
    ended = await api.http.delete(path, params={"reason": "x" * 500}, headers=as_user(at.owner))
    assert ended.status_code == 200, ended.text
