import { useState } from "preact/hooks";
import { useApp } from "../context";
import type { Agent, Json } from "../types";
import { ErrorNotice } from "./ErrorNotice";

/** Preferences are free-form JSON (language, response_policy, ...): edited as a whole and
 * sent as a merge: changed keys set, removed keys null. */
export function Preferences({ agent, onSaved }: { agent: Agent; onSaved: () => void }) {
  const { api } = useApp();
  const [text, setText] = useState(() => JSON.stringify(agent.preferences, null, 2));
  const [invalid, setInvalid] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [saved, setSaved] = useState(false);

  const save = async (event: Event) => {
    event.preventDefault();
    setSaved(false);
    setError(null);
    let changes: Json;
    try {
      changes = JSON.parse(text) as Json;
    } catch (failure) {
      setInvalid(`Not JSON: ${(failure as Error).message}`);
      return;
    }
    if (changes === null || typeof changes !== "object" || Array.isArray(changes)) {
      setInvalid("Preferences are a JSON object, like {\"language\": \"en\"}.");
      return;
    }
    setInvalid(null);
    const removed = Object.keys(agent.preferences).filter((key) => !(key in changes));
    try {
      await api.updatePreferences(agent.id, {
        ...changes,
        ...Object.fromEntries(removed.map((key) => [key, null])), // null removes a key
      });
      setSaved(true);
      onSaved();
    } catch (failure) {
      setError(failure);
    }
  };

  return (
    <details>
      <summary>Preferences</summary>
      <form onSubmit={save}>
        <label for="preferences">
          Preferences (a removed key is deleted)
          <textarea
            id="preferences"
            rows={5}
            value={text}
            onInput={(e) => setText(e.currentTarget.value)}
            aria-invalid={invalid ? "true" : undefined}
            aria-describedby="preferences-help"
            spellcheck={false}
          />
          <small id="preferences-help">{invalid ?? "A JSON object."}</small>
        </label>
        <button type="submit">Save preferences</button>
        {saved && <span role="status"> Saved.</span>}
      </form>
      {error !== null && <ErrorNotice error={error} />}
    </details>
  );
}
