/**
 * CodeMirror is most of the bundle and only code tasks need it: it is loaded on first use,
 * with plain text standing in meanwhile.
 */
import { useEffect, useState } from "preact/hooks";
import type { WidgetProps } from "./Widget";

type CodeModule = typeof import("./CodeEditor");
let loading: Promise<CodeModule> | null = null;

function useCodeModule(): CodeModule | null {
  const [module, setModule] = useState<CodeModule | null>(null);
  useEffect(() => {
    let current = true;
    (loading ??= import("./CodeEditor")).then((loaded) => current && setModule(loaded));
    return () => {
      current = false;
    };
  }, []);
  return module;
}

export function CodeEditorWidget(props: WidgetProps & { prompt: string }) {
  const module = useCodeModule();
  return module ? <module.CodeEditorWidget {...props} /> : <p aria-busy="true">Loading the editor…</p>;
}

export function CodeView(props: { code: string; language: string }) {
  const module = useCodeModule();
  return module ? <module.CodeView {...props} /> : <pre>{props.code}</pre>;
}
