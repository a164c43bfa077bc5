import { useEffect, useRef, useState } from "preact/hooks";
import type { WidgetProps } from "./Widget";

/** Radio buttons: arrow keys move between options, Enter submits. */
export function MultipleChoice({ action, busy, onAnswer, prompt }: WidgetProps & { prompt: string }) {
  const options = (action.props.options ?? []) as string[];
  const [selection, setSelection] = useState<string | null>(null);
  const first = useRef<HTMLInputElement>(null);
  useEffect(() => first.current?.focus(), []);

  const submit = (event: Event) => {
    event.preventDefault();
    if (selection !== null) onAnswer({ selection });
  };

  return (
    <form onSubmit={submit}>
      <fieldset>
        <legend>{prompt}</legend>
        {options.map((option, index) => (
          <label key={option}>
            <input
              ref={index === 0 ? first : undefined}
              type="radio"
              name={action.tool_call_id}
              value={option}
              checked={selection === option}
              onChange={() => setSelection(option)}
            />
            {option}
          </label>
        ))}
      </fieldset>
      <button type="submit" disabled={busy || selection === null} aria-busy={busy}>Answer</button>
    </form>
  );
}
