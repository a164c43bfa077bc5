"""The UI's files under /: headers, the API's problems left alone, and the unbuilt case."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from serve_app.app import create_app
from serve_app.auth import AuthSettings
from serve_app.web import content_security_policy, ui_config

DEV = AuthSettings(jwt_secret=SecretStr("s" * 40))
OIDC = AuthSettings(oidc_issuer="https://sso.example:8443/realms/agents", client_id="agents-api")


async def _no_services() -> Any:
    raise AssertionError("serving files needs no services")


def ui(web_dir: Path) -> httpx.AsyncClient:
    """The app in-process (no lifespan: serving files must need no services)."""
    app = create_app(_no_services, 65536, web_dir, DEV)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ui")


@pytest.fixture
def built(tmp_path: Path) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><div id=app></div>")
    (tmp_path / "assets" / "index-abc123.js").write_text("console.log(1)")
    return tmp_path


async def test_the_page_is_never_cached_and_hashed_assets_always_are(built: Path) -> None:
    http = ui(built)
    page = await http.get("/")
    assert page.status_code == 200
    assert "id=app" in page.text
    assert page.headers["cache-control"] == "no-cache"
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert page.headers["x-content-type-options"] == "nosniff"
    asset = await http.get("/assets/index-abc123.js")
    assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"


async def test_unknown_paths_stay_problems_not_pages(built: Path) -> None:
    http = ui(built)
    for path in ("/api/nope", "/assets/missing.js"):
        answer = await http.get(path)
        assert answer.status_code == 404
        assert answer.headers["content-type"] == "application/problem+json"


async def test_an_unbuilt_ui_says_how_to_build_it(tmp_path: Path) -> None:
    answer = await ui(tmp_path).get("/")
    assert answer.status_code == 503
    assert "make web" in answer.text


def test_the_policy_lets_the_page_reach_the_issuer_only_in_oidc_mode() -> None:
    assert "connect-src 'self';" in content_security_policy(DEV)
    assert "connect-src 'self' https://sso.example:8443;" in content_security_policy(OIDC)


def test_the_ui_signs_in_with_the_public_client() -> None:
    assert ui_config(DEV).auth_mode == "dev"
    assert ui_config(DEV).oidc is None
    oidc = ui_config(OIDC).oidc
    assert oidc is not None
    assert (oidc.issuer, oidc.client_id, oidc.scope) == (
        "https://sso.example:8443/realms/agents",
        "agents-api",
        "openid profile",
    )
    web_client = OIDC.model_copy(update={"ui_client_id": "agents-web"})
    assert ui_config(web_client).oidc.client_id == "agents-web"  # type: ignore[union-attr]
