/**
 * Follows one session live over SSE and folds its events into a Transcript.
 *
 * The stream is asked for the session's events only (`?session_id=`), from the start on a
 * fresh page, so a reload rebuilds the whole transcript from the log; when the connection
 * drops, the EventSource reconnects by itself with `Last-Event-ID` and the server resumes
 * right after the last event seen. `applyDurable` ignores anything at or below the last
 * position applied, so whatever the network does, nothing is shown twice.
 */
import { EventSource } from "eventsource";
import { useEffect, useState } from "preact/hooks";
import {
  applyDurable,
  applyEphemeral,
  emptyTranscript,
  type Transcript,
} from "./transcript";
import type { Json } from "./types";

export const DURABLE_TYPES = [
  "agent.session.started.v1",
  "agent.session.messages.recorded.v1",
  "agent.client.action.requested.v1",
  "agent.execution.suspended.v1",
  "agent.client.response.received.v1",
  "agent.execution.resumed.v1",
  "agent.session.completed.v1",
  "agent.session.terminated.v1",
];
export const EPHEMERAL_KINDS = ["content_chunk", "tool_executing", "tool_result"];

export type Connection = "connecting" | "live" | "reconnecting" | "closed" | "refused";

export interface LiveSession {
  transcript: Transcript;
  connection: Connection;
  /** The HTTP status that refused the stream (401, 403, 404...), when `refused`. */
  refusedWith: number | null;
}

export function useSessionStream(
  agentId: string,
  sessionId: string,
  token: () => string | null,
): LiveSession {
  const [live, setLive] = useState<LiveSession>({
    transcript: emptyTranscript(sessionId),
    connection: "connecting",
    refusedWith: null,
  });

  useEffect(() => {
    let transcript = emptyTranscript(sessionId);
    const update = (patch: Partial<LiveSession>) => setLive((old) => ({ ...old, ...patch }));
    const url = `/api/agents/${encodeURIComponent(agentId)}/stream?session_id=${encodeURIComponent(sessionId)}`;
    const source = new EventSource(url, {
      fetch: (input, init) => {
        const bearer = token();
        const headers = { ...init.headers, ...(bearer ? { Authorization: `Bearer ${bearer}` } : {}) };
        return fetch(input, { ...init, headers });
      },
    });
    update({ transcript, connection: "connecting", refusedWith: null });
    source.onopen = () => update({ connection: "live" });
    source.onerror = (error) => {
      if (source.readyState === EventSource.CLOSED) {
        update({ connection: "refused", refusedWith: error.code ?? null });
      } else if (transcript.ending === null) {
        update({ connection: "reconnecting" });
      }
    };
    for (const type of DURABLE_TYPES) {
      source.addEventListener(type, (message) => {
        const event = JSON.parse(message.data) as { position: number; data: Record<string, Json> };
        transcript = applyDurable(transcript, { position: event.position, type, data: event.data });
        if (transcript.ending !== null) source.close(); // the server ends the stream too
        update({ transcript, connection: transcript.ending ? "closed" : "live" });
      });
    }
    for (const kind of EPHEMERAL_KINDS) {
      source.addEventListener(kind, (message) => {
        const event = JSON.parse(message.data) as { data: Record<string, Json> };
        transcript = applyEphemeral(transcript, { kind, data: event.data });
        update({ transcript });
      });
    }
    return () => source.close();
  }, [agentId, sessionId]);

  return live;
}
