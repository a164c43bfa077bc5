"""A Keycloak-like identity provider for browser tests: authorization code flow with PKCE.

It does what the web UI relies on and checks what a real provider checks: discovery, a login
form, one-time codes bound to the client, redirect URI and S256 code challenge, a token
endpoint that verifies the code verifier, RS256 tokens and their JWKS at Keycloak's paths.
CORS is open, as Keycloak's is for a client's web origins.

    with running_fake_oidc() as idp:
        idp.issuer  # AGENTHOST_AUTH_OIDC_ISSUER
        idp.exchanges  # every code exchange, with whether its verifier matched
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from .threaded_server import serving

REALM_PATH = "/realms/agents"
OIDC = "/protocol/openid-connect"
KID = "fake-idp-1"


@dataclass
class Exchange:
    client_id: str
    verifier_matched: bool


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    user: str


@dataclass
class FakeOidcProvider:
    issuer: str = ""
    key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))
    grants: dict[str, _Grant] = field(default_factory=dict)
    exchanges: list[Exchange] = field(default_factory=list)

    def app(self) -> Starlette:
        base = REALM_PATH + OIDC
        return Starlette(
            routes=[
                Route(REALM_PATH + "/.well-known/openid-configuration", self._discovery),
                Route(base + "/auth", self._login_form),
                Route(base + "/auth", self._login, methods=["POST"]),
                Route(base + "/token", self._token, methods=["POST"]),
                Route(base + "/certs", self._certs),
            ],
            middleware=[Middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["*"])],
        )

    async def _discovery(self, _: Request) -> Response:
        base = self.issuer + OIDC
        return JSONResponse(
            {
                "issuer": self.issuer,
                "authorization_endpoint": base + "/auth",
                "token_endpoint": base + "/token",
                "jwks_uri": base + "/certs",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "authorization_response_iss_parameter_supported": True,
            }
        )

    async def _login_form(self, request: Request) -> Response:
        query = request.query_params
        if query.get("response_type") != "code" or query.get("code_challenge_method") != "S256":
            return HTMLResponse("code flow with an S256 challenge only", status_code=400)
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in query.items()
        )
        return HTMLResponse(
            f"""<!doctype html><title>Sign in to agents</title><form method="post">{hidden}
            <label>Username <input name="username" autocomplete="username"></label>
            <button>Sign in</button></form>"""
        )

    async def _login(self, request: Request) -> Response:
        form = await _form(request)
        code = secrets.token_urlsafe(24)
        self.grants[code] = _Grant(
            client_id=str(form["client_id"]),
            redirect_uri=str(form["redirect_uri"]),
            challenge=str(form["code_challenge"]),
            user=str(form["username"]),
        )
        query = urlencode({"code": code, "state": str(form["state"]), "iss": self.issuer})
        return RedirectResponse(f"{form['redirect_uri']}?{query}", status_code=302)

    async def _token(self, request: Request) -> Response:
        form = await _form(request)
        grant = self.grants.pop(str(form.get("code")), None)  # one use only
        if (
            form.get("grant_type") != "authorization_code"
            or grant is None
            or grant.client_id != form.get("client_id")
            or grant.redirect_uri != form.get("redirect_uri")
        ):
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        digest = hashlib.sha256(str(form.get("code_verifier", "")).encode()).digest()
        matched = base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == grant.challenge
        self.exchanges.append(Exchange(grant.client_id, matched))
        if not matched:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        return JSONResponse(
            {
                "access_token": self.token(grant.user, grant.client_id),
                "id_token": self.id_token(grant.user, grant.client_id),
                "token_type": "Bearer",
                "expires_in": 300,
            },
            headers={"Cache-Control": "no-store"},
        )

    async def _certs(self, _: Request) -> Response:
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return JSONResponse({"keys": [{**jwk, "kid": KID, "use": "sig", "alg": "RS256"}]})

    def token(
        self,
        user: str,
        client_id: str,
        *,
        aud: str | Sequence[str] = "account",
        client_roles: Mapping[str, Sequence[str]] | None = None,
    ) -> str:
        """The access token a sign-in of ``user`` at ``client_id`` ends with: Keycloak's
        default ``aud`` (``account``) unless an audience mapper adds more, and the client
        roles of ``client_roles`` under ``resource_access``."""
        return self._sign(user, client_id, aud=aud, typ="Bearer", client_roles=client_roles)

    def id_token(self, user: str, client_id: str) -> str:
        """The ID token of that sign-in: addressed to the client itself, not to an API."""
        return self._sign(user, client_id, aud=client_id, typ="ID")

    def _sign(
        self,
        user: str,
        client_id: str,
        *,
        aud: str | Sequence[str],
        typ: str,
        client_roles: Mapping[str, Sequence[str]] | None = None,
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": f"sub-{user}",
            "aud": aud if isinstance(aud, str) else list(aud),
            "azp": client_id,
            "typ": typ,
            "iat": now,
            "exp": now + 300,
            "preferred_username": user,
            "realm_access": {"roles": ["user"]},
        }
        if client_roles is not None:
            claims["resource_access"] = {
                client: {"roles": list(roles)} for client, roles in client_roles.items()
            }
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": KID})


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded body (what forms and OAuth token requests send)."""
    return dict(parse_qsl((await request.body()).decode()))


@contextmanager
def running_fake_oidc() -> Iterator[FakeOidcProvider]:
    provider = FakeOidcProvider()
    with serving(provider.app(), "fake-oidc") as base:
        provider.issuer = base + REALM_PATH
        yield provider
