import { javascript } from "@codemirror/lang-javascript";
import { python } from "@codemirror/lang-python";
import { defaultHighlightStyle, syntaxHighlighting } from "@codemirror/language";
import { EditorState, Prec, type Extension } from "@codemirror/state";
import { EditorView, keymap } from "@codemirror/view";
import { basicSetup } from "codemirror";
import { useEffect, useRef } from "preact/hooks";
import type { WidgetProps } from "./Widget";

/** Syntax highlighting for the languages templates and models ask for; others stay plain. */
function languageOf(name: string): Extension {
  switch (name.toLowerCase()) {
    case "python":
    case "py":
      return python();
    case "javascript":
    case "js":
      return javascript();
    case "typescript":
    case "ts":
      return javascript({ typescript: true });
    default:
      return [];
  }
}

function useEditor(doc: string, extensions: Extension[]) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  useEffect(() => {
    view.current = new EditorView({
      parent: host.current!,
      state: EditorState.create({ doc, extensions }),
    });
    return () => view.current?.destroy();
  }, []);
  return { host, view };
}

/**
 * CodeMirror 6. Tab is left to the browser (focus moves on, as keyboard users expect);
 * Ctrl/Cmd-Enter submits.
 */
export function CodeEditorWidget({ action, busy, onAnswer, prompt }: WidgetProps & { prompt: string }) {
  const language = String(action.props.language ?? "python");
  const submitRef = useRef<() => void>(() => undefined);
  const { host, view } = useEditor(String(action.props.initial_code ?? ""), [
    basicSetup,
    languageOf(language),
    // Above basicSetup's own Mod-Enter (insert blank line).
    Prec.highest(keymap.of([{ key: "Mod-Enter", run: () => (submitRef.current(), true) }])),
    EditorView.contentAttributes.of({ "aria-label": `${language} code`, "aria-describedby": "code-help" }),
  ]);
  submitRef.current = () => {
    if (!busy) onAnswer({ code: view.current?.state.doc.toString() ?? "" });
  };
  useEffect(() => view.current?.focus(), []);

  return (
    <form onSubmit={(e) => { e.preventDefault(); submitRef.current(); }}>
      <p id="code-prompt"><strong>{prompt}</strong></p>
      <div class="code-editor" ref={host} data-language={language} />
      <small id="code-help">{language} · Ctrl+Enter to submit</small>
      <button type="submit" disabled={busy} aria-busy={busy}>Submit code</button>
    </form>
  );
}

/** Read-only, highlighted code in the transcript. */
export function CodeView({ code, language }: { code: string; language: string }) {
  const { host } = useEditor(code, [
    languageOf(language),
    syntaxHighlighting(defaultHighlightStyle),
    EditorView.editable.of(false),
    EditorState.readOnly.of(true),
    EditorView.lineWrapping,
  ]);
  return <div class="code-view" ref={host} data-language={language} />;
}
