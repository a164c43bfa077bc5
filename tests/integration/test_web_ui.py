"""The web UI in Debian's chromium, driven by playwright-core, against the service on Serve.

The specs live in web/e2e (JavaScript, node:test); each runs here as one test against a
service deployed on the shared Ray instance, with tokens minted for the users below. Set
AGENTHOST_UPDATE_SCREENSHOTS=1 to refresh the screenshots in docs/screenshots.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.api_client import token

from .web_support import ROOT, answers_env, run_e2e, web_service

USERS = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi")
"""The people of the specs; each spec keeps to its own agent types or users."""
ADMINS = ("admin",)
"""Users whose token carries the admin role (members.test.mjs)."""
SCREENSHOTS = (
    ROOT / "docs" / "screenshots"
    if os.environ.get("AGENTHOST_UPDATE_SCREENSHOTS") == "1"
    else ROOT / "var" / "screenshots"
)


@pytest.fixture(scope="module")
def web_env(
    ray_instance: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    with web_service(tmp_path_factory.mktemp("web")) as url:
        yield {
            "AGENTHOST_URL": url,
            **{f"AGENTHOST_TOKEN_{user.upper()}": token(user) for user in USERS},
            **{f"AGENTHOST_TOKEN_{user.upper()}": token(user, "admin") for user in ADMINS},
            **answers_env("arithmetic-basics", "python-basics"),
        }


@pytest.mark.parametrize(
    "spec",
    [
        "session.test.mjs",
        "widgets.test.mjs",
        "agents.test.mjs",
        "errors.test.mjs",
        "members.test.mjs",
    ],
)
def test_web_ui(spec: str, web_env: dict[str, str]) -> None:
    run_e2e(spec, web_env, SCREENSHOTS)
