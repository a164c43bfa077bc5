import { describe, expect, it } from "vitest";
import { ApiError, Unreachable, explain } from "./api";

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
