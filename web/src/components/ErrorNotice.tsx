import { ApiError, explain } from "../api";
import { useApp } from "../context";

/** An error as a person can act on it: what happened, and a way on (retry or back). */
export function ErrorNotice({ error, onRetry }: { error: unknown; onRetry?: () => void }) {
  const { expired } = useApp();
  const { title, detail } = explain(error);
  const status = error instanceof ApiError ? error.status : null;
  return (
    <div class="notice error" role="alert" data-status={status ?? "network"}>
      <strong>{title}</strong>
      {detail && <p>{detail}</p>}
      <footer>
        {status === 401 ? (
          <button type="button" onClick={expired}>Sign in</button>
        ) : (
          onRetry && <button type="button" class="secondary" onClick={onRetry}>Retry</button>
        )}{" "}
        {(status === 403 || status === 404) && <a href="#/">Back to my agents</a>}
      </footer>
    </div>
  );
}
