"""The web UI's side of the app: its built files under /, and what it reads before sign-in.

The UI (``web/``, built by ``make web`` into ``web/dist``) is static: one HTML page and
hashed assets. The page is never cached (a new build is picked up at once); hashed assets are
immutable. Every UI response carries a Content-Security-Policy that allows only this origin
and, in OIDC mode, the issuer's, so nothing is ever fetched from a CDN.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from domain.enums import AgentType
from execution.templates.loader import load_templates
from serve_app.agents import PROBLEMS
from serve_app.auth import AuthSettings
from serve_app.dependencies import BackendDep, PrincipalDep

router = APIRouter(prefix="/api", tags=["ui"])

IMMUTABLE = "public, max-age=31536000, immutable"
NOT_BUILT = """<!doctype html><meta charset="utf-8"><title>Agent Host</title>
<h1>The web UI is not built</h1>
<p>Run <code>make web</code> (or <code>make run</code>, which builds it) and reload.
The API is up: see <a href="/docs">/docs</a>.</p>"""


class OidcClient(BaseModel):
    issuer: str
    client_id: str
    scope: str


class UiConfig(BaseModel):
    """What the page needs before anyone signs in (public: it holds no secret)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "auth_mode": "oidc",
                    "oidc": {
                        "issuer": "https://keycloak.example/realms/agents",
                        "client_id": "agenthost-web",
                        "scope": "openid profile",
                    },
                    "agent_types": ["tutor", "thought", "evaluator"],
                }
            ]
        }
    )

    auth_mode: str
    """``dev`` (paste or follow a development token link) or ``oidc`` (code flow + PKCE)."""
    oidc: OidcClient | None = None
    agent_types: list[AgentType]


class TemplateSummary(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "arithmetic-basics",
                    "title": "Arithmetic basics",
                    "description": "Eight questions on the four operations.",
                    "agent_type": "tutor",
                    "items": 8,
                    "time_limit_seconds": 900,
                }
            ]
        }
    )

    id: str
    title: str
    description: str
    agent_type: AgentType
    items: int
    time_limit_seconds: int | None


def ui_config(auth: AuthSettings) -> UiConfig:
    oidc = None
    if auth.oidc_issuer is not None:
        oidc = OidcClient(
            issuer=auth.oidc_issuer,
            client_id=auth.ui_client_id or auth.client_id or "agenthost-web",
            scope=auth.ui_scope,
        )
    return UiConfig(auth_mode="oidc" if oidc else "dev", oidc=oidc, agent_types=list(AgentType))


@router.get("/ui/config", summary="How the web UI signs in (public)")
async def get_ui_config(backend: BackendDep) -> UiConfig:
    return ui_config(backend.authenticator.settings)


@router.get(
    "/templates",
    summary="Session templates a session can be started from",
    responses={401: PROBLEMS[401]},
)
async def list_templates(_: PrincipalDep) -> list[TemplateSummary]:
    return [
        TemplateSummary(
            id=template.id,
            title=template.title,
            description=template.description,
            agent_type=template.agent_type,
            items=len(template.planned_items),
            time_limit_seconds=template.completion.time_limit_seconds,
        )
        for template in sorted(load_templates().values(), key=lambda t: t.title)
    ]


def content_security_policy(auth: AuthSettings) -> str:
    connect = ["'self'"]
    if auth.oidc_issuer is not None:
        issuer = urlsplit(auth.oidc_issuer)
        connect.append(f"{issuer.scheme}://{issuer.netloc}")
    return (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        f"connect-src {' '.join(connect)}; frame-ancestors 'none'; base-uri 'none'"
    )


class UiFiles(StaticFiles):
    """The built UI with cache and security headers."""

    def __init__(self, directory: Path, policy: str) -> None:
        super().__init__(directory=directory, html=True)
        self.policy = policy

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        immutable = path.startswith("assets/") and response.status_code == 200
        response.headers["Cache-Control"] = IMMUTABLE if immutable else "no-cache"
        response.headers["Content-Security-Policy"] = self.policy
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response


def mount_ui(app: FastAPI, web_dir: Path, auth: AuthSettings) -> None:
    """Serve ``web_dir`` under / (after every API route), or a page saying how to build it."""
    if (web_dir / "index.html").is_file():
        app.mount("/", UiFiles(web_dir, content_security_policy(auth)), name="ui")
        return

    @app.get("/", include_in_schema=False)
    async def not_built() -> HTMLResponse:
        return HTMLResponse(NOT_BUILT, status_code=503)
