import { afterEach, describe, expect, it, vi } from "vitest";
import { Api, ApiError, Unreachable, explain } from "./api";

describe("errors", () => {
  it.each([
    [401, "Please sign in again"],
    [403, "Not allowed"],
    [404, "Not found"],
    [409, "Not possible right now"],
    [503, "Temporarily unavailable"],
  ])("explains %i", (status, title) => {
    expect(explain(new ApiError({ title: "x", status })).title).toBe(title);
  });

  it("explains an unreachable service", () => {
    expect(explain(new Unreachable("down")).title).toBe("Service unreachable");
  });
});

describe("requests", () => {
  type Sent = { url: string; init: RequestInit };
  const sent: Sent[] = [];
  const answer = (response: () => Response) =>
    vi.stubGlobal("fetch", async (url: string, init: RequestInit) => {
      sent.push({ url, init });
      return response();
    });
  const headers = (i: number) => sent[i].init.headers as Record<string, string>;

  afterEach(() => {
    sent.length = 0;
    vi.unstubAllGlobals();
  });

  it("resolves a 204 (no body) to null", async () => {
    answer(() => new Response(null, { status: 204 }));
    await expect(new Api(() => "t").request("DELETE", "/x")).resolves.toBeNull();
  });

  it("assigns a member with a role, under an Idempotency-Key", async () => {
    answer(() => Response.json({ id: "a1" }, { status: 201 }));
    await new Api(() => "t").assignMember("a/1", "bob", "observer");
    expect(sent[0].url).toBe("/api/agents/a%2F1/assignments");
    expect(sent[0].init.method).toBe("POST");
    expect(JSON.parse(String(sent[0].init.body))).toEqual({ user_id: "bob", role: "observer" });
    expect(headers(0)["Idempotency-Key"]).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("unassigns by user id: the agent back, or null when one left (204)", async () => {
    answer(() => Response.json({ id: "a1" }));
    const api = new Api(() => "t");
    expect(await api.unassignMember("a1", "b ob/x")).toEqual({ id: "a1" });
    expect(sent[0].url).toBe("/api/agents/a1/assignments/b%20ob%2Fx");
    expect(sent[0].init.method).toBe("DELETE");
    expect(sent[0].init.body).toBeUndefined();
    answer(() => new Response(null, { status: 204 }));
    expect(await api.unassignMember("a1", "me")).toBeNull();
    expect(headers(1)["Idempotency-Key"]).not.toBe(headers(0)["Idempotency-Key"]);
  });

  it("retries a write whose answer was lost once, with the same key", async () => {
    vi.useFakeTimers();
    let calls = 0;
    vi.stubGlobal("fetch", async (url: string, init: RequestInit) => {
      sent.push({ url, init });
      if (++calls === 1) throw new TypeError("network down");
      return new Response(null, { status: 204 });
    });
    const left = new Api(() => "t").unassignMember("a1", "me");
    await vi.advanceTimersByTimeAsync(1000);
    expect(await left).toBeNull();
    vi.useRealTimers();
    expect(sent).toHaveLength(2);
    expect(headers(1)["Idempotency-Key"]).toBe(headers(0)["Idempotency-Key"]);
  });
});
