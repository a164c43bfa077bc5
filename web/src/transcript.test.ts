import { describe, expect, it } from "vitest";
import { answerText, applyDurable, applyEphemeral, emptyTranscript, type DurableEvent } from "./transcript";

const S = "session-1";
const action = {
  tool_call_id: "q1",
  tool_name: "present_choices",
  widget_type: "multiple_choice",
  props: { prompt: "7 × 8?", options: ["54", "56"] },
  lock_input: true,
};
const events: DurableEvent[] = [
  { position: 10, type: "agent.session.started.v1", data: { session_id: S } },
  { position: 11, type: "agent.client.action.requested.v1", data: { session_id: S, action } },
  {
    position: 13,
    type: "agent.client.response.received.v1",
    data: {
      session_id: S,
      response: { tool_call_id: "q1", response: { selection: "56" } },
      evaluation: { correct: true, points: 1, max_points: 1, feedback: "Correct." },
    },
  },
  {
    position: 15,
    type: "agent.session.completed.v1",
    data: { session_id: S, reason: "criteria_met", summary: { score: 1 } },
  },
];
const fold = (list: DurableEvent[]) => list.reduce(applyDurable, emptyTranscript(S));

describe("transcript", () => {
  it("shows the question, then the answer with its evaluation, then the end", () => {
    const midway = fold(events.slice(0, 2));
    expect(midway.pending).toEqual(action);
    const done = fold(events);
    expect(done.entries.map((e) => [e.role, e.text])).toEqual([
      ["system", "Session started."],
      ["agent", "7 × 8?"],
      ["user", "56"],
    ]);
    expect(done.entries[2].evaluation?.correct).toBe(true);
    expect(done.pending).toBeNull();
    expect(done.ending).toEqual({ status: "completed", reason: "criteria_met", summary: { score: 1 } });
  });

  it("ignores replays: a reconnect that resends events repeats nothing", () => {
    const once = fold(events);
    const replayed = fold([...events.slice(0, 3), ...events.slice(1)]);
    expect(replayed).toEqual(once);
  });

  it("ignores other sessions' events", () => {
    const other = { ...events[1], position: 12, data: { ...events[1].data, session_id: "other" } };
    expect(fold([events[0], other]).entries).toHaveLength(1);
  });

  it("hides widget tool calls in LLM messages but shows server tools and text", () => {
    const recorded: DurableEvent = {
      position: 20,
      type: "agent.session.messages.recorded.v1",
      data: {
        session_id: S,
        messages: [
          {
            role: "assistant",
            content: "Let me look.",
            tool_calls: [
              { id: "a", name: "lookup", arguments: {} },
              { id: "b", name: "present_choices", arguments: {} },
            ],
          },
          { role: "tool", content: "42", tool_call_id: "a", name: "lookup" },
        ],
      },
    };
    const streamed = applyEphemeral(emptyTranscript(S), { kind: "content_chunk", data: { delta: "Let" } });
    expect(streamed.streaming).toBe("Let");
    const state = applyDurable(streamed, recorded);
    expect(state.entries.map((e) => e.text)).toEqual(["Let me look.", "Used lookup", "lookup: 42"]);
    expect(state.streaming).toBe("");
  });

  it("says an answer as the user gave it", () => {
    expect(answerText({ selection: "56" })).toBe("56");
    expect(answerText({ text: "twelve" })).toBe("twelve");
    expect(answerText({ index: 1 })).toBe("option 2");
  });
});
