"""The role matrix over HTTP: what a shared, mentee or observer user, or a stranger, tries on
someone else's agent, and unassigning (by the owner, or leaving).

Every refusal is a 4xx problem+json; nothing is written (the log's last position stays), the
owner's agent reads back as it was, the projector has caught up, and another tenant's session
is still served.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import httpx
import pytest

from execution.templates.loader import get_template
from execution.templates.model import right_answer
from tests.security.aftermath import AgentAsItWas, as_it_is, assert_as_it_was, settled
from tests.support.api_client import PROBLEM, as_user, read_sse
from tests.support.api_flows import TEMPLATE, new_tutor, new_user
from tests.support.inprocess_api import InProcessApi


@dataclass(frozen=True)
class Team:
    """Olga's tutor, shared with three users in three roles; Tess, a tenant of her own."""

    agent_id: str
    owner: str
    shared: str
    mentee: str
    observer: str
    stranger: str
    tenant: str
    tenant_agent: str
    tenant_session: str

    @property
    def url(self) -> str:
        return f"/api/agents/{self.agent_id}"


async def team(api: InProcessApi) -> Team:
    http = api.http
    owner, shared, mentee, observer, stranger, tenant = (
        new_user(name) for name in ("olga", "sam", "mia", "otto", "eve", "tess")
    )
    agent_id = await new_tutor(http, owner)
    for user, role in ((shared, "shared"), (mentee, "mentee"), (observer, "observer")):
        assigned = await http.post(
            f"/api/agents/{agent_id}/assignments",
            json={"user_id": user, "role": role},
            headers=as_user(owner),
        )
        assert assigned.status_code == 201, assigned.text
    tenant_agent = await new_tutor(http, tenant)
    started = await http.post(
        f"/api/agents/{tenant_agent}/sessions", json={}, headers=as_user(tenant)
    )
    assert started.status_code == 201, started.text
    await settled(api)
    return Team(
        agent_id=agent_id,
        owner=owner,
        shared=shared,
        mentee=mentee,
        observer=observer,
        stranger=stranger,
        tenant=tenant,
        tenant_agent=tenant_agent,
        tenant_session=started.json()["session"]["session_id"],
    )


async def before(api: InProcessApi, team: Team) -> AgentAsItWas:
    """What the attack must leave as it is: the log, the owner's agent, its session."""
    return await as_it_is(api, team.url, as_user(team.owner))


async def assert_unaffected(api: InProcessApi, team: Team, was: AgentAsItWas) -> None:
    await assert_as_it_was(api, team.url, as_user(team.owner), was)
    await assert_tenant_served(api, team)


async def assert_tenant_served(api: InProcessApi, team: Team) -> None:
    served = await api.http.get(
        f"/api/agents/{team.tenant_agent}/session", headers=as_user(team.tenant)
    )
    assert served.status_code == 200, served.text
    assert served.json()["session"]["session_id"] == team.tenant_session
    assert served.json()["session"]["pending_action"] is not None


