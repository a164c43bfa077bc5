/**
 * A session's transcript, rebuilt from its durable events (the log is the truth, not the
 * page): every event carries its log position, and an event at or below the last position
 * applied is ignored, so a replay after a reconnect can never repeat or reorder a message.
 * Ephemeral events (token deltas, tool progress) only decorate the live view.
 */
import type { ClientAction, Evaluation, Json, SessionSummary } from "./types";

/** The client tools the browser renders: their calls and results show as widgets, not text. */
export const WIDGET_TOOLS = new Set(["present_choices", "request_free_text", "present_code_editor"]);

export type Role = "agent" | "user" | "tool" | "system";

export interface Entry {
  /** The log position of the event that produced it, plus an index within that event. */
  key: string;
  role: Role;
  text: string;
  code?: { language: string; source: string };
  evaluation?: Evaluation;
}

export interface Ending {
  status: "completed" | "terminated" | "expired";
  reason: string;
  summary: SessionSummary | null;
}

export interface Transcript {
  sessionId: string;
  lastPosition: number;
  entries: Entry[];
  pending: ClientAction | null;
  ending: Ending | null;
  /** Assistant text streaming in before its message is recorded. */
  streaming: string;
  /** The server tool running now, if any. */
  activity: string | null;
}

export interface DurableEvent {
  position: number;
  type: string;
  data: Record<string, Json>;
}

export interface EphemeralEvent {
  kind: string;
  data: Record<string, Json>;
}

export function emptyTranscript(sessionId: string): Transcript {
  return {
    sessionId,
    lastPosition: 0,
    entries: [],
    pending: null,
    ending: null,
    streaming: "",
    activity: null,
  };
}

interface LlmMessage {
  role: "system" | "user" | "assistant" | "tool";
  content: string;
  tool_calls?: { id: string; name: string; arguments: Record<string, Json> }[];
  tool_call_id?: string | null;
  name?: string | null;
}

/** Applies one durable event; events of other sessions and replays are ignored. */
export function applyDurable(state: Transcript, event: DurableEvent): Transcript {
  if (event.position <= state.lastPosition || event.data.session_id !== state.sessionId) {
    return state;
  }
  const next: Transcript = { ...state, lastPosition: event.position };
  const add = (...entries: Omit<Entry, "key">[]) => {
    next.entries = [
      ...state.entries,
      ...entries.map((entry, index) => ({ ...entry, key: `${event.position}.${index}` })),
    ];
  };
  const data = event.data;
  switch (event.type) {
    case "agent.session.started.v1":
      add({ role: "system", text: "Session started." });
      break;
    case "agent.session.messages.recorded.v1": {
      const messages = (data.messages ?? []) as unknown as LlmMessage[];
      add(...messages.flatMap(messageEntries));
      next.streaming = "";
      next.activity = null;
      break;
    }
    case "agent.client.action.requested.v1": {
      const action = data.action as unknown as ClientAction;
      add({ role: "agent", text: String(action.props.prompt ?? "") });
      next.pending = action;
      break;
    }
    case "agent.client.response.received.v1": {
      const response = data.response as { tool_call_id: string; response: Json };
      const evaluation = (data.evaluation ?? undefined) as Evaluation | undefined;
      const language = state.pending?.widget_type === "code_editor"
        ? String(state.pending.props.language ?? "python")
        : null;
      add(userAnswer(response.response, language, evaluation));
      if (state.pending?.tool_call_id === response.tool_call_id) next.pending = null;
      break;
    }
    case "agent.session.completed.v1":
      next.ending = {
        status: "completed",
        reason: String(data.reason),
        summary: (data.summary ?? null) as SessionSummary | null,
      };
      next.pending = null;
      break;
    case "agent.session.terminated.v1":
      next.ending = {
        status: data.final_status === "expired" ? "expired" : "terminated",
        reason: String(data.reason),
        summary: null,
      };
      next.pending = null;
      break;
    default: // execution suspended/resumed: bookkeeping, nothing to show
  }
  return next;
}

export function applyEphemeral(state: Transcript, event: EphemeralEvent): Transcript {
  switch (event.kind) {
    case "content_chunk":
      return { ...state, streaming: state.streaming + String(event.data.delta ?? "") };
    case "tool_executing":
      return { ...state, activity: String(event.data.tool_name) };
    case "tool_result":
      return { ...state, activity: null };
    default:
      return state;
  }
}

function messageEntries(message: LlmMessage): Omit<Entry, "key">[] {
  switch (message.role) {
    case "assistant": {
      const entries: Omit<Entry, "key">[] = [];
      if (message.content.trim()) entries.push({ role: "agent", text: message.content });
      for (const call of message.tool_calls ?? []) {
        if (!WIDGET_TOOLS.has(call.name)) entries.push({ role: "tool", text: `Used ${call.name}` });
      }
      return entries;
    }
    case "tool":
      return message.name && WIDGET_TOOLS.has(message.name)
        ? []
        : [{ role: "tool", text: `${message.name ?? "tool"}: ${clip(message.content, 300)}` }];
    case "user":
      return message.content.trim() ? [{ role: "user", text: message.content }] : [];
    default:
      return [];
  }
}

function userAnswer(
  response: Json,
  language: string | null,
  evaluation: Evaluation | undefined,
): Omit<Entry, "key"> {
  const answer = response as Record<string, Json> | null;
  if (language !== null && answer && typeof answer.code === "string") {
    return { role: "user", text: "", code: { language, source: answer.code }, evaluation };
  }
  return { role: "user", text: answerText(response), evaluation };
}

/** A widget answer as the user would say it. */
export function answerText(response: Json): string {
  if (response !== null && typeof response === "object" && !Array.isArray(response)) {
    for (const field of ["selection", "text", "code"]) {
      const value = response[field];
      if (typeof value === "string") return value;
    }
    if (typeof response.index === "number") return `option ${response.index + 1}`;
  }
  return JSON.stringify(response);
}

function clip(text: string, limit: number): string {
  return text.length <= limit ? text : `${text.slice(0, limit - 1)}…`;
}
