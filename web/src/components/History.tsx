import { useApp } from "../context";
import { useLoad } from "../load";
import { answerText } from "../transcript";
import type { SessionDocument } from "../types";
import { ErrorNotice } from "./ErrorNotice";
import { percent, when } from "./format";

/** Past sessions, newest first, each with its summary and, opened, every answer given. */
export function History({ agentId, round }: { agentId: string; round: number }) {
  const { api } = useApp();
  const history = useLoad(() => api.history(agentId), [agentId, round]);
  const past = (history.data ?? []).filter((session) => session.ended_at !== null);

  return (
    <section aria-labelledby="history-title">
      <h2 id="history-title">History</h2>
      {history.error !== null && <ErrorNotice error={history.error} onRetry={history.reload} />}
      {history.data && past.length === 0 && <p>No finished sessions yet.</p>}
      {past.length > 0 && (
        <ul class="history">
          {past.map((session) => <PastSession key={session.session_id} session={session} />)}
        </ul>
      )}
    </section>
  );
}

function PastSession({ session }: { session: SessionDocument }) {
  const summary = session.summary;
  const title = typeof summary?.title === "string" ? summary.title : session.session_type;
  return (
    <li data-session-id={session.session_id}>
      <details>
        <summary>
          <strong>{title}</strong> · {session.status} · {when(session.ended_at)}
          {summary?.score != null && <> · score <strong>{percent(summary.score)}</strong></>}
        </summary>
        {typeof summary?.text === "string" && <p class="summary">{summary.text}</p>}
        <p>
          Reason: {session.end_reason}. {session.items.length} answered
          {summary?.correct_count != null && `, ${summary.correct_count} correct`}.
        </p>
        <ol>
          {session.items.map((item) => (
            <li key={item.item_id}>
              {String(item.client_action?.props.prompt ?? item.agent_prompt)}{" "}
              <em>{item.user_response === null ? "(no answer)" : answerText(item.user_response)}</em>
              {item.evaluation?.correct === true && " ✓"}
              {item.evaluation?.correct === false && " ✗"}
            </li>
          ))}
        </ol>
      </details>
    </li>
  );
}
