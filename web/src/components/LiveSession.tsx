import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError } from "../api";
import { useApp } from "../context";
import { useSessionStream, type Connection } from "../stream";
import type { Entry, Ending } from "../transcript";
import type { ClientAction, Json } from "../types";
import { CodeView } from "../widgets/LazyCode";
import { Widget } from "../widgets/Widget";
import { ErrorNotice } from "./ErrorNotice";
import { percent } from "./format";

const CONNECTION_TEXT: Record<Connection, string> = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Connection lost: reconnecting…",
  closed: "Session over",
  refused: "The live stream was refused",
};

export function LiveSession({
  agentId,
  sessionId,
  readOnly,
  onEnded,
  onStartAnother,
}: {
  agentId: string;
  sessionId: string;
  readOnly: boolean;
  onEnded: () => void;
  onStartAnother: () => void;
}) {
  const { api, token } = useApp();
  const { transcript, connection, refusedWith } = useSessionStream(agentId, sessionId, token);
  const [refusal, setRefusal] = useState<{ toolCallId: string; reasons: string[] } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  // A write's answer is the aggregate's own state at its log position: its next widget can
  // show at once, until the streamed transcript has caught up with that position.
  const [ahead, setAhead] = useState<{ position: number; pending: ClientAction | null } | null>(null);
  const shownAt = useRef(performance.now());
  const pending =
    ahead && ahead.position > transcript.lastPosition ? ahead.pending : transcript.pending;

  useEffect(() => {
    shownAt.current = performance.now();
  }, [pending?.tool_call_id]);
  useEffect(() => {
    if (transcript.ending) onEnded();
  }, [transcript.ending !== null]);

  const answer = async (action: ClientAction, response: Json) => {
    setBusy(true);
    setError(null);
    try {
      const state = await api.respond(agentId, action, response, performance.now() - shownAt.current);
      setAhead({ position: state.position, pending: state.session?.pending_action ?? null });
      setRefusal(null);
    } catch (failure) {
      if (failure instanceof ApiError && failure.problem.code === "invalid_response") {
        setRefusal({ toolCallId: action.tool_call_id, reasons: failure.problem.reasons ?? [] });
      } else {
        setError(failure);
      }
    } finally {
      setBusy(false);
    }
  };

  const end = async () => {
    try {
      await api.terminate(agentId);
    } catch (failure) {
      setError(failure);
    }
  };

  return (
    <article
      class="session"
      aria-labelledby="session-title"
      data-session-id={sessionId}
      data-caught-up={String(!ahead || transcript.lastPosition >= ahead.position)}
    >
      <header class="session-header">
        <h2 id="session-title">Current session</h2>
        <span class={`connection ${connection}`} role="status" data-connection={connection}>
          {CONNECTION_TEXT[connection]}
          {refusedWith ? ` (${refusedWith})` : ""}
        </span>
      </header>
      <ol class="transcript" aria-label="Transcript" aria-live="polite">
        {transcript.entries.map((entry) => <TranscriptEntry key={entry.key} entry={entry} />)}
        {transcript.streaming && (
          <li class="entry agent streaming" aria-busy="true">{transcript.streaming}</li>
        )}
        {transcript.activity && (
          <li class="entry tool" aria-busy="true">Running {transcript.activity}…</li>
        )}
      </ol>
      {pending && readOnly && <p class="waiting">Waiting for the owner's answer…</p>}
      {pending && !readOnly && (
        <Widget
          key={pending.tool_call_id}
          action={pending}
          busy={busy}
          reasons={refusal?.toolCallId === pending.tool_call_id ? refusal.reasons : []}
          onAnswer={(response) => answer(pending, response)}
        />
      )}
      {error !== null && <ErrorNotice error={error} />}
      {transcript.ending ? (
        <SessionEnd ending={transcript.ending} onStartAnother={readOnly ? null : onStartAnother} />
      ) : readOnly ? null : (
        <footer>
          <button type="button" class="secondary outline" onClick={end}>End session</button>
        </footer>
      )}
    </article>
  );
}

function TranscriptEntry({ entry }: { entry: Entry }) {
  const evaluation = entry.evaluation;
  return (
    <li class={`entry ${entry.role}`} data-role={entry.role}>
      {entry.code ? <CodeView code={entry.code.source} language={entry.code.language} /> : entry.text}
      {evaluation && (
        <p class={`evaluation ${evaluation.correct === true ? "correct" : evaluation.correct === false ? "incorrect" : ""}`}>
          {evaluation.feedback}
          {evaluation.max_points ? ` (${evaluation.points ?? 0}/${evaluation.max_points})` : ""}
        </p>
      )}
    </li>
  );
}

function SessionEnd({ ending, onStartAnother }: { ending: Ending; onStartAnother: (() => void) | null }) {
  const summary = ending.summary;
  return (
    <section class="session-end" aria-label="Session result" role="status">
      <h3>
        Session {ending.status}
        {summary?.score != null && <> — score <strong>{percent(summary.score)}</strong></>}
        {summary?.passed != null && <> ({summary.passed ? "passed" : "not passed"})</>}
      </h3>
      <p>Reason: {ending.reason}</p>
      {typeof summary?.text === "string" && <p class="summary">{summary.text}</p>}
      {summary?.correct_count != null && (
        <p>
          {summary.correct_count} correct, {summary.incorrect_count ?? 0} incorrect
          {summary.max_points ? `, ${summary.points}/${summary.max_points} points` : ""}
        </p>
      )}
      {onStartAnother && <button type="button" onClick={onStartAnother}>Start another session</button>}
    </section>
  );
}
