/**
 * The agent API over fetch: bearer token in, problem+json errors out as ApiError.
 * Writes carry an Idempotency-Key so that retrying one after a lost answer never acts twice.
 */
import type {
  Agent,
  AssignableRole,
  ClientAction,
  Json,
  Problem,
  SessionState,
  SessionDocument,
  Template,
  UiConfig,
} from "./types";

export class ApiError extends Error {
  readonly problem: Problem;

  constructor(problem: Problem) {
    super(problem.detail ?? problem.title);
    this.problem = problem;
  }

  get status(): number {
    return this.problem.status;
  }
}

/** The service could not be reached at all (down, or the network is). */
export class Unreachable extends Error {}

type TokenSource = () => string | null;

export class Api {
  constructor(
    private readonly token: TokenSource,
    private readonly base = "",
  ) {}

  async request<T>(method: string, path: string, body?: unknown, key?: string): Promise<T> {
    const headers: Record<string, string> = { Accept: "application/json" };
    const token = this.token();
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (key) headers["Idempotency-Key"] = key;
    let response: Response;
    try {
      response = await fetch(this.base + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      throw new Unreachable(`The service cannot be reached (${String(error)}).`);
    }
    if (!response.ok) throw new ApiError(await problemOf(response));
    // 204 (a member who left): there is no body to read.
    if (response.status === 204) return null as T;
    return (await response.json()) as T;
  }

  /** A write, retried once with the same Idempotency-Key if the network drops its answer. */
  async write<T>(method: string, path: string, body?: unknown): Promise<T> {
    const key = crypto.randomUUID();
    try {
      return await this.request<T>(method, path, body, key);
    } catch (error) {
      if (!(error instanceof Unreachable)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 1000));
      return this.request<T>(method, path, body, key);
    }
  }

  config = () => this.request<UiConfig>("GET", "/api/ui/config");
  templates = () => this.request<Template[]>("GET", "/api/templates");
  agents = (includeArchived = false) =>
    this.request<Agent[]>("GET", `/api/agents?include_archived=${includeArchived}`);
  agent = (id: string) => this.request<Agent>("GET", `/api/agents/${enc(id)}`);
  getOrCreate = (agentType: string) =>
    this.write<Agent>("POST", "/api/agents", { agent_type: agentType });
  archive = (id: string, reason: string) =>
    this.write<Agent>("POST", `/api/agents/${enc(id)}/archive`, { reason });
  updatePreferences = (id: string, changes: Record<string, Json>) =>
    this.write<Agent>("PATCH", `/api/agents/${enc(id)}/preferences`, { changes });
  assignMember = (id: string, userId: string, role: AssignableRole) =>
    this.write<Agent>("POST", `/api/agents/${enc(id)}/assignments`, { user_id: userId, role });
  /** The updated agent, or null when the caller removed themselves (left: 204). */
  unassignMember = (id: string, userId: string) =>
    this.write<Agent | null>("DELETE", `/api/agents/${enc(id)}/assignments/${enc(userId)}`);
  session = (id: string) => this.request<SessionState>("GET", `/api/agents/${enc(id)}/session`);
  history = (id: string) => this.request<SessionDocument[]>("GET", `/api/agents/${enc(id)}/sessions`);
  startSession = (id: string, templateId: string | null) =>
    this.write<SessionState>(
      "POST",
      `/api/agents/${enc(id)}/sessions`,
      templateId ? { config: { template_id: templateId } } : {},
    );
  respond = (id: string, action: ClientAction, response: Json, responseTimeMs: number) =>
    this.write<SessionState>("POST", `/api/agents/${enc(id)}/session/respond`, {
      tool_call_id: action.tool_call_id,
      response,
      response_time_ms: Math.max(0, Math.round(responseTimeMs)),
    });
  terminate = (id: string) =>
    this.write<SessionState>("DELETE", `/api/agents/${enc(id)}/session?reason=Ended+by+the+user`);
}

const enc = encodeURIComponent;

async function problemOf(response: Response): Promise<Problem> {
  const type = response.headers.get("content-type") ?? "";
  if (type.includes("json")) {
    try {
      return (await response.json()) as Problem;
    } catch {
      // fall through: a proxy's broken body is still an error of this status
    }
  }
  return { title: response.statusText || "Request failed", status: response.status };
}

/** What to tell a person about an error, by status: never a blank page. */
export function explain(error: unknown): { title: string; detail: string } {
  if (error instanceof Unreachable) {
    return { title: "Service unreachable", detail: "The Agent Host does not answer. Check that it runs, then retry." };
  }
  if (!(error instanceof ApiError)) {
    return { title: "Something went wrong", detail: String(error) };
  }
  const { problem } = error;
  const detail = problem.detail ?? "";
  switch (problem.status) {
    case 401:
      return { title: "Please sign in again", detail: "Your sign-in is missing or has expired." };
    case 403:
      return { title: "Not allowed", detail: detail || "You may look at this agent but not act on it." };
    case 404:
      return { title: "Not found", detail: detail || "It does not exist, or it is not yours." };
    case 409:
      return { title: "Not possible right now", detail: detail || "The agent's state refuses this." };
    case 503:
      return { title: "Temporarily unavailable", detail: detail || "A store or model is unavailable; retry shortly." };
    default:
      return { title: problem.title, detail };
  }
}
