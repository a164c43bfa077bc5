"""Who is calling: bearer JWTs checked against an OIDC issuer's JWKS or an HS256 secret.

Production points AGENTHOST_AUTH_OIDC_ISSUER at an identity provider (Keycloak-style claims).
There a signed token is accepted only if it is an access token addressed to us: its ``aud``
holds AGENTHOST_AUTH_AUDIENCE, or its ``azp`` (the client it was issued to) is
AGENTHOST_AUTH_CLIENT_ID or AGENTHOST_AUTH_UI_CLIENT_ID. Keycloak gives every client's tokens
``aud: account``, so without that check a token a user got at any client of the realm would
work here.

The embedded default checks HS256 tokens against a secret kept in a local file, created on
first use, so a fresh checkout runs with zero configuration and `python -m serve_app.tokens
mint` prints tokens the server accepts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Annotated, Any, Self

import jwt
from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.access import Caller

REALM = "agenthost"
"""The realm named in every WWW-Authenticate challenge."""

ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
"""The only algorithms OIDC mode may accept: an HS* token "signed" with a public key (key
confusion) or an unsigned "none" token must never verify against a JWKS."""

_MIN_SECRET_CHARS = 32
"""RFC 7518 3.2: an HS256 key needs at least 256 bits; shorter secrets can be brute-forced."""


class AuthSettings(BaseSettings):
    """AGENTHOST_AUTH_*: OIDC when an issuer is set, else HS256 (given or file-backed secret)."""

    model_config = SettingsConfigDict(
        env_prefix="AGENTHOST_AUTH_", env_file=".env", env_ignore_empty=True, extra="ignore"
    )

    jwt_secret: SecretStr | None = Field(default=None, description="HS256 secret")
    dev_secret_file: Path = Field(
        default=Path("var/agenthost/dev-jwt-secret"),
        description="HS256 secret used when neither jwt_secret nor oidc_issuer is set",
    )
    oidc_issuer: str | None = Field(
        default=None, description="e.g. https://keycloak.example/realms/agents"
    )
    oidc_jwks_url: str | None = Field(
        default=None, description="unset: {issuer}/protocol/openid-connect/certs (Keycloak)"
    )
    audience: str | None = Field(
        default=None,
        description="a token whose aud holds it is accepted (HS256: required aud; unset = any)",
    )
    client_id: str | None = Field(
        default=None,
        description="a token issued to it (azp) is accepted; its resource_access roles count",
    )
    admin_role: str = "admin"
    ui_client_id: str | None = Field(
        default=None,
        description="public OIDC client the web UI signs in with (its azp is accepted too);"
        " unset: client_id",
    )
    ui_scope: str = Field(default="openid profile", description="scopes the web UI asks for")
    leeway_s: int = Field(default=30, ge=0, description="clock skew allowed on exp/nbf/iat")
    algorithms: tuple[str, ...] = Field(
        default=("RS256", "ES256"), description="accepted OIDC signing algorithms"
    )
    jwks_lifespan_s: float = Field(
        default=300.0, gt=0, description="how long a fetched JWKS is trusted before refetching"
    )
    jwks_timeout_s: float = Field(
        default=5.0, gt=0, description="longest wait on the JWKS endpoint"
    )
    jwks_refresh_cooldown_s: float = Field(
        default=30.0,
        ge=0,
        description="least time between refetches caused by unknown kids (spares the IdP)",
    )

    @field_validator("algorithms")
    @classmethod
    def _asymmetric_only(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        refused = sorted(set(value) - ASYMMETRIC_ALGORITHMS)
        if not value or refused:
            raise ValueError(
                f"OIDC algorithms must be a non-empty subset of {sorted(ASYMMETRIC_ALGORITHMS)}"
                f"; refused: {refused}"
            )
        return value

    @model_validator(mode="after")
    def _one_mode(self) -> Self:
        if self.jwt_secret is not None and self.oidc_issuer is not None:
            raise ValueError(
                "set AGENTHOST_AUTH_JWT_SECRET or AGENTHOST_AUTH_OIDC_ISSUER, not both"
            )
        if self.jwt_secret is not None:
            _check_secret_length(self.jwt_secret.get_secret_value(), "AGENTHOST_AUTH_JWT_SECRET")
        if self.oidc_issuer is not None and not (self.audience or self.accepted_clients):
            raise ValueError(
                "OIDC mode needs AGENTHOST_AUTH_AUDIENCE or AGENTHOST_AUTH_CLIENT_ID (or"
                " AGENTHOST_AUTH_UI_CLIENT_ID): without one, a token the issuer minted for any"
                " of its clients would be accepted"
            )
        return self

    @property
    def accepted_clients(self) -> frozenset[str]:
        """The clients (``azp``) whose OIDC access tokens are for us: the API's and the UI's."""
        return frozenset(c for c in (self.client_id, self.ui_client_id) if c)


class Principal(BaseModel):
    """The authenticated caller, as routes see it."""

    model_config = ConfigDict(frozen=True)

    user_id: str
    """The token's `sub`."""
    username: str
    """`preferred_username`, or the user id when the token has none."""
    roles: frozenset[str] = frozenset()
    admin_role: str = "admin"
    """The role that makes this principal an admin (AuthSettings.admin_role)."""

    @property
    def is_admin(self) -> bool:
        return self.admin_role in self.roles

    @property
    def caller(self) -> Caller:
        """The principal as commands carry it: the domain decides what it may do."""
        return Caller(user_id=self.user_id, is_admin=self.is_admin)


