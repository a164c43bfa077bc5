import { useState } from "preact/hooks";
import { useApp } from "../context";
import { useLoad } from "../load";
import type { Agent } from "../types";
import { ErrorNotice } from "./ErrorNotice";

const FREE = "";

/** Templated sessions need no model; without a template the agent type decides: an LLM
 * conversation when an LLM is configured, else its default template. */
export function StartSession({ agent, onStarted }: { agent: Agent; onStarted: () => void }) {
  const { api } = useApp();
  const templates = useLoad(() => api.templates(), []);
  const [choice, setChoice] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const ordered = [...(templates.data ?? [])].sort(
    (x, y) => Number(y.agent_type === agent.agent_type) - Number(x.agent_type === agent.agent_type),
  );
  const selected = choice ?? ordered[0]?.id ?? FREE;

  const start = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await api.startSession(agent.id, selected === FREE ? null : selected);
      onStarted();
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };

  return (
    <article aria-labelledby="start-title">
      <h2 id="start-title">Start a session</h2>
      {templates.error !== null && <ErrorNotice error={templates.error} onRetry={templates.reload} />}
      <form onSubmit={start}>
        <label for="template">
          What to do
          <select id="template" value={selected} onChange={(e) => setChoice(e.currentTarget.value)}>
            {ordered.map((t) => (
              <option key={t.id} value={t.id}>
                {t.title} ({t.items} questions{t.agent_type !== agent.agent_type ? `, for ${t.agent_type}` : ""})
              </option>
            ))}
            <option value={FREE}>The agent's own choice (an LLM conversation if one is configured)</option>
          </select>
          <small>{ordered.find((t) => t.id === selected)?.description}</small>
        </label>
        <button type="submit" aria-busy={busy} disabled={busy}>Start</button>
      </form>
      {error !== null && <ErrorNotice error={error} />}
    </article>
  );
}
