import { describe, expect, it } from "vitest";
import { readToken } from "./auth";

describe("tokens", () => {
  it("reads the subject and expiry, and refuses what is not a JWT", () => {
    const payload = btoa(JSON.stringify({ sub: "u1", preferred_username: "Ann", exp: 10 })).replace(/=+$/, "");
    expect(readToken(`h.${payload}.s`)).toEqual({ token: `h.${payload}.s`, sub: "u1", user: "Ann", expiresAt: 10_000, roles: [] });
    expect(readToken("not-a-token")).toBeNull();
  });

  it("reads the roles the server counts: top-level and Keycloak's realm roles", () => {
    const claims = { sub: "u1", roles: ["admin"], realm_access: { roles: ["staff", 7] } };
    const payload = btoa(JSON.stringify(claims)).replace(/=+$/, "");
    expect(readToken(`h.${payload}.s`)?.roles).toEqual(["admin", "staff"]);
    const malformed = btoa(JSON.stringify({ sub: "u1", roles: "admin", realm_access: [] })).replace(/=+$/, "");
    expect(readToken(`h.${malformed}.s`)?.roles).toEqual([]);
  });
});
