/** The API's shapes, as the UI uses them (see /docs for the full OpenAPI schema). */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface ClientAction {
  tool_call_id: string;
  tool_name: string;
  widget_type: string;
  props: Record<string, Json>;
  lock_input: boolean;
}

export interface Evaluation {
  correct?: boolean | null;
  points?: number;
  max_points?: number;
  feedback?: string;
}

export interface SessionItem {
  item_id: string;
  sequence: number;
  agent_prompt: string;
  client_action: ClientAction | null;
  user_response: Json;
  evaluation: Evaluation | null;
  started_at: string;
  completed_at: string | null;
}

export interface SessionSummary {
  score?: number;
  passed?: boolean;
  points?: number;
  max_points?: number;
  correct_count?: number;
  incorrect_count?: number;
  [key: string]: Json | undefined;
}

export interface Session {
  session_id: string;
  session_type: string;
  status: string;
  config: { template_id?: string | null };
  items: SessionItem[];
  pending_action: ClientAction | null;
  started_at: string;
  ended_at: string | null;
  end_reason: string | null;
  summary: SessionSummary | null;
}

export interface SessionState {
  agent_id: string;
  position: number;
  outcome: string | null;
  session: Session | null;
}

export interface SessionDocument extends Session {
  agent_id: string;
}

/** What an owner or admin may assign; the owner alone holds `primary`. */
export type AssignableRole = "shared" | "mentee" | "observer";
export type AssignmentRole = "primary" | AssignableRole;

export interface Assignment {
  user_id: string;
  role: AssignmentRole;
  assigned_by: string;
  assigned_at: string;
}

export interface Agent {
  id: string;
  owner_user_id: string;
  agent_type: string;
  status: string;
  name: string;
  preferences: Record<string, Json>;
  /** The owner's own entry (role `primary`) and everyone assigned to the agent. */
  assignments: Assignment[];
  total_sessions: number;
  total_interactions: number;
  successful_completions: number;
  average_score: number | null;
  has_active_session: boolean;
  active_session_id: string | null;
  last_session: {
    session_id: string;
    status: string;
    ended_at: string;
    end_reason: string;
    summary: SessionSummary | null;
  } | null;
  archived_at: string | null;
  last_interaction_at: string | null;
  position: number;
}

export interface Template {
  id: string;
  title: string;
  description: string;
  agent_type: string;
  items: number;
  time_limit_seconds: number | null;
}

export interface UiConfig {
  auth_mode: "dev" | "oidc";
  oidc: { issuer: string; client_id: string; scope: string } | null;
  agent_types: string[];
}

/** An RFC 9457 problem, as every error of the API is answered. */
export interface Problem {
  type?: string;
  title: string;
  status: number;
  detail?: string | null;
  code?: string | null;
  reasons?: string[] | null;
  errors?: { loc?: (string | number)[]; msg: string }[] | null;
}