class AuthError(Exception):
    """The caller is not authenticated: answer 401 with the RFC 6750 challenge.

    `detail` is always one of this module's fixed phrases, never token text, so it is safe in
    a response body and in the WWW-Authenticate header.
    """

    status_code = 401

    def __init__(self, detail: str, *, error: str | None = "invalid_token") -> None:
        super().__init__(detail)
        self.detail = detail
        self.error = error
        """RFC 6750 error code; None when the request carried no bearer credentials at all."""

    @property
    def www_authenticate(self) -> str:
        # RFC 6750 3.1: a request without credentials gets the bare challenge, no error code.
        if self.error is None:
            return f'Bearer realm="{REALM}"'
        return f'Bearer realm="{REALM}", error="{self.error}", error_description="{self.detail}"'


class AuthUnavailable(Exception):
    """The issuer's keys cannot be fetched: the token may be fine, so 503 rather than 401."""

    status_code = 503

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


_REJECTIONS: tuple[tuple[type[jwt.InvalidTokenError], str], ...] = (
    (jwt.ExpiredSignatureError, "token expired"),
    (jwt.ImmatureSignatureError, "token not yet valid"),
    (jwt.InvalidAudienceError, "token audience not accepted"),
    (jwt.InvalidIssuerError, "token issuer not accepted"),
    (jwt.InvalidAlgorithmError, "token algorithm not allowed"),
    (jwt.InvalidSignatureError, "token signature invalid"),
    (jwt.DecodeError, "malformed token"),
)
"""PyJWT failures to fixed details; order matters (InvalidSignatureError is a DecodeError)."""


class Authenticator:
    """Turns an Authorization header into a Principal; build one per process and share it,
    so the JWKS cache (OIDC) or the secret (HS256) is loaded once, not per request."""

    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings
        self._keys: str | jwt.PyJWKClient
        if settings.oidc_issuer is None:
            self._keys = _hs256_secret(settings)
        else:
            # Only the JWK set is cached (for jwks_lifespan_s): PyJWKClient's per-kid cache
            # never expires, so a key the issuer withdrew would stay trusted until restart.
            self._keys = jwt.PyJWKClient(
                settings.oidc_jwks_url
                or settings.oidc_issuer.rstrip("/") + "/protocol/openid-connect/certs",
                lifespan=settings.jwks_lifespan_s,
                timeout=settings.jwks_timeout_s,
                cooldown_duration=settings.jwks_refresh_cooldown_s,
            )

    async def authenticate(self, authorization: str | None) -> Principal:
        """The caller behind an `Authorization: Bearer <jwt>` header value.

        Raises AuthError (401) for any unacceptable token and AuthUnavailable (503) when the
        issuer's keys cannot be fetched.
        """
        token = _bearer_token(authorization)
        if isinstance(self._keys, str):
            claims = self._decode(token, self._keys, ("HS256",), issuer=None)
        else:
            key = await self._signing_key(token, self._keys)
            claims = self._decode(
                token, key, self.settings.algorithms, issuer=self.settings.oidc_issuer
            )
            self._check_addressed_to_us(claims)
        return self._principal(claims)

    async def _signing_key(self, token: str, client: jwt.PyJWKClient) -> jwt.PyJWK:
        # Checked before any fetch, so junk tokens cannot make us call the issuer.
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise AuthError("malformed token") from exc
        if header.get("alg") not in self.settings.algorithms:
            raise AuthError("token algorithm not allowed")
        kid = header.get("kid")
        if kid is None:
            raise AuthError("token lacks a key id")
        try:
            # PyJWKClient does blocking HTTP; an unknown kid triggers one refetch (cooldown
            # permitting) before it gives up.
            return await asyncio.to_thread(client.get_signing_key, kid)
        except (jwt.PyJWKClientConnectionError, jwt.PyJWKSetError, ValueError) as exc:
            # Unreachable endpoint, or it answered something that is not a usable JWKS.
            raise AuthUnavailable("identity provider keys unavailable") from exc
        except jwt.PyJWKClientError as exc:
            raise AuthError("unknown signing key") from exc

    def _decode(
        self,
        token: str,
        key: str | jwt.PyJWK,
        algorithms: Iterable[str],
        *,
        issuer: str | None,
    ) -> dict[str, Any]:
        # OIDC checks aud together with azp afterwards (_check_addressed_to_us); our own HS256
        # tokens carry the audience only when one is configured.
        audience = self.settings.audience if issuer is None else None
        required = ["exp", "iat", "sub"] if issuer is None else ["exp", "iat", "sub", "iss"]
        try:
            return jwt.decode(
                token,
                key,
                algorithms=list(algorithms),
                audience=audience,
                issuer=issuer,
                leeway=self.settings.leeway_s,
                options={"require": required, "verify_aud": audience is not None},
            )
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(f"token lacks the {exc.claim} claim") from exc
        except jwt.InvalidTokenError as exc:
            detail = next((d for kind, d in _REJECTIONS if isinstance(exc, kind)), "invalid token")
            raise AuthError(detail) from exc

    def _check_addressed_to_us(self, claims: dict[str, Any]) -> None:
        """An OIDC token must be an access token for us, not one the issuer signed for another
        of its clients: ``aud`` holds our audience or ``azp`` names our API or UI client."""
        kind = claims.get("typ")
        if kind is not None and (not isinstance(kind, str) or kind.lower() != "bearer"):
            raise AuthError("token is not an access token")  # Keycloak: ID, Refresh, Logout
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if self.settings.audience is not None and self.settings.audience in audiences:
            return
        azp = claims.get("azp")
        if isinstance(azp, str) and azp in self.settings.accepted_clients:
            return
        raise AuthError("token audience not accepted")

    def _principal(self, claims: dict[str, Any]) -> Principal:
        user_id = claims["sub"]  # present and a string: checked by jwt.decode
        if not user_id:
            raise AuthError("token subject empty")
        username = claims.get("preferred_username")
        roles = _role_names(claims) | _role_names(claims.get("realm_access"))
        resource_access = claims.get("resource_access")
        if self.settings.client_id is not None and isinstance(resource_access, dict):
            roles |= _role_names(resource_access.get(self.settings.client_id))
        return Principal(
            user_id=user_id,
            username=username if isinstance(username, str) and username else user_id,
            roles=frozenset(roles),
            admin_role=self.settings.admin_role,
        )


