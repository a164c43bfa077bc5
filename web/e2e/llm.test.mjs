// An LLM-driven session (the scripted model of tests/integration/test_web_production.py): the tool
// activity and the widget from the model, then its answer streamed in while you watch.
import assert from "node:assert/strict";
import { test } from "node:test";
import { withBrowser, openAgent, screenshot, signIn, transcript } from "./support.mjs";

const newPage = withBrowser();

test("assistant text streams in live, with tool activity and the model's widget", async () => {
  const { page } = await newPage();
  await signIn(page, "lisa");
  await openAgent(page, "tutor");
  await page.getByLabel("What to do").selectOption("");
  await page.getByRole("button", { name: "Start", exact: true }).click();
  await page.locator(".widget[data-widget=multiple_choice]").waitFor();
  assert.deepEqual(await transcript(page).then((lines) => lines.slice(0, 4)), [
    "Session started.",
    "Let me check the time first.",
    "Used current_time",
    await page.locator(".entry.tool").nth(1).innerText(),
  ]);
  assert.match(await page.locator(".entry.tool").nth(1).innerText(), /^current_time: /);

  await page.getByLabel("42", { exact: true }).check();
  await page.getByRole("button", { name: "Answer" }).click();
  // Mid-reply: part of the text is on screen before the message is complete.
  const streaming = page.locator(".entry.streaming");
  await streaming.waitFor();
  const partial = await streaming.innerText();
  assert.ok(partial.startsWith("Right,") && !partial.endsWith("Well done."), partial);
  await screenshot(page, "session-llm-streaming");

  const result = page.getByRole("status").filter({ hasText: "Session completed" });
  await result.waitFor();
  assert.match(await result.innerText(), /Knows the answer to everything\./); // the summary
  assert.equal(await streaming.count(), 0);
  const lines = await transcript(page);
  assert.equal(lines.at(-1), "Right, forty-two it is. Well done.");
  assert.equal(lines.filter((line) => line.startsWith("Right,")).length, 1);
  assert.deepEqual(page.pageErrors, []);
});
