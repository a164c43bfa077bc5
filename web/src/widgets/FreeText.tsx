import { useEffect, useRef, useState } from "preact/hooks";
import type { WidgetProps } from "./Widget";

/** A line or a text area. Limits are shown as hints; the server is the one judge of them. */
export function FreeText({ action, busy, onAnswer, prompt }: WidgetProps & { prompt: string }) {
  const { placeholder, min_length: min, max_length: max, multiline } = action.props;
  const [text, setText] = useState("");
  const field = useRef<HTMLInputElement & HTMLTextAreaElement>(null);
  useEffect(() => field.current?.focus(), []);
  const hint = [
    typeof min === "number" && min > 0 ? `at least ${min} characters` : null,
    typeof max === "number" ? `at most ${max} characters` : null,
  ].filter(Boolean).join(", ");
  const id = `answer-${action.tool_call_id}`;
  const common = {
    id,
    ref: field,
    value: text,
    placeholder: typeof placeholder === "string" ? placeholder : undefined,
    onInput: (e: Event) => setText((e.currentTarget as HTMLInputElement).value),
    "aria-describedby": hint ? `${id}-hint` : undefined,
  };

  return (
    <form onSubmit={(e) => { e.preventDefault(); onAnswer({ text }); }}>
      <label for={id}>{prompt}</label>
      {multiline ? <textarea rows={5} {...common} /> : <input type="text" autoComplete="off" {...common} />}
      {hint && <small id={`${id}-hint`}>{hint} ({text.length} now)</small>}
      <button type="submit" disabled={busy} aria-busy={busy}>Answer</button>
    </form>
  );
}