def assert_refused(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert (body["status"], body["code"]) == (status, code)
    return body


def assert_forbidden(response: httpx.Response, team: Team, role: str) -> None:
    """403 naming the role and the agent, and no one's user id."""
    detail = assert_refused(response, 403, "forbidden")["detail"]
    assert role in detail
    assert team.agent_id in detail
    for user in (team.owner, team.shared, team.mentee, team.observer, team.stranger):
        assert user not in detail


async def listed(http: httpx.AsyncClient, user: str, after: int = 0) -> list[str]:
    found = await http.get("/api/agents", params={"after": after}, headers=as_user(user))
    assert found.status_code == 200, found.text
    return [agent["id"] for agent in found.json()]


def members(agent: dict[str, Any]) -> dict[str, str]:
    return {a["user_id"]: a["role"] for a in agent["assignments"]}


# ---------------------------------------------------------------------- shared


async def test_a_shared_user_cannot_assign_a_third_party(api: InProcessApi) -> None:
    crew = await team(api)
    accomplice = new_user("mallory")
    was = await before(api, crew)

    for role in ("observer", "shared", "mentee"):
        refused = await api.http.post(
            f"{crew.url}/assignments",
            json={"user_id": accomplice, "role": role},
            headers=as_user(crew.shared),
        )
        assert_forbidden(refused, crew, "shared")

    await assert_unaffected(api, crew, was)
    assert accomplice not in members(was.agent)
    assert await listed(api.http, accomplice) == []
    hidden = await api.http.get(crew.url, headers=as_user(accomplice))
    assert_refused(hidden, 404, "agent_not_found")


@pytest.mark.parametrize(
    "changes",
    [
        {"system_prompt": "Reveal every answer."},
        {"server_tools": ["fetch_url"]},
        {"max_iterations": 100},
        {"memory_sessions": 50},
        {"temperature": 2},
        {"default_template": "python-basics"},
        {"response_policy": "queue"},
        {"system_prompt": None},
        {"theme": "dark", "system_prompt": "smuggled in with a personal key"},
    ],
    ids=lambda changes: "+".join(changes),
)
async def test_a_shared_user_cannot_rewrite_the_agents_profile(
    api: InProcessApi, changes: dict[str, Any]
) -> None:
    crew = await team(api)
    owner_set = await api.http.patch(
        f"{crew.url}/preferences",
        json={"changes": {"system_prompt": "Be kind.", "language": "en"}},
        headers=as_user(crew.owner),
    )
    assert owner_set.status_code == 200, owner_set.text
    was = await before(api, crew)

    refused = await api.http.patch(
        f"{crew.url}/preferences", json={"changes": changes}, headers=as_user(crew.shared)
    )

    assert_forbidden(refused, crew, "shared")
    await assert_unaffected(api, crew, was)
    assert was.agent["preferences"] == {"system_prompt": "Be kind.", "language": "en"}


@pytest.mark.parametrize("role", ["shared", "mentee"])
async def test_members_who_use_the_agent_may_set_personal_preferences(
    api: InProcessApi, role: str
) -> None:
    crew = await team(api)
    user = crew.shared if role == "shared" else crew.mentee

    changed = await api.http.patch(
        f"{crew.url}/preferences",
        json={"changes": {"theme": "dark", "language": "fr"}},
        headers=as_user(user),
    )

    assert changed.status_code == 200, changed.text
    assert changed.json()["preferences"] == {"theme": "dark", "language": "fr"}
    await assert_tenant_served(api, crew)


async def test_a_shared_user_cannot_archive_the_agent(api: InProcessApi) -> None:
    crew = await team(api)
    was = await before(api, crew)

    refused = await api.http.post(
        f"{crew.url}/archive", json={"reason": "mine now"}, headers=as_user(crew.shared)
    )

    assert_forbidden(refused, crew, "shared")
    await assert_unaffected(api, crew, was)
    assert was.agent["status"] == "active"
    started = await api.http.post(f"{crew.url}/sessions", json={}, headers=as_user(crew.owner))
    assert started.status_code == 201, started.text
    assert started.json()["session"]["pending_action"] is not None


# ---------------------------------------------------------------------- mentee


@pytest.mark.parametrize(
    "body",
    [
        {"system_prompt": "Tell me every answer."},
        {"config": {"max_items": 1}},
        {"config": {"time_limit_seconds": 5}},
        {"config": {"completion_criteria": {"pass_mark": 0}}},
        {"config": {"allow_skip": True}},
        {"config": {"model_id": "gpt-4o"}},
        {"config": {"extra": {"hint": "all"}}},
        {"config": {"template_id": TEMPLATE, "allow_back": True}},
    ],
    ids=lambda body: "+".join(body.get("config", body)),
)
async def test_a_mentee_cannot_start_a_session_with_overrides(
    api: InProcessApi, body: dict[str, Any]
) -> None:
    crew = await team(api)
    was = await before(api, crew)

    refused = await api.http.post(f"{crew.url}/sessions", json=body, headers=as_user(crew.mentee))

    assert_forbidden(refused, crew, "mentee")
    await assert_unaffected(api, crew, was)
    assert was.session["session"] is None


async def test_a_mentee_starts_with_the_defaults_and_a_shared_user_with_overrides(
    api: InProcessApi,
) -> None:
    crew = await team(api)
    defaults = {"session_type": "learning", "config": {"template_id": TEMPLATE}}
    mentee = await api.http.post(
        f"{crew.url}/sessions", json=defaults, headers=as_user(crew.mentee)
    )
    assert mentee.status_code == 201, mentee.text
    ended = await api.http.delete(f"{crew.url}/session", headers=as_user(crew.mentee))
    assert ended.status_code == 200, ended.text

    shared = await api.http.post(
        f"{crew.url}/sessions",
        json={"config": {"template_id": TEMPLATE, "max_items": 2}},
        headers=as_user(crew.shared),
    )

    assert shared.status_code == 201, shared.text
    assert shared.json()["session"]["config"]["max_items"] == 2
    await assert_tenant_served(api, crew)


# ---------------------------------------------------------------------- observer


async def test_an_observer_cannot_start_answer_or_end_a_session(api: InProcessApi) -> None:
    crew = await team(api)
    refused = await api.http.post(f"{crew.url}/sessions", json={}, headers=as_user(crew.observer))
    assert_forbidden(refused, crew, "observer")
    started = await api.http.post(f"{crew.url}/sessions", json={}, headers=as_user(crew.owner))
    assert started.status_code == 201, started.text
    pending = started.json()["session"]["pending_action"]
    item = get_template(TEMPLATE).item(pending["tool_call_id"])
    was = await before(api, crew)

    answer = {"tool_call_id": pending["tool_call_id"], "response": right_answer(item)}
    answered = await api.http.post(
        f"{crew.url}/session/respond", json=answer, headers=as_user(crew.observer)
    )
    assert_forbidden(answered, crew, "observer")
    ended = await api.http.delete(f"{crew.url}/session", headers=as_user(crew.observer))
    assert_forbidden(ended, crew, "observer")

    await assert_unaffected(api, crew, was)
    assert was.session["session"]["pending_action"] == pending
    by_owner = await api.http.post(
        f"{crew.url}/session/respond", json=answer, headers=as_user(crew.owner)
    )
    assert by_owner.status_code == 200, by_owner.text


# ---------------------------------------------------------------------- stranger


async def test_a_stranger_is_told_the_agent_does_not_exist_everywhere(api: InProcessApi) -> None:
    crew = await team(api)
    started = await api.http.post(f"{crew.url}/sessions", json={}, headers=as_user(crew.owner))
    pending = started.json()["session"]["pending_action"]
    was = await before(api, crew)
    missing = str(uuid4())
    attempts: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", "", None),
        ("GET", "/session", None),
        ("GET", "/sessions", None),
        ("GET", "/stream", None),
        ("POST", "/sessions", {}),
        ("POST", "/session/respond", {"tool_call_id": pending["tool_call_id"], "response": 1}),
        ("DELETE", "/session", None),
        ("PATCH", "/preferences", {"changes": {"theme": "dark"}}),
        ("PATCH", "/preferences", {"changes": {"system_prompt": "mine"}}),
        ("POST", "/assignments", {"user_id": crew.stranger, "role": "shared"}),
        ("DELETE", f"/assignments/{crew.shared}", None),
        ("DELETE", f"/assignments/{crew.stranger}", None),
        ("POST", "/archive", {"reason": "mine now"}),
    ]

    for method, path, body in attempts:
        hidden = await api.http.request(
            method, crew.url + path, json=body, headers=as_user(crew.stranger)
        )
        absent = await api.http.request(
            method, f"/api/agents/{missing}{path}", json=body, headers=as_user(crew.stranger)
        )
        refused = assert_refused(hidden, 404, "agent_not_found")
        assert json.loads(json.dumps(refused).replace(crew.agent_id, missing)) == absent.json()

    await assert_unaffected(api, crew, was)
    assert await listed(api.http, crew.stranger) == []


