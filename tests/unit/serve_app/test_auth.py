"""Bearer JWTs are accepted only when signed, current and addressed to us, and the reasons a
token is refused never echo the token: HS256 (given or file-backed secret) and OIDC against a
real local JWKS endpoint."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from serve_app.auth import (
    Authenticator,
    AuthError,
    AuthSettings,
    AuthUnavailable,
    Principal,
    mint_dev_token,
    principal_dependency,
)

REPO = Path(__file__).resolve().parents[3]
SECRET = "s" * 40
CLIENT = "agenthost-api"
WEB_CLIENT = "agenthost-web"
OTHER_CLIENT = "reporting-app"
CERTS_PATH = "/realms/agents/protocol/openid-connect/certs"


@pytest.fixture(autouse=True)
def _no_ambient_auth_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("AGENTHOST_AUTH_"):
            monkeypatch.delenv(name)


def settings(**values: Any) -> AuthSettings:
    return AuthSettings(_env_file=None, **values)


def hs256(claims: dict[str, Any], secret: str = SECRET, **headers: Any) -> str:
    return jwt.encode(claims, secret, algorithm="HS256", headers=headers or None)


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {"sub": "user-1", "iat": now, "exp": now + 600}
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not None}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(header: dict[str, Any], payload: dict[str, Any], key: bytes | None) -> str:
    """A token built by hand, as an attacker would: PyJWT refuses to sign these."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    if key is None:
        return signing_input + "."
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


async def rejection(authenticator: Authenticator, header: str | None) -> AuthError:
    with pytest.raises(AuthError) as caught:
        await authenticator.authenticate(header)
    return caught.value


def assert_no_token_text(error: AuthError, token: str) -> None:
    for part in [token, *token.split(".")]:
        if part:
            assert part not in str(error)
            assert part not in error.detail
            assert part not in error.www_authenticate


# --- HS256 ---------------------------------------------------------------------------------


async def test_keycloak_style_roles_are_merged_into_the_principal() -> None:
    authenticator = Authenticator(settings(jwt_secret=SECRET, client_id=CLIENT))
    token = hs256(
        claims(
            preferred_username="alice",
            realm_access={"roles": ["learner", 7]},
            resource_access={CLIENT: {"roles": ["admin"]}, "other-client": {"roles": ["root"]}},
            roles=["tutor"],
        )
    )

    principal = await authenticator.authenticate(f"Bearer {token}")

    assert principal == Principal(
        user_id="user-1", username="alice", roles=frozenset({"learner", "admin", "tutor"})
    )
    assert principal.is_admin


async def test_username_falls_back_to_sub_and_admin_role_is_configurable() -> None:
    authenticator = Authenticator(settings(jwt_secret=SECRET, admin_role="operator"))

    principal = await authenticator.authenticate(f"Bearer {hs256(claims(roles=['admin']))}")

    assert principal.username == "user-1"
    assert not principal.is_admin


async def test_missing_header_gets_the_bare_challenge() -> None:
    error = await rejection(Authenticator(settings(jwt_secret=SECRET)), None)

    assert (error.status_code, error.detail) == (401, "missing bearer token")
    assert error.www_authenticate == 'Bearer realm="agenthost"'


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer a b", "abc.def.ghi"])
async def test_a_header_that_is_not_bearer_token_is_refused(header: str) -> None:
    error = await rejection(Authenticator(settings(jwt_secret=SECRET)), header)

    assert error.status_code == 401
    assert error.detail == "authorization header is not 'Bearer <token>'"
    assert 'error="invalid_request"' in error.www_authenticate
    assert_no_token_text(error, header.partition(" ")[2])


