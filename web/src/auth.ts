/**
 * Sign-in: a development token (pasted, or from a `#token=` link that `make run` prints), or
 * OIDC authorization code + PKCE against the configured issuer (oauth4webapi does the
 * protocol). The access token is kept in localStorage so a closed tab resumes where it was;
 * it is dropped when it expires or the API answers 401.
 */
import * as oauth from "oauth4webapi";
import type { UiConfig } from "./types";

const TOKEN_KEY = "agenthost.token";
const PENDING_KEY = "agenthost.oidc";

interface PendingLogin {
  verifier: string;
  state: string;
  returnTo: string;
}

export interface SignedIn {
  token: string;
  /** The token's subject: the user id agents are owned by. */
  sub: string;
  /** What to call the user. */
  user: string;
  expiresAt: number | null;
  /** The token's roles, read as the server reads them (top-level `roles` and Keycloak's
   * `realm_access.roles`): only to decide which controls to offer; the server decides. */
  roles: string[];
}

/** The claims the UI shows; the server verifies the token, the page only reads it. */
export function readToken(token: string): SignedIn | null {
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  try {
    const payload = JSON.parse(atob(parts[1].replace(/-/g, "+").replace(/_/g, "/"))) as {
      sub?: string;
      preferred_username?: string;
      exp?: number;
      roles?: unknown;
      realm_access?: unknown;
    };
    if (!payload.sub) return null;
    return {
      token,
      sub: payload.sub,
      user: payload.preferred_username ?? payload.sub,
      expiresAt: typeof payload.exp === "number" ? payload.exp * 1000 : null,
      roles: [...new Set([...roleNames(payload), ...roleNames(payload.realm_access)])],
    };
  } catch {
    return null;
  }
}

/** The string entries of `holder.roles`; anything malformed grants nothing (as on the server). */
function roleNames(holder: unknown): string[] {
  if (holder === null || typeof holder !== "object" || Array.isArray(holder)) return [];
  const roles = (holder as { roles?: unknown }).roles;
  return Array.isArray(roles) ? roles.filter((role): role is string => typeof role === "string") : [];
}

export function currentSignIn(): SignedIn | null {
  const token = localStorage.getItem(TOKEN_KEY);
  const signedIn = token ? readToken(token) : null;
  if (signedIn?.expiresAt != null && signedIn.expiresAt <= Date.now()) {
    signOut();
    return null;
  }
  return signedIn;
}

export function storeToken(token: string): SignedIn | null {
  const signedIn = readToken(token.trim());
  if (signedIn) localStorage.setItem(TOKEN_KEY, signedIn.token);
  return signedIn;
}

export function signOut(): void {
  localStorage.removeItem(TOKEN_KEY);
}

/** `#token=<jwt>` (a `make run` link): stored, then removed from the address bar. */
export function takeTokenFromLink(): void {
  const match = /^#token=([\w.-]+)$/.exec(location.hash);
  if (!match) return;
  storeToken(match[1]);
  history.replaceState(null, "", `${location.pathname}#/`);
}

type Transport = { [oauth.allowInsecureRequests]?: boolean };

function httpAllowed(issuer: URL): Transport {
  // Plain http only for an issuer on this machine (development); never across a network.
  const loopback = ["localhost", "127.0.0.1", "[::1]"].includes(issuer.hostname);
  return loopback && issuer.protocol === "http:" ? { [oauth.allowInsecureRequests]: true } : {};
}

async function discover(config: NonNullable<UiConfig["oidc"]>) {
  const issuer = new URL(config.issuer);
  const options = httpAllowed(issuer);
  const response = await oauth.discoveryRequest(issuer, { ...options, algorithm: "oidc" });
  return { server: await oauth.processDiscoveryResponse(issuer, response), options };
}

function redirectUri(): string {
  return `${location.origin}/`;
}

/** Leaves for the issuer's login page; `finishOidcSignIn` completes on the way back. */
export async function startOidcSignIn(config: NonNullable<UiConfig["oidc"]>): Promise<void> {
  const { server } = await discover(config);
  if (!server.authorization_endpoint) throw new Error("The issuer has no authorization endpoint.");
  const pending: PendingLogin = {
    verifier: oauth.generateRandomCodeVerifier(),
    state: oauth.generateRandomState(),
    returnTo: location.hash || "#/",
  };
  sessionStorage.setItem(PENDING_KEY, JSON.stringify(pending));
  const url = new URL(server.authorization_endpoint);
  url.search = new URLSearchParams({
    client_id: config.client_id,
    redirect_uri: redirectUri(),
    response_type: "code",
    scope: config.scope,
    state: pending.state,
    code_challenge: await oauth.calculatePKCECodeChallenge(pending.verifier),
    code_challenge_method: "S256",
  }).toString();
  location.assign(url.toString());
}

/** On the redirect back (`?code=&state=`): exchanges the code; false if this is no callback. */
export async function finishOidcSignIn(config: NonNullable<UiConfig["oidc"]>): Promise<boolean> {
  const current = new URL(location.href);
  if (!current.searchParams.has("code") && !current.searchParams.has("error")) return false;
  const saved = sessionStorage.getItem(PENDING_KEY);
  sessionStorage.removeItem(PENDING_KEY);
  history.replaceState(null, "", `${location.pathname}${saved ? (JSON.parse(saved) as PendingLogin).returnTo : "#/"}`);
  if (!saved) throw new Error("This sign-in was not started here; please sign in again.");
  const pending = JSON.parse(saved) as PendingLogin;
  const { server, options } = await discover(config);
  const client: oauth.Client = { client_id: config.client_id };
  const params = oauth.validateAuthResponse(server, client, current, pending.state);
  const response = await oauth.authorizationCodeGrantRequest(
    server,
    client,
    oauth.None(),
    params,
    redirectUri(),
    pending.verifier,
    options,
  );
  const result = await oauth.processAuthorizationCodeResponse(server, client, response);
  if (!storeToken(result.access_token)) throw new Error("The issuer's access token is not a JWT.");
  return true;
}
