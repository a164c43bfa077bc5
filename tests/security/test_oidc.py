"""OIDC mode over HTTP, against the Keycloak-like provider's JWKS: a token the realm signed for
another of its clients, an ID token, or a client role of another client gets nothing here.

Keycloak gives every client's access tokens ``aud: account``, so only ``azp`` (the client the
token was issued to) or an audience mapper's ``aud`` says a token is for this API. Every refusal
is a 4xx problem+json; nothing is written, the victim's agent reads back as it was, the
projector has caught up, and another tenant's session is still served.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from serve_app.auth import Authenticator, AuthSettings
from tests.security.aftermath import settled
from tests.support.api_client import PROBLEM
from tests.support.fake_oidc_provider import FakeOidcProvider, running_fake_oidc
from tests.support.inprocess_api import InProcessApi

API_CLIENT = "agenthost-api"
WEB_CLIENT = "agenthost-web"
OTHER_CLIENT = "reporting-app"
ADMIN_ROLE = "agenthost-admin"


@pytest.fixture(scope="module")
def idp() -> Iterator[FakeOidcProvider]:
    with running_fake_oidc() as provider:
        yield provider


@pytest.fixture
def oidc(api: InProcessApi, idp: FakeOidcProvider, monkeypatch: pytest.MonkeyPatch) -> InProcessApi:
    """The in-process API checking tokens against the provider: the API's client holds the
    admin role, the web UI signs in at its own public client."""
    for name in list(os.environ):
        if name.startswith("AGENTHOST_AUTH_"):
            monkeypatch.delenv(name)
    api.services.authenticator = Authenticator(
        AuthSettings(
            _env_file=None,
            oidc_issuer=idp.issuer,
            client_id=API_CLIENT,
            ui_client_id=WEB_CLIENT,
            admin_role=ADMIN_ROLE,
        )
    )
    return api


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass(frozen=True)
class Victim:
    """Olivia's tutor with a session running; Tess, a tenant with a session of her own."""

    web: dict[str, str]
    agent_id: str
    tenant: dict[str, str]
    tenant_agent: str

    @property
    def url(self) -> str:
        return f"/api/agents/{self.agent_id}"


async def victim(api: InProcessApi, idp: FakeOidcProvider) -> Victim:
    olivia = bearer(idp.token("olivia", WEB_CLIENT))
    tess = bearer(idp.token("tess", WEB_CLIENT))
    agents = []
    for who in (olivia, tess):
        created = await api.http.post("/api/agents", json={"agent_type": "tutor"}, headers=who)
        assert created.status_code == 201, created.text
        agent_id = created.json()["id"]
        started = await api.http.post(f"/api/agents/{agent_id}/sessions", json={}, headers=who)
        assert started.status_code == 201, started.text
        agents.append(agent_id)
    return Victim(web=olivia, agent_id=agents[0], tenant=tess, tenant_agent=agents[1])


async def snapshot(api: InProcessApi, victim: Victim) -> tuple[int, Any, Any]:
    position = await settled(api)
    agent = await api.http.get(victim.url, headers=victim.web)
    session = await api.http.get(f"{victim.url}/session", headers=victim.web)
    assert (agent.status_code, session.status_code) == (200, 200)
    return position, agent.json(), session.json()


async def assert_unaffected(api: InProcessApi, victim: Victim, was: tuple[int, Any, Any]) -> None:
    assert await snapshot(api, victim) == was, "the refused request changed something"
    served = await api.http.get(f"/api/agents/{victim.tenant_agent}/session", headers=victim.tenant)
    assert served.status_code == 200, served.text
    assert served.json()["session"]["pending_action"] is not None


def assert_unauthorized(response: httpx.Response, reason: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == "unauthorized"
    assert f'error_description="{reason}"' in response.headers["www-authenticate"]


async def test_a_token_the_realm_minted_for_another_client_is_refused(
    oidc: InProcessApi, idp: FakeOidcProvider
) -> None:
    """Olivia's own token, but from the realm's reporting app: whoever holds it there (the app,
    its logs, its XSS) must not be able to act as her on this API."""
    target = await victim(oidc, idp)
    was = await snapshot(oidc, target)
    stolen = bearer(idp.token("olivia", OTHER_CLIENT))

    attempts = [
        await oidc.http.get("/api/agents", headers=stolen),
        await oidc.http.get(target.url, headers=stolen),
        await oidc.http.delete(f"{target.url}/session", headers=stolen),
        await oidc.http.post("/api/agents", json={"agent_type": "coach"}, headers=stolen),
    ]

    for response in attempts:
        assert_unauthorized(response, "token audience not accepted")
    await assert_unaffected(oidc, target, was)


async def test_a_token_with_the_apis_audience_from_any_client_is_accepted(
    api: InProcessApi, idp: FakeOidcProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With AGENTHOST_AUTH_AUDIENCE set, an audience mapper is how another client gets in."""
    for name in list(os.environ):
        if name.startswith("AGENTHOST_AUTH_"):
            monkeypatch.delenv(name)
    api.services.authenticator = Authenticator(
        AuthSettings(_env_file=None, oidc_issuer=idp.issuer, audience=API_CLIENT)
    )
    mapped = bearer(idp.token("olivia", OTHER_CLIENT, aud=["account", API_CLIENT]))
    unmapped = bearer(idp.token("olivia", WEB_CLIENT))

    listed = await api.http.get("/api/agents", headers=mapped)

    assert listed.status_code == 200, listed.text
    assert_unauthorized(
        await api.http.get("/api/agents", headers=unmapped), "token audience not accepted"
    )


async def test_an_id_token_is_no_bearer_for_the_api(
    oidc: InProcessApi, idp: FakeOidcProvider
) -> None:
    target = await victim(oidc, idp)
    was = await snapshot(oidc, target)
    id_token = bearer(idp.id_token("olivia", WEB_CLIENT))

    refused = await oidc.http.delete(f"{target.url}/session", headers=id_token)

    assert_unauthorized(refused, "token is not an access token")
    await assert_unaffected(oidc, target, was)


async def test_only_a_client_role_of_the_apis_client_makes_an_admin(
    oidc: InProcessApi, idp: FakeOidcProvider
) -> None:
    """Any client of a realm can define an ``agenthost-admin`` role of its own and grant it;
    only the role of AGENTHOST_AUTH_CLIENT_ID's client counts."""
    target = await victim(oidc, idp)
    was = await snapshot(oidc, target)
    pretender = bearer(idp.token("mallory", WEB_CLIENT, client_roles={OTHER_CLIENT: [ADMIN_ROLE]}))
    admin = bearer(idp.token("ada", WEB_CLIENT, client_roles={API_CLIENT: [ADMIN_ROLE]}))

    hidden = await oidc.http.get(target.url, headers=pretender)
    ended = await oidc.http.delete(f"{target.url}/session", headers=pretender)

    for response in (hidden, ended):
        assert response.status_code == 404, response.text
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["code"] == "agent_not_found"
    await assert_unaffected(oidc, target, was)
    seen = await oidc.http.get(target.url, headers=admin)
    assert seen.status_code == 200, seen.text
    assert seen.json()["id"] == target.agent_id