async def test_each_bad_token_is_refused_with_its_own_reason_and_never_echoed() -> None:
    authenticator = Authenticator(settings(jwt_secret=SECRET, audience="agenthost"))
    now = int(time.time())
    cases = {
        "token signature invalid": hs256(claims(aud="agenthost"), secret="x" * 40),
        "token expired": hs256(claims(aud="agenthost", iat=now - 7200, exp=now - 3600)),
        "token audience not accepted": hs256(claims(aud="someone-else")),
        "token lacks the aud claim": hs256(claims()),
        "token lacks the sub claim": hs256(claims(aud="agenthost", sub=None)),
        "token lacks the exp claim": hs256(claims(aud="agenthost", exp=None)),
        "token not yet valid": hs256(claims(aud="agenthost", nbf=now + 3600)),
        "token subject empty": hs256(claims(aud="agenthost", sub="")),
        "malformed token": "not-a-jwt",
    }

    for detail, token in cases.items():
        error = await rejection(authenticator, f"Bearer {token}")
        assert (error.status_code, error.detail) == (401, detail)
        assert error.www_authenticate == (
            f'Bearer realm="agenthost", error="invalid_token", error_description="{detail}"'
        )
        assert_no_token_text(error, token)


async def test_expiry_allows_the_configured_clock_skew() -> None:
    authenticator = Authenticator(settings(jwt_secret=SECRET, leeway_s=30))
    now = int(time.time())

    principal = await authenticator.authenticate(
        f"Bearer {hs256(claims(iat=now - 100, exp=now - 10))}"
    )

    assert principal.user_id == "user-1"


async def test_unsigned_alg_none_token_is_refused() -> None:
    token = forged({"alg": "none", "typ": "JWT"}, claims(), key=None)

    error = await rejection(Authenticator(settings(jwt_secret=SECRET)), f"Bearer {token}")

    assert error.detail == "token algorithm not allowed"


def test_dev_secret_file_is_created_once_private_and_reused(tmp_path: Path) -> None:
    secret_file = tmp_path / "nested" / "dev-jwt-secret"

    token = mint_dev_token(settings(dev_secret_file=secret_file), "alice")
    first = secret_file.read_text()
    Authenticator(settings(dev_secret_file=secret_file))

    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert secret_file.read_text() == first
    assert len(first.strip()) >= 32
    assert [p.name for p in secret_file.parent.iterdir()] == ["dev-jwt-secret"]
    assert jwt.decode(token, first.strip(), algorithms=["HS256"])["sub"] == "alice"


def test_a_too_short_secret_is_refused(tmp_path: Path) -> None:
    secret_file = tmp_path / "dev-jwt-secret"
    secret_file.write_text("short\n")

    with pytest.raises(ValueError, match="at least 32"):
        Authenticator(settings(dev_secret_file=secret_file))
    with pytest.raises(ValidationError, match="at least 32"):
        settings(jwt_secret="short")


async def test_minted_dev_token_round_trips(tmp_path: Path) -> None:
    config = settings(dev_secret_file=tmp_path / "secret", audience="agenthost")
    token = mint_dev_token(config, "bob", roles=["admin", "tutor"], username="Bob", ttl_s=60)

    principal = await Authenticator(config).authenticate(f"Bearer {token}")

    assert principal == Principal(user_id="bob", username="Bob", roles={"admin", "tutor"})
    assert principal.is_admin


def test_minting_is_refused_in_oidc_mode() -> None:
    oidc = settings(oidc_issuer="https://idp.example/realms/agents", client_id=CLIENT)
    with pytest.raises(ValueError, match="HS256-only"):
        mint_dev_token(oidc, "alice")


def cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTHOST_AUTH_")}
    return subprocess.run(
        [sys.executable, "-m", "serve_app.tokens", *args],
        cwd=tmp_path,  # no stray .env is read
        env={**clean_env, "PYTHONPATH": str(REPO), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_cli_mints_a_token_the_server_accepts(tmp_path: Path) -> None:
    secret_file = tmp_path / "var" / "dev-jwt-secret"

    done = cli(
        tmp_path,
        *("mint", "--user", "u", "--role", "admin", "--ttl", "120"),
        AGENTHOST_AUTH_DEV_SECRET_FILE=str(secret_file),
    )

    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    principal = await Authenticator(settings(dev_secret_file=secret_file)).authenticate(
        f"Bearer {token}"
    )
    assert (principal.user_id, principal.is_admin) == ("u", True)
    assert jwt.decode(token, options={"verify_signature": False})["exp"] <= time.time() + 121


def test_cli_refuses_in_oidc_mode_with_exit_code_2(tmp_path: Path) -> None:
    done = cli(
        tmp_path,
        *("mint", "--user", "u"),
        AGENTHOST_AUTH_OIDC_ISSUER="https://idp.example",
        AGENTHOST_AUTH_CLIENT_ID=CLIENT,
    )

    assert done.returncode == 2
    assert "HS256-only" in done.stderr
    assert done.stdout == ""


# --- the FastAPI dependency -----------------------------------------------------------------


async def test_dependency_yields_the_principal_or_raises_auth_error() -> None:
    config = settings(jwt_secret=SECRET)
    current_principal = principal_dependency(Authenticator(config))
    app = FastAPI()

    @app.exception_handler(AuthError)
    async def unauthorized(_: Request, exc: AuthError) -> JSONResponse:
        return JSONResponse(
            {"detail": exc.detail},
            status_code=exc.status_code,
            headers={"WWW-Authenticate": exc.www_authenticate},
        )

    authenticated = Depends(current_principal)

    @app.get("/whoami")
    async def whoami(principal: Principal = authenticated) -> dict[str, Any]:
        return {"user_id": principal.user_id, "admin": principal.is_admin}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        token = mint_dev_token(config, "carol", roles=["admin"])
        ok = await client.get("/whoami", headers={"Authorization": f"Bearer {token}"})
        missing = await client.get("/whoami")
        basic = await client.get("/whoami", headers={"Authorization": "Basic abc"})
        schema = (await client.get("/openapi.json")).json()

    assert (ok.status_code, ok.json()) == (200, {"user_id": "carol", "admin": True})
    assert (missing.status_code, missing.headers["www-authenticate"]) == (
        401,
        'Bearer realm="agenthost"',
    )
    assert basic.json() == {"detail": "authorization header is not 'Bearer <token>'"}
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert schema["paths"]["/whoami"]["get"]["security"] == [{"HTTPBearer": []}]


# --- OIDC against a real JWKS endpoint ------------------------------------------------------


class Idp:
    """A Keycloak-shaped JWKS endpoint on 127.0.0.1 whose published keys the test controls."""

    def __init__(self) -> None:
        self.keys = {kid: rsa.generate_private_key(65537, 2048) for kid in ("k1", "k2", "k3")}
        self.published = ["k1", "k2"]
        self.fetches = 0
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != CERTS_PATH:
                    self.send_error(404)
                    return
                idp.fetches += 1
                body = json.dumps(idp.jwks()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}/realms/agents"

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid in self.published:
            jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.keys[kid].public_key(), as_dict=True)
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
        return {"keys": keys}

    def token(self, kid: str = "k1", **overrides: Any) -> str:
        payload = claims(
            iss=self.issuer,
            aud=CLIENT,
            preferred_username="alice",
            realm_access={"roles": ["learner"]},
            resource_access={CLIENT: {"roles": ["admin"]}, "account": {"roles": ["x"]}},
        )
        payload.update(overrides)
        return jwt.encode(payload, self.keys[kid], algorithm="RS256", headers={"kid": kid})

    def public_pem(self, kid: str) -> bytes:
        return (
            self.keys[kid]
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def authenticator(self, **values: Any) -> Authenticator:
        return Authenticator(
            settings(
                oidc_issuer=self.issuer,
                **{"audience": CLIENT, "client_id": CLIENT, "jwks_refresh_cooldown_s": 0, **values},
            )
        )


@pytest.fixture(scope="module")
def idp() -> Iterator[Idp]:
    server = Idp()
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture(autouse=True)
def _reset_idp(request: pytest.FixtureRequest) -> None:
    if "idp" in request.fixturenames:
        server: Idp = request.getfixturevalue("idp")
        server.published = ["k1", "k2"]
        server.fetches = 0


async def test_oidc_token_from_either_published_key_yields_the_merged_roles(idp: Idp) -> None:
    authenticator = idp.authenticator()

    for kid in ("k1", "k2"):
        principal = await authenticator.authenticate(f"Bearer {idp.token(kid)}")
        assert principal == Principal(
            user_id="user-1", username="alice", roles=frozenset({"learner", "admin"})
        )
        assert principal.is_admin
    assert idp.fetches == 1  # the JWK set is cached


async def test_oidc_refuses_a_wrong_issuer_or_audience(idp: Idp) -> None:
    authenticator = idp.authenticator()

    wrong_issuer = await rejection(
        authenticator, f"Bearer {idp.token(iss='https://evil.example/realms/agents')}"
    )
    wrong_audience = await rejection(authenticator, f"Bearer {idp.token(aud='other')}")

    assert (wrong_issuer.status_code, wrong_issuer.detail) == (401, "token issuer not accepted")
    assert wrong_audience.detail == "token audience not accepted"


async def test_oidc_refuses_a_token_minted_for_another_client_of_the_realm(idp: Idp) -> None:
    """Keycloak gives every client's access tokens ``aud: account``: a token a user got at
    another client of the realm must not work here, so ``azp`` has to name one of ours."""
    authenticator = idp.authenticator(audience=None)  # client_id=CLIENT

    for aud in ("account", [None], None):
        token = idp.token(aud=aud, azp=OTHER_CLIENT)
        error = await rejection(authenticator, f"Bearer {token}")
        assert (error.status_code, error.detail) == (401, "token audience not accepted")


ADDRESSED_TO_US = {
    "audience mapper": (CLIENT, OTHER_CLIENT),
    "one of several audiences": (["account", CLIENT], OTHER_CLIENT),
    "the web UI's client": ("account", WEB_CLIENT),
    "our own client": ("account", CLIENT),
}
NOT_FOR_US = {
    "another client": ("account", OTHER_CLIENT),
    "other audiences, no azp": (["account", "broker"], None),
    "neither claim": (None, None),
    "aud not a string": (7, OTHER_CLIENT),
    "azp not a string": ("account", [WEB_CLIENT]),
    "aud list of junk": ([None, {"aud": CLIENT}], OTHER_CLIENT),
}


@pytest.mark.parametrize(("aud", "azp"), ADDRESSED_TO_US.values(), ids=ADDRESSED_TO_US)
async def test_oidc_accepts_a_token_whose_aud_or_azp_names_us(
    idp: Idp, aud: object, azp: object
) -> None:
    authenticator = idp.authenticator(ui_client_id=WEB_CLIENT)

    principal = await authenticator.authenticate(f"Bearer {idp.token(aud=aud, azp=azp)}")

    assert principal.user_id == "user-1"


@pytest.mark.parametrize(("aud", "azp"), NOT_FOR_US.values(), ids=NOT_FOR_US)
async def test_oidc_refuses_a_token_whose_aud_and_azp_both_name_others(
    idp: Idp, aud: object, azp: object
) -> None:
    authenticator = idp.authenticator(ui_client_id=WEB_CLIENT)

    error = await rejection(authenticator, f"Bearer {idp.token(aud=aud, azp=azp)}")

    assert (error.status_code, error.detail) == (401, "token audience not accepted")


async def test_oidc_refuses_an_id_token_as_a_bearer(idp: Idp) -> None:
    """An ID token tells the client who signed in; it is not a grant to call an API, and it
    travels where access tokens do not (logout URLs, the client's own storage)."""
    authenticator = idp.authenticator(audience=None, ui_client_id=WEB_CLIENT)
    id_token = idp.token(aud=WEB_CLIENT, azp=WEB_CLIENT, typ="ID")

    error = await rejection(authenticator, f"Bearer {id_token}")

    assert (error.status_code, error.detail) == (401, "token is not an access token")
    access = idp.token(aud="account", azp=WEB_CLIENT, typ="Bearer")
    assert (await authenticator.authenticate(f"Bearer {access}")).user_id == "user-1"


async def test_the_admin_role_can_be_a_client_role_of_our_client_only(idp: Idp) -> None:
    authenticator = idp.authenticator(admin_role="agenthost-admin")
    ours = idp.token(resource_access={CLIENT: {"roles": ["agenthost-admin"]}})
    theirs = idp.token(resource_access={OTHER_CLIENT: {"roles": ["agenthost-admin"]}})

    assert (await authenticator.authenticate(f"Bearer {ours}")).is_admin
    assert not (await authenticator.authenticate(f"Bearer {theirs}")).is_admin


def test_oidc_mode_without_an_audience_or_client_id_refuses_to_start() -> None:
    with pytest.raises(
        ValidationError, match="AGENTHOST_AUTH_AUDIENCE or AGENTHOST_AUTH_CLIENT_ID"
    ):
        settings(oidc_issuer="https://idp.example/realms/agents")
    for enough in ({"audience": CLIENT}, {"client_id": CLIENT}, {"ui_client_id": WEB_CLIENT}):
        assert settings(oidc_issuer="https://idp.example/realms/agents", **enough).oidc_issuer


async def test_unknown_kid_refetches_once_then_is_refused(idp: Idp) -> None:
    authenticator = idp.authenticator()

    error = await rejection(authenticator, f"Bearer {idp.token('k3')}")

    assert (error.status_code, error.detail) == (401, "unknown signing key")
    assert idp.fetches == 2  # the initial fetch and one refresh


async def test_a_rotated_in_key_is_picked_up_by_the_refresh(idp: Idp) -> None:
    authenticator = idp.authenticator()
    await authenticator.authenticate(f"Bearer {idp.token('k1')}")
    idp.published = ["k1", "k3"]

    principal = await authenticator.authenticate(f"Bearer {idp.token('k3')}")

    assert principal.user_id == "user-1"
    assert idp.fetches == 2


async def test_refetches_for_unknown_kids_wait_for_the_cooldown(idp: Idp) -> None:
    authenticator = idp.authenticator(jwks_refresh_cooldown_s=60)

    await rejection(authenticator, f"Bearer {idp.token('k3')}")
    await rejection(authenticator, f"Bearer {idp.token('k3')}")

    assert idp.fetches == 1


async def test_hs256_token_signed_with_the_public_key_is_refused(idp: Idp) -> None:
    """Key confusion: a verifier that let the token pick HS256 would use the public key bytes
    as the HMAC secret and accept this forgery."""
    payload = {**claims(iss=idp.issuer, aud=CLIENT), "realm_access": {"roles": ["admin"]}}
    token = forged({"alg": "HS256", "typ": "JWT", "kid": "k1"}, payload, idp.public_pem("k1"))

    error = await rejection(idp.authenticator(), f"Bearer {token}")

    assert (error.status_code, error.detail) == (401, "token algorithm not allowed")
    assert idp.fetches == 0  # refused before asking the issuer


async def test_oidc_refuses_unsigned_and_kidless_tokens(idp: Idp) -> None:
    authenticator = idp.authenticator()
    unsigned = forged({"alg": "none", "kid": "k1"}, claims(iss=idp.issuer, aud=CLIENT), None)
    kidless = jwt.encode(claims(iss=idp.issuer, aud=CLIENT), idp.keys["k1"], algorithm="RS256")

    assert (await rejection(authenticator, f"Bearer {unsigned}")).detail == (
        "token algorithm not allowed"
    )
    assert (await rejection(authenticator, f"Bearer {kidless}")).detail == "token lacks a key id"


async def test_jwks_endpoint_down_is_unavailable_not_unauthorized(idp: Idp) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    authenticator = Authenticator(
        settings(
            oidc_issuer=idp.issuer,
            oidc_jwks_url=f"http://127.0.0.1:{closed_port}{CERTS_PATH}",
            audience=CLIENT,
            jwks_timeout_s=2,
        )
    )

    with pytest.raises(AuthUnavailable) as caught:
        await authenticator.authenticate(f"Bearer {idp.token()}")

    assert caught.value.status_code == 503


def test_oidc_settings_refuse_symmetric_algorithms_and_mixed_modes() -> None:
    with pytest.raises(ValidationError, match="refused: \\['HS256', 'none'\\]"):
        settings(oidc_issuer="https://idp.example", algorithms=["RS256", "HS256", "none"])
    with pytest.raises(ValidationError, match="not both"):
        settings(oidc_issuer="https://idp.example", jwt_secret=SECRET)
