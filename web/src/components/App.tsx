import { useEffect, useMemo, useState } from "preact/hooks";
import { Api, explain } from "../api";
import { currentSignIn, finishOidcSignIn, signOut, takeTokenFromLink, type SignedIn } from "../auth";
import { AppContext, type AppServices } from "../context";
import { useRoute } from "../router";
import type { UiConfig } from "../types";
import { AgentList } from "./AgentList";
import { AgentPage } from "./AgentPage";
import { SignIn } from "./SignIn";

type Boot = { state: "loading" } | { state: "failed"; error: unknown } | { state: "ready"; config: UiConfig };

export function App() {
  const [boot, setBoot] = useState<Boot>({ state: "loading" });
  const [user, setUser] = useState<SignedIn | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  const [attempt, setAttempt] = useState(0);
  const route = useRoute();

  useEffect(() => {
    takeTokenFromLink();
    const api = new Api(() => null);
    api
      .config()
      .then(async (config) => {
        if (config.oidc) {
          try {
            await finishOidcSignIn(config.oidc);
          } catch (error) {
            setMessage(`Sign-in failed: ${String(error)}`);
          }
        }
        setUser(currentSignIn());
        setBoot({ state: "ready", config });
      })
      .catch((error: unknown) => setBoot({ state: "failed", error }));
  }, [attempt]);

  const services = useMemo<AppServices | null>(() => {
    if (!user) return null;
    const token = () => currentSignIn()?.token ?? null;
    return {
      api: new Api(token),
      user,
      token,
      expired: () => {
        signOut();
        setUser(null);
        setMessage("Your sign-in has expired or was refused: please sign in again.");
      },
    };
  }, [user]);

  if (boot.state === "loading") return <main class="container" aria-busy="true">Loading…</main>;
  if (boot.state === "failed") {
    const { title, detail } = explain(boot.error);
    return (
      <main class="container">
        <div class="notice error" role="alert" data-status="boot">
          <strong>{title}</strong>
          <p>{detail}</p>
          <button type="button" onClick={() => setAttempt((n) => n + 1)}>Retry</button>
        </div>
      </main>
    );
  }
  if (!services) {
    return <SignIn config={boot.config} message={message} onSignedIn={(u) => { setMessage(null); setUser(u); }} />;
  }
  return (
    <AppContext.Provider value={services}>
      <header class="container top">
        <nav>
          <ul><li><a href="#/"><strong>Agent Host</strong></a></li></ul>
          <ul>
            <li><span data-user>{services.user.user}</span></li>
            <li>
              <button type="button" class="secondary outline" onClick={() => { signOut(); setUser(null); }}>
                Sign out
              </button>
            </li>
          </ul>
        </nav>
      </header>
      <main class="container">
        {route.page === "agent" ? (
          <AgentPage key={route.agentId} agentId={route.agentId} />
        ) : (
          <AgentList agentTypes={boot.config.agent_types} />
        )}
      </main>
    </AppContext.Provider>
  );
}
