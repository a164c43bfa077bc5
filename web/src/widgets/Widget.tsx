import type { ClientAction, Json } from "../types";
import { CodeEditorWidget } from "./LazyCode";
import { FreeText } from "./FreeText";
import { MultipleChoice } from "./MultipleChoice";

export interface WidgetProps {
  action: ClientAction;
  busy: boolean;
  onAnswer: (response: Json) => void;
}

/** The pending client action, rendered by its widget type; refusals are listed under it. */
export function Widget(props: WidgetProps & { reasons: string[] }) {
  const { action, reasons } = props;
  const prompt = String(action.props.prompt ?? "");
  return (
    <section
      class="widget"
      aria-label="Your answer"
      data-widget={action.widget_type}
      data-tool-call-id={action.tool_call_id}
    >
      {typeof action.props.context === "string" && <p class="context">{action.props.context}</p>}
      {action.widget_type === "multiple_choice" ? (
        <MultipleChoice {...props} prompt={prompt} />
      ) : action.widget_type === "free_text" ? (
        <FreeText {...props} prompt={prompt} />
      ) : action.widget_type === "code_editor" ? (
        <CodeEditorWidget {...props} prompt={prompt} />
      ) : (
        <p class="error-text">This page cannot show a "{action.widget_type}" widget yet.</p>
      )}
      {reasons.length > 0 && (
        <div role="alert" class="refusal">
          <strong>Your answer was not accepted:</strong>
          <ul>{reasons.map((reason) => <li key={reason}>{reason}</li>)}</ul>
        </div>
      )}
    </section>
  );
}