# ---------------------------------------------------------------------- unassigning


@pytest.mark.parametrize("by_admin", [False, True], ids=["owner", "admin"])
async def test_an_unassigned_member_loses_the_agent(
    api_on_each_read_model: InProcessApi, by_admin: bool
) -> None:
    api = api_on_each_read_model
    crew = await team(api)
    assert crew.agent_id in await listed(api.http, crew.mentee)
    who = as_user(new_user("root"), "admin") if by_admin else as_user(crew.owner)

    removed = await api.http.delete(f"{crew.url}/assignments/{crew.mentee}", headers=who)

    assert removed.status_code == 200, removed.text
    agent = removed.json()
    assert crew.mentee not in members(agent)
    assert crew.mentee not in agent["member_user_ids"]
    assert members(agent) == {
        crew.owner: "primary",
        crew.shared: "shared",
        crew.observer: "observer",
    }
    assert crew.agent_id not in await listed(api.http, crew.mentee, after=agent["position"])
    attempts: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", "", None),
        ("POST", "/sessions", {}),
    ]
    for method, path, body in attempts:
        gone = await api.http.request(
            method, crew.url + path, json=body, headers=as_user(crew.mentee)
        )
        assert_refused(gone, 404, "agent_not_found")
    assert crew.agent_id in await listed(api.http, crew.shared)
    await settled(api)
    await assert_tenant_served(api, crew)


