import { useState } from "preact/hooks";
import { startOidcSignIn, storeToken, type SignedIn } from "../auth";
import type { UiConfig } from "../types";

/** Dev mode: paste a token (or follow `make run`'s link). OIDC: off to the issuer. */
export function SignIn({
  config,
  message,
  onSignedIn,
}: {
  config: UiConfig;
  message: string | null;
  onSignedIn: (user: SignedIn) => void;
}) {
  const [token, setToken] = useState("");
  const [error, setError] = useState<string | null>(null);

  const submit = (event: Event) => {
    event.preventDefault();
    const signedIn = storeToken(token);
    if (signedIn) onSignedIn(signedIn);
    else setError("That is not a token: paste the whole JWT that `make run` printed.");
  };

  const oidc = async () => {
    try {
      await startOidcSignIn(config.oidc!);
    } catch (failure) {
      setError(`The identity provider cannot be reached: ${String(failure)}`);
    }
  };

  return (
    <main class="container sign-in">
      <h1>Agent Host</h1>
      {message && <p role="status" class="notice">{message}</p>}
      {config.auth_mode === "oidc" ? (
        <>
          <p>Sign in with your organisation's account.</p>
          <button type="button" onClick={oidc}>Sign in with {new URL(config.oidc!.issuer).host}</button>
        </>
      ) : (
        <form onSubmit={submit}>
          <label for="token">
            Development token
            <textarea
              id="token"
              name="token"
              rows={4}
              value={token}
              onInput={(e) => setToken(e.currentTarget.value)}
              aria-describedby="token-help"
              aria-invalid={error ? "true" : undefined}
              required
            />
            <small id="token-help">
              <code>make run</code> prints one (and a link that signs you in). More:{" "}
              <code>.venv/bin/python -m serve_app.tokens mint --user alice</code>
            </small>
          </label>
          <button type="submit">Sign in</button>
        </form>
      )}
      {error && <p role="alert" class="error-text">{error}</p>}
    </main>
  );
}
