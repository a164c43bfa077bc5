import { useState } from "preact/hooks";
import { useApp } from "../context";
import type { Agent } from "../types";
import { ErrorNotice } from "./ErrorNotice";

/** Archiving ends an active session first; it cannot be undone, so it asks for a reason. */
export function ArchiveAgent({ agent, onArchived }: { agent: Agent; onArchived: () => void }) {
  const { api } = useApp();
  const [reason, setReason] = useState("");
  const [error, setError] = useState<unknown>(null);

  const archive = async (event: Event) => {
    event.preventDefault();
    try {
      await api.archive(agent.id, reason.trim());
      onArchived();
    } catch (failure) {
      setError(failure);
    }
  };

  return (
    <details>
      <summary>Archive this agent</summary>
      <form onSubmit={archive}>
        <label for="archive-reason">
          Reason
          <input id="archive-reason" value={reason} onInput={(e) => setReason(e.currentTarget.value)} required maxLength={500} />
        </label>
        <button type="submit" class="contrast">Archive</button>
      </form>
      {error !== null && <ErrorNotice error={error} />}
    </details>
  );
}
