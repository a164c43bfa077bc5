"""Signing in to the web UI with OIDC: authorization code + PKCE against a Keycloak-like
provider (tests/support/fake_oidc_provider.py), then using the API with its RS256 token.

Its own module: Serve runs one app per Ray instance, so this deployment must not overlap
test_web_ui's.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.fake_oidc_provider import FakeOidcProvider, running_fake_oidc

from .test_web_ui import SCREENSHOTS
from .web_support import run_e2e, web_service

CLIENT_ID = "agenthost-web"


@pytest.fixture(scope="module")
def idp() -> Iterator[FakeOidcProvider]:
    with running_fake_oidc() as provider:
        yield provider


@pytest.fixture(scope="module")
def oidc_env(
    ray_instance: None, tmp_path_factory: pytest.TempPathFactory, idp: FakeOidcProvider
) -> Iterator[dict[str, str]]:
    auth = {"AGENTHOST_AUTH_OIDC_ISSUER": idp.issuer, "AGENTHOST_AUTH_CLIENT_ID": CLIENT_ID}
    with web_service(tmp_path_factory.mktemp("oidc"), auth_env=auth) as url:
        yield {"AGENTHOST_URL": url, "AGENTHOST_ISSUER": idp.issuer}


def test_oidc_sign_in_with_pkce(oidc_env: dict[str, str], idp: FakeOidcProvider) -> None:
    run_e2e("oidc.test.mjs", oidc_env, SCREENSHOTS)
    # The browser proved possession of the verifier behind the challenge it sent.
    assert [(e.client_id, e.verifier_matched) for e in idp.exchanges] == [(CLIENT_ID, True)]