_bearer_scheme = HTTPBearer(
    auto_error=False, bearerFormat="JWT", description="OIDC access token or dev HS256 token"
)


def principal_dependency(authenticator: Authenticator) -> Callable[..., Awaitable[Principal]]:
    """A FastAPI dependency yielding the caller's Principal or raising AuthError/AuthUnavailable.

    It reads the raw header itself, because HTTPBearer(auto_error=False) answers None for both
    a missing and a malformed header; the HTTPBearer parameter is there so OpenAPI documents
    the bearer scheme.
    """

    async def current_principal(
        request: Request,
        _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer_scheme)],
    ) -> Principal:
        return await authenticator.authenticate(request.headers.get("Authorization"))

    return current_principal


def mint_dev_token(
    settings: AuthSettings,
    user_id: str,
    *,
    roles: Iterable[str] = (),
    username: str | None = None,
    ttl_s: int = 3600 * 24,
) -> str:
    """An HS256 token the HS256-mode Authenticator accepts, for development and tests.

    Raises ValueError in OIDC mode: there only the issuer can sign tokens.
    """
    if settings.oidc_issuer is not None:
        raise ValueError(
            "dev tokens are HS256-only; AGENTHOST_AUTH_OIDC_ISSUER is set, "
            "so get tokens from the identity provider"
        )
    if not user_id:
        raise ValueError("user_id must not be empty")
    if ttl_s <= 0:
        raise ValueError("ttl_s must be positive")
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": user_id,
        "preferred_username": username or user_id,
        "roles": sorted(set(roles)),
        "iat": now,
        "exp": now + ttl_s,
    }
    if settings.audience is not None:
        claims["aud"] = settings.audience
    return jwt.encode(claims, _hs256_secret(settings), algorithm="HS256")


def _bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise AuthError("missing bearer token", error=None)
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise AuthError("authorization header is not 'Bearer <token>'", error="invalid_request")
    return token


def _role_names(holder: object) -> set[str]:
    """The string entries of `holder["roles"]`; anything malformed grants nothing."""
    if not isinstance(holder, dict):
        return set()
    roles = holder.get("roles")
    if not isinstance(roles, list):
        return set()
    return {role for role in roles if isinstance(role, str)}


def _hs256_secret(settings: AuthSettings) -> str:
    if settings.jwt_secret is not None:
        return settings.jwt_secret.get_secret_value()
    return _dev_secret(settings.dev_secret_file)


def _dev_secret(path: Path) -> str:
    """The embedded default's secret, created once so the server and the token CLI agree.

    It is written to a private temp file and hard-linked into place, so a concurrent creator
    never reads a half-written file and the first writer's secret wins.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
        try:
            with os.fdopen(fd, "w") as file:
                file.write(secrets.token_urlsafe(32) + "\n")
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
    secret = path.read_text().strip()
    _check_secret_length(secret, str(path))
    return secret


def _check_secret_length(secret: str, source: str) -> None:
    if len(secret) < _MIN_SECRET_CHARS:
        raise ValueError(f"{source}: an HS256 secret needs at least {_MIN_SECRET_CHARS} characters")
