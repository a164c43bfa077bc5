import { describe, expect, it } from "vitest";
import { readToken } from "./auth";

describe("tokens", () => {
  it("reads the subject and expiry, and refuses what is not a JWT", () => {
    const payload = btoa(JSON.stringify({ sub: "u1", preferred_username: "Ann", exp: 10 })).replace(/=+$/, "");
    expect(readToken(`h.${payload}.s`)).toEqual({ token: `h.${payload}.s`, sub: "u1", user: "Ann", expiresAt: 10_000 });
    expect(readToken("not-a-token")).toBeNull();
  });
});
