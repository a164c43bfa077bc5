import { useEffect, useRef, useState } from "preact/hooks";
import { useApp } from "../context";
import { ASSIGNABLE_ROLES, membersView, type MemberRow } from "../members";
import type { Agent, AssignableRole } from "../types";
import { ErrorNotice } from "./ErrorNotice";

/** The owner and everyone assigned, with their roles. A manager (the owner, an admin) adds and
 * removes members; a member may leave; everyone else reads. */
export function Members({ agent, onChanged }: { agent: Agent; onChanged: () => void }) {
  const { api, user } = useApp();
  const view = membersView(agent, user);
  const [error, setError] = useState<unknown>(null);

  const unassign = async (row: MemberRow) => {
    setError(null);
    try {
      await api.unassignMember(agent.id, row.userId);
      // Once left, the agent is no longer ours to see: back to the list, which lacks it.
      if (row.isYou) location.hash = "#/";
      else onChanged();
    } catch (failure) {
      setError(failure);
    }
  };

  return (
    <section aria-labelledby="members-title">
      <h2 id="members-title">Members</h2>
      <ul class="members">
        {view.rows.map((row) => (
          <MemberItem key={row.userId} row={row} onConfirmed={() => unassign(row)} />
        ))}
      </ul>
      {view.canAdd && <AddMember agent={agent} onAdded={onChanged} onError={setError} />}
      {error !== null && <ErrorNotice error={error} />}
    </section>
  );
}

/** One member; Remove and Leave ask once more, with the focus on the confirmation (Escape or
 * Cancel gives it back). */
function MemberItem({ row, onConfirmed }: { row: MemberRow; onConfirmed: () => Promise<void> }) {
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const ask = useRef<HTMLButtonElement>(null);
  const confirm = useRef<HTMLButtonElement>(null);
  const cancelled = useRef(false);
  useEffect(() => {
    if (confirming) confirm.current?.focus();
    else if (cancelled.current) ask.current?.focus();
    cancelled.current = false;
  }, [confirming]);

  const cancel = () => {
    cancelled.current = true;
    setConfirming(false);
  };
  const act = async () => {
    setBusy(true);
    await onConfirmed();
    setBusy(false);
    setConfirming(false);
  };
  const verb = row.control === "leave" ? "Leave" : "Remove";
  const question = row.control === "leave" ? "Leave this agent? You will no longer see it." : `Remove ${row.userId}?`;

  return (
    <li data-member={row.userId}>
      <strong>{row.userId}</strong>
      {row.isYou && " (you)"} <span class="badge">{row.role}</span>
      {row.control !== null &&
        (confirming ? (
          <span role="group" aria-label={question} onKeyDown={(e) => e.key === "Escape" && cancel()}>
            {" "}{question}{" "}
            <button type="button" class="contrast" ref={confirm} onClick={act} aria-busy={busy} disabled={busy}>
              {row.control === "leave" ? "Yes, leave" : `Yes, remove ${row.userId}`}
            </button>{" "}
            <button type="button" class="secondary" onClick={cancel} disabled={busy}>Cancel</button>
          </span>
        ) : (
          <>
            {" "}
            <button type="button" class="secondary outline" ref={ask} onClick={() => setConfirming(true)}>
              {verb}
            </button>
          </>
        ))}
    </li>
  );
}

function AddMember({
  agent,
  onAdded,
  onError,
}: {
  agent: Agent;
  onAdded: () => void;
  onError: (error: unknown) => void;
}) {
  const { api } = useApp();
  const [userId, setUserId] = useState("");
  const [role, setRole] = useState<AssignableRole>("shared");
  const [busy, setBusy] = useState(false);

  const add = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    onError(null);
    try {
      await api.assignMember(agent.id, userId.trim(), role);
      setUserId("");
      onAdded();
    } catch (failure) {
      onError(failure);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="inline" onSubmit={add} aria-label="Add member">
      <label for="member-user">
        User id
        <input id="member-user" value={userId} onInput={(e) => setUserId(e.currentTarget.value)} required maxLength={200} autocomplete="off" />
      </label>
      <label for="member-role">
        Role
        <select id="member-role" value={role} onChange={(e) => setRole(e.currentTarget.value as AssignableRole)}>
          {ASSIGNABLE_ROLES.map((r) => <option key={r} value={r}>{r}</option>)}
        </select>
      </label>
      <button type="submit" aria-busy={busy} disabled={busy}>Add member</button>
    </form>
  );
}
