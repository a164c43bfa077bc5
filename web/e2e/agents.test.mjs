// The agents a user has: list with metrics, get-or-create, preferences, archive, history;
// and the same pages on a phone-sized screen.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  inSession,
  answerPending,
  withBrowser,
  openAgent,
  screenshot,
  signIn,
  startSession,
} from "./support.mjs";

const newPage = withBrowser();

test("get or create, history with scores, preferences and archive", async () => {
  const { page } = await newPage();
  await signIn(page, "carol");
  const id = await openAgent(page, "wellness");
  await page.getByRole("link", { name: "My agents" }).click();
  assert.equal(await openAgent(page, "wellness"), id, "get-or-create gives the same agent");

  await startSession(page, "Arithmetic basics");
  while (await page.locator(".widget").count()) await answerPending(page);
  const past = page.locator(".history > li").first();
  await past.waitFor();
  assert.match(await past.innerText(), /Arithmetic basics · completed · .* score 100%/);
  await past.locator("summary").click();
  assert.match(await past.innerText(), /What is 7 × 8\? 56 ✓/);
  await screenshot(page, "agent-history");

  await page.getByText("Preferences", { exact: true }).click();
  await page.getByLabel(/^Preferences/).fill('{"language": "fr", "response_policy": "queue"}');
  await page.getByRole("button", { name: "Save preferences" }).click();
  await page.getByRole("status").filter({ hasText: "Saved." }).waitFor();
  await page.reload();
  await page.getByText("Preferences", { exact: true }).click();
  assert.deepEqual(JSON.parse(await page.getByLabel(/^Preferences/).inputValue()), {
    language: "fr",
    response_policy: "queue",
  });
  await page.getByLabel(/^Preferences/).fill("[1, 2]");
  await page.getByRole("button", { name: "Save preferences" }).click();
  await page.getByText("Preferences are a JSON object").waitFor();

  await page.getByRole("link", { name: "My agents" }).click();
  const card = page.locator(`[data-agent-id="${id}"]`);
  await card.waitFor();
  assert.match(await card.innerText(), /wellness/);
  assert.match(await card.innerText(), /Sessions\s*1/);
  assert.match(await card.innerText(), /Average score\s*100%/);
  assert.match(await card.innerText(), /completed, .*100%/);
  await screenshot(page, "agents");

  await card.getByRole("link").click();
  await page.getByText("Archive this agent").click();
  await page.getByLabel("Reason").fill("finished the course");
  await page.getByRole("button", { name: "Archive", exact: true }).click();
  await page.locator("h1 .badge", { hasText: "archived" }).waitFor();
  assert.equal(await page.getByRole("button", { name: "Start" }).count(), 0);

  await page.getByRole("link", { name: "My agents" }).click();
  await page.getByRole("heading", { name: "My agents" }).waitFor();
  await page.getByText("No agents yet").waitFor();
  await page.getByLabel("Show archived agents").check();
  await page.locator(`[data-agent-id="${id}"] .badge`, { hasText: "archived" }).waitFor();
  assert.deepEqual(page.pageErrors, []);
});

test("readable on a phone: nothing wider than the screen", async () => {
  const phone = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true };
  const { page } = await inSession(newPage, "dave", "tutor", "Arithmetic basics", phone);
  await answerPending(page);
  await answerPending(page);
  for (const where of ["session", "list"]) {
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `${where}: ${overflow}px wider than the screen`);
    if (where === "session") {
      await screenshot(page, "mobile-session");
      await page.getByRole("link", { name: "My agents" }).click();
      await page.locator("[data-agent-id]").first().waitFor();
    }
  }
  await screenshot(page, "mobile-agents");
});
