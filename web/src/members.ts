/**
 * Who may change an agent's members, and what the member list offers each person. Only what
 * to show: the agent decides every change itself and refuses the rest (403, 409).
 */
import type { Agent, AssignableRole } from "./types";

/** The server's default admin role (AGENTHOST_AUTH_ADMIN_ROLE); admins act on every agent. */
export const ADMIN_ROLE = "admin";
export const ASSIGNABLE_ROLES: readonly AssignableRole[] = ["shared", "mentee", "observer"];

export interface Viewer {
  sub: string;
  roles: readonly string[];
}

/** "remove": someone else's assignment, for a manager; "leave": one's own. */
export type MemberControl = "remove" | "leave" | null;

export interface MemberRow {
  userId: string;
  /** "owner" for the owner, else the assigned role. */
  role: string;
  isYou: boolean;
  control: MemberControl;
}

export interface MembersView {
  rows: MemberRow[];
  /** The add-member form. */
  canAdd: boolean;
}

/** The owner and admins assign and unassign (README, the Access table). */
export function canManage(agent: Agent, viewer: Viewer): boolean {
  return agent.owner_user_id === viewer.sub || viewer.roles.includes(ADMIN_ROLE);
}

/** The owner first, then every assignment; an archived agent refuses every change (409), so
 * it offers none. */
export function membersView(agent: Agent, viewer: Viewer): MembersView {
  const open = agent.status === "active";
  const manager = open && canManage(agent, viewer);
  const owner: MemberRow = {
    userId: agent.owner_user_id,
    role: "owner",
    isYou: agent.owner_user_id === viewer.sub,
    control: null, // nobody unassigns the owner, and the owner cannot leave
  };
  const others = agent.assignments
    .filter((a) => a.role !== "primary" && a.user_id !== agent.owner_user_id)
    .map((a): MemberRow => {
      const isYou = a.user_id === viewer.sub;
      const control: MemberControl = !open ? null : isYou ? "leave" : manager ? "remove" : null;
      return { userId: a.user_id, role: a.role, isYou, control };
    });
  return { rows: [owner, ...others], canAdd: manager };
}
