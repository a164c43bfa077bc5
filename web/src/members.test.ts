import { describe, expect, it } from "vitest";
import { canManage, membersView } from "./members";
import type { Agent, Assignment } from "./types";

const at = "2026-11-25T16:00:00Z";
const member = (user_id: string, role: Assignment["role"]): Assignment => ({
  user_id,
  role,
  assigned_by: "ann",
  assigned_at: at,
});
const agent = (status = "active"): Agent =>
  ({
    id: "a1",
    owner_user_id: "ann",
    status,
    assignments: [member("ann", "primary"), member("bob", "shared"), member("cy", "observer")],
  }) as Agent;
const user = (sub: string, ...roles: string[]) => ({ sub, roles });

describe("who manages members", () => {
  it("is the owner or an admin, nobody else", () => {
    expect(canManage(agent(), user("ann"))).toBe(true);
    expect(canManage(agent(), user("zed", "admin"))).toBe(true);
    expect(canManage(agent(), user("bob"))).toBe(false);
    expect(canManage(agent(), user("bob", "staff"))).toBe(false);
  });
});

describe("what the member list shows", () => {
  const controls = (view: ReturnType<typeof membersView>) =>
    Object.fromEntries(view.rows.map((row) => [row.userId, row.control]));

  it("lists the owner first, then every assignment with its role", () => {
    const view = membersView(agent(), user("bob"));
    expect(view.rows.map((row) => [row.userId, row.role, row.isYou])).toEqual([
      ["ann", "owner", false],
      ["bob", "shared", true],
      ["cy", "observer", false],
    ]);
  });

  it("gives the owner the add form and Remove on everyone but themselves", () => {
    const view = membersView(agent(), user("ann"));
    expect(view.canAdd).toBe(true);
    expect(controls(view)).toEqual({ ann: null, bob: "remove", cy: "remove" });
  });

  it("gives an admin who is no member the same controls", () => {
    const view = membersView(agent(), user("zed", "admin"));
    expect(view.canAdd).toBe(true);
    expect(controls(view)).toEqual({ ann: null, bob: "remove", cy: "remove" });
  });

  it("gives a member only Leave, on their own row", () => {
    const view = membersView(agent(), user("bob"));
    expect(view.canAdd).toBe(false);
    expect(controls(view)).toEqual({ ann: null, bob: "leave", cy: null });
  });

  it("lets an observer leave too (the API allows it), and nothing else", () => {
    const view = membersView(agent(), user("cy"));
    expect(view.canAdd).toBe(false);
    expect(controls(view)).toEqual({ ann: null, bob: null, cy: "leave" });
  });

  it("makes an admin's own assignment a Leave, not a Remove", () => {
    const a = agent();
    a.assignments.push(member("zed", "mentee"));
    expect(controls(membersView(a, user("zed", "admin"))).zed).toBe("leave");
  });

  it("shows an archived agent's members read-only, to everyone", () => {
    for (const who of [user("ann"), user("zed", "admin"), user("bob")]) {
      const view = membersView(agent("archived"), who);
      expect(view.canAdd).toBe(false);
      expect(view.rows.every((row) => row.control === null)).toBe(true);
    }
  });

  it("still shows the owner when the document lists no primary assignment", () => {
    const a = { ...agent(), assignments: [member("bob", "mentee")] };
    expect(membersView(a, user("bob")).rows.map((row) => row.userId)).toEqual(["ann", "bob"]);
  });
});
