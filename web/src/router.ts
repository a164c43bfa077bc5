/** Hash routes (`#/`, `#/agents/<id>`): the server serves one page, whatever the path. */
import { useEffect, useState } from "preact/hooks";

export type Route = { page: "agents" } | { page: "agent"; agentId: string };

export function parseRoute(hash: string): Route {
  const match = /^#\/agents\/([^/]+)$/.exec(hash);
  return match ? { page: "agent", agentId: decodeURIComponent(match[1]) } : { page: "agents" };
}

export function agentHref(agentId: string): string {
  return `#/agents/${encodeURIComponent(agentId)}`;
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const changed = () => setRoute(parseRoute(location.hash));
    window.addEventListener("hashchange", changed);
    return () => window.removeEventListener("hashchange", changed);
  }, []);
  return route;
}