@pytest.mark.parametrize("role", ["shared", "mentee", "observer"])
async def test_a_member_may_leave(api_on_each_read_model: InProcessApi, role: str) -> None:
    api = api_on_each_read_model
    crew = await team(api)
    user = {"shared": crew.shared, "mentee": crew.mentee, "observer": crew.observer}[role]

    key = {"Idempotency-Key": str(uuid4())}
    url = f"{crew.url}/assignments/{user}"

    left = await api.http.delete(url, headers={**as_user(user), **key})

    assert left.status_code == 204, left.text
    assert left.content == b""
    position = await settled(api)
    retried = await api.http.delete(url, headers={**as_user(user), **key})
    assert_refused(retried, 404, "agent_not_found")  # a retry is checked as its caller is now
    assert await settled(api) == position
    assert crew.agent_id not in await listed(api.http, user)
    assert_refused(await api.http.get(crew.url, headers=as_user(user)), 404, "agent_not_found")
    agent = (await api.http.get(crew.url, headers=as_user(crew.owner))).json()
    assert user not in members(agent)
    assert len(members(agent)) == 3
    await settled(api)
    await assert_tenant_served(api, crew)


async def test_the_owner_cannot_leave_nor_be_unassigned(api: InProcessApi) -> None:
    crew = await team(api)
    was = await before(api, crew)

    for who in (as_user(crew.owner), as_user(new_user("root"), "admin")):
        refused = await api.http.delete(f"{crew.url}/assignments/{crew.owner}", headers=who)
        assert_refused(refused, 409, "owner_cannot_leave")

    await assert_unaffected(api, crew, was)
    assert members(was.agent)[crew.owner] == "primary"


@pytest.mark.parametrize("role", ["shared", "mentee", "observer"])
async def test_a_member_cannot_unassign_another(api: InProcessApi, role: str) -> None:
    crew = await team(api)
    user = {"shared": crew.shared, "mentee": crew.mentee, "observer": crew.observer}[role]
    was = await before(api, crew)

    for victim in (crew.owner, crew.shared, crew.mentee, crew.observer, new_user("nobody")):
        if victim == user:
            continue
        refused = await api.http.delete(f"{crew.url}/assignments/{victim}", headers=as_user(user))
        assert_forbidden(refused, crew, role)

    await assert_unaffected(api, crew, was)


async def test_unassigning_someone_not_assigned_is_a_conflict(api: InProcessApi) -> None:
    crew = await team(api)
    was = await before(api, crew)
    admin = new_user("root")
    attempts = [
        (as_user(crew.owner), new_user("nobody")),
        (as_user(admin, "admin"), new_user("nobody")),
        (as_user(admin, "admin"), admin),  # an admin sees every agent but has no role to leave
    ]

    for who, user in attempts:
        refused = await api.http.delete(f"{crew.url}/assignments/{user}", headers=who)
        assert_refused(refused, 409, "user_not_assigned")

    await assert_unaffected(api, crew, was)


async def test_an_unassign_is_applied_once_and_streamed(api: InProcessApi) -> None:
    crew = await team(api)
    key = {"Idempotency-Key": str(uuid4())}
    url = f"{crew.url}/assignments/{crew.observer}"

    first = await api.http.delete(url, headers={**as_user(crew.owner), **key})
    again = await api.http.delete(url, headers={**as_user(crew.owner), **key})

    assert (first.status_code, again.status_code) == (200, 200), again.text
    assert first.json() == again.json()
    events = await read_sse(api.http, f"{crew.url}/stream", as_user(crew.owner))
    unassigned = [e for e in events if e["event"] == "agent.user.unassigned.v1"]
    assert len(unassigned) == 1
    cloud_event = json.loads(unassigned[0]["data"])
    assert cloud_event["type"] == "agent.user.unassigned.v1"
    assert cloud_event["data"]["user_id"] == crew.observer
    assert cloud_event["data"]["unassigned_by"] == crew.owner
    assert int(unassigned[0]["id"]) == first.json()["position"]
    reassigned = await api.http.post(
        f"{crew.url}/assignments",
        json={"user_id": crew.observer, "role": "mentee"},
        headers=as_user(crew.owner),
    )
    assert reassigned.status_code == 201, reassigned.text
    assert members(reassigned.json())[crew.observer] == "mentee"


async def test_a_user_id_past_the_bound_is_refused_naming_it(api: InProcessApi) -> None:
    crew = await team(api)
    was = await before(api, crew)

    refused = await api.http.delete(
        f"{crew.url}/assignments/{'x' * 201}", headers=as_user(crew.owner)
    )

    body = assert_refused(refused, 422, "validation_failed")
    assert body["errors"][0]["loc"] == ["path", "user_id"]
    await assert_unaffected(api, crew, was)
