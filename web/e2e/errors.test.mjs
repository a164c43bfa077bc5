// Clear error states instead of a blank page: someone else's agent, a refused token, a
// service that is down, a conflict between two tabs, and an observer trying to act.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  api,
  cuttableProxy,
  withBrowser,
  openAgent,
  screenshot,
  signIn,
  startSession,
} from "./support.mjs";

const newPage = withBrowser();

test("another user's agent is not reachable", async () => {
  const alice = await api("alice", "POST", "/api/agents", { agent_type: "planner" });
  const { page } = await newPage();
  await signIn(page, "bob");
  assert.equal(await page.locator(`[data-agent-id="${alice.id}"]`).count(), 0);
  await page.goto(`/#/agents/${alice.id}`);
  const notice = page.locator("[role=alert][data-status='404']");
  await notice.waitFor();
  assert.match(await notice.innerText(), /Not found/);
  assert.doesNotMatch(await page.locator("main").innerText(), /Planner agent/);
  await screenshot(page, "error-not-found");
  await notice.getByRole("link", { name: "Back to my agents" }).click();
  await page.getByRole("heading", { name: "My agents" }).waitFor();
});

test("a refused token leads back to sign-in with a reason", async () => {
  const { page } = await newPage();
  const forged = [
    { alg: "HS256", typ: "JWT" },
    { sub: "mallory", exp: Math.floor(Date.now() / 1000) + 3600 },
  ].map((part) => Buffer.from(JSON.stringify(part)).toString("base64url"));
  await page.goto(`/#token=${forged.join(".")}.c2lnbmF0dXJl`);
  await page.getByText("expired or was refused").waitFor();
  await page.getByLabel("Development token").waitFor();
  await screenshot(page, "sign-in");
});

test("a service that is down shows so, and Retry recovers", async () => {
  const proxy = await cuttableProxy();
  try {
    const { page } = await newPage({ baseURL: proxy.url });
    await signIn(page, "bob");
    proxy.cut();
    await page.getByLabel("Show archived agents").check();
    const notice = page.getByRole("alert").filter({ hasText: "Service unreachable" });
    await notice.waitFor();
    await screenshot(page, "error-unreachable");
    proxy.restore();
    await notice.getByRole("button", { name: "Retry" }).click();
    await notice.waitFor({ state: "detached" });
  } finally {
    await proxy.close();
  }
});

test("a second tab that starts a session too gets a clear conflict", async () => {
  const first = await newPage();
  await signIn(first.page, "erin");
  const id = await openAgent(first.page, "tutor");
  const second = await newPage();
  await signIn(second.page, "erin");
  await second.page.goto(`/#/agents/${id}`);
  await second.page.getByRole("button", { name: "Start", exact: true }).waitFor();

  await startSession(first.page, "Arithmetic basics");
  await second.page.getByRole("button", { name: "Start", exact: true }).click();
  const notice = second.page.locator("[role=alert][data-status='409']");
  await notice.waitFor();
  assert.match(await notice.innerText(), /Not possible right now/);
});

test("an observer follows the session live but is offered nothing to act on", async () => {
  const agent = await api("alice", "POST", "/api/agents", { agent_type: "connector" });
  await api("alice", "POST", `/api/agents/${agent.id}/assignments`, { user_id: "bob", role: "observer" });
  await api("alice", "POST", `/api/agents/${agent.id}/sessions`, { config: { template_id: "arithmetic-basics" } });
  const { page } = await newPage();
  await signIn(page, "bob");
  await page.locator(`[data-agent-id="${agent.id}"] a`).click();
  await page.getByText("You are observing this agent").waitFor();
  await page.getByText("Waiting for the owner's answer").waitFor();
  const question = page.locator(".transcript .entry.agent", { hasText: "What is 7 × 8?" });
  await question.waitFor();
  assert.equal(await page.locator(".widget, form").count(), 0);
  assert.equal(await page.getByRole("button", { name: "End session" }).count(), 0);

  // Alice answers elsewhere: bob sees it arrive live.
  const session = await api("alice", "GET", `/api/agents/${agent.id}/session`);
  await api("alice", "POST", `/api/agents/${agent.id}/session/respond`, {
    tool_call_id: session.session.pending_action.tool_call_id,
    response: { selection: "56" },
  });
  await page.locator(".transcript .entry.user", { hasText: "56" }).waitFor();
  await page.locator(".transcript .entry.agent", { hasText: "What is 144 ÷ 12?" }).waitFor();
});
