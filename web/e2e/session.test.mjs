// Sessions through the UI: a whole templated session with a reload in the middle, a refused
// answer, and a network loss; the transcript never has gaps or repeats.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  inSession,
  answerPending,
  cuttableProxy,
  withBrowser,
  openAgent,
  pendingPrompt,
  screenshot,
  signIn,
  startSession,
  transcript,
} from "./support.mjs";

const newPage = withBrowser();

/** No message twice in a row from the same event, and every key unique. */
async function assertNoRepeats(page) {
  const keys = await page.locator(".transcript > li.entry").evaluateAll((items) =>
    items.map((item) => item.textContent),
  );
  const lines = await transcript(page);
  assert.equal(keys.length, lines.length);
  for (let i = 1; i < lines.length; i += 1) assert.notEqual(lines[i], lines[i - 1], `repeated: ${lines[i]}`);
}

test("a whole session, reloaded in the middle, resumes at the pending widget", async () => {
  const { page } = await newPage();
  await signIn(page, "alice");
  await openAgent(page, "tutor");
  await screenshot(page, "agent-start");
  await startSession(page, "Arithmetic basics");

  await answerPending(page);
  await answerPending(page, { "What is 144 ÷ 12?": "11" }); // one wrong, to see the feedback
  const pending = await pendingPrompt(page);
  const before = await transcript(page);
  assert.equal(before.length, 1 + 2 + 2 + 1); // started, 2 x (question, answer), question
  await screenshot(page, "session-widget");

  const streams = [];
  page.on("request", (request) => {
    if (request.url().includes("/stream")) streams.push(request.url());
  });
  await page.reload();
  await page.locator(".widget").waitFor();
  assert.equal(await pendingPrompt(page), pending);
  await page.waitForFunction(
    (n) => document.querySelectorAll(".transcript > li.entry").length >= n,
    before.length,
  );
  assert.deepEqual(await transcript(page), before);
  assert.equal(streams.length, 1);

  let answered = 2;
  while (await page.locator(".widget").count()) {
    await answerPending(page);
    answered += 1;
  }
  const result = page.getByRole("status").filter({ hasText: "Session completed" });
  await result.waitFor();
  assert.match(await result.innerText(), /score 88%/); // 7 of 8 right
  await screenshot(page, "session-completed");

  const lines = await transcript(page);
  assert.equal(lines.length, 1 + 2 * answered);
  assert.deepEqual(lines.slice(0, before.length), before);
  await assertNoRepeats(page);
  await page.locator(".history").getByText("Arithmetic basics").waitFor();
  assert.deepEqual(page.pageErrors, []);
});

test("a refused answer shows the reasons and changes nothing", async () => {
  const { page } = await inSession(newPage, "alice", "coach", "Arithmetic basics");
  await answerPending(page);
  assert.equal(await pendingPrompt(page), "What is 144 ÷ 12?");
  const before = await transcript(page);

  await page.locator(".widget").getByRole("textbox").fill("1".repeat(25));
  await page.getByRole("button", { name: "Answer" }).click();
  const refusal = page.locator(".widget [role=alert]");
  await refusal.waitFor();
  assert.match(await refusal.innerText(), /not accepted/);
  assert.match(await refusal.innerText(), /20/); // the limit it broke
  await screenshot(page, "answer-refused");
  assert.deepEqual(await transcript(page), before);
  assert.equal(await pendingPrompt(page), "What is 144 ÷ 12?");

  await answerPending(page);
  assert.equal(await page.locator(".widget [role=alert]").count(), 0);
  assert.equal((await transcript(page)).length, before.length + 2);
});

test("a lost network reconnects with Last-Event-ID and misses nothing", async () => {
  const proxy = await cuttableProxy();
  try {
    const { page } = await newPage({ baseURL: proxy.url });
    await signIn(page, "alice");
    await openAgent(page, "evaluator");
    await startSession(page, "Arithmetic basics");
    await answerPending(page);
    const before = await transcript(page);
    const resumedAfter = [];
    page.on("request", (request) => {
      if (request.url().includes("/stream")) resumedAfter.push(request.headers()["last-event-id"]);
    });

    proxy.cut();
    await page.locator("[data-connection=reconnecting]").waitFor();
    await screenshot(page, "session-reconnecting");
    // An answer while the service is out of reach fails visibly; nothing is half-done.
    await answerPending(page, {}, { expectAnswer: false });
    await page.getByRole("alert").filter({ hasText: "Service unreachable" }).waitFor();
    assert.deepEqual(await transcript(page), before);

    proxy.restore();
    await page.locator("[data-connection=live]").waitFor({ timeout: 15_000 });
    assert.ok(resumedAfter.length >= 1, "the stream was not reopened");
    assert.ok(Number(resumedAfter.at(-1)) > 0, `Last-Event-ID sent: ${resumedAfter}`);

    await answerPending(page);
    await answerPending(page);
    const lines = await transcript(page);
    assert.equal(lines.length, before.length + 4);
    assert.deepEqual(lines.slice(0, before.length), before);
    await assertNoRepeats(page);
  } finally {
    await proxy.close();
  }
});
