// The three widgets, used from the keyboard alone: multiple choice, free text, and the code
// editor with syntax highlighting.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  inSession,
  answerPending,
  withBrowser,
  pendingPrompt,
  screenshot,
} from "./support.mjs";

const newPage = withBrowser();

const ADD = "def add(a, b):\n    return a + b\n";

test("multiple choice and code editor work from the keyboard alone", async () => {
  const { page } = await inSession(newPage, "bob", "researcher", "Python basics");

  // The first option has the focus; arrows choose, Enter answers.
  assert.equal(await pendingPrompt(page), "What does Python show for `type(3 / 2)`?");
  const focused = await page.evaluate(() => document.activeElement?.getAttribute("type"));
  assert.equal(focused, "radio");
  await page.keyboard.press("ArrowDown");
  await page.keyboard.press("Enter");
  const first = page.locator(".transcript > li.entry.user").first();
  await first.waitFor();
  assert.match(await first.innerText(), /<class 'float'>\n✓|Correct/);

  while ((await page.locator(".widget").getAttribute("data-widget")) !== "code_editor") {
    await answerPending(page);
  }
  const editor = page.locator(".widget .cm-content");
  // Loaded on demand, the editor takes the focus once it is there.
  await page.waitForFunction(() => document.activeElement?.classList.contains("cm-content"));
  await editor.fill(ADD);
  // Highlighted: `def` and `return` are styled tokens, in another colour than plain text.
  const keyword = editor.locator("span", { hasText: /^def$/ });
  await keyword.waitFor();
  const colours = await page.evaluate(() => {
    const line = document.querySelector(".widget .cm-line");
    const span = [...line.querySelectorAll("span")].find((s) => s.textContent === "def");
    return [getComputedStyle(line).color, getComputedStyle(span).color];
  });
  assert.notEqual(colours[0], colours[1]);
  await screenshot(page, "widget-code-editor");

  const asked = await page.locator(".widget").getAttribute("data-tool-call-id");
  await page.keyboard.press("Control+Enter");
  await page.waitForFunction(
    (id) => !document.querySelector(`.widget[data-tool-call-id="${id}"]`),
    asked,
  );
  const shown = page.locator(".transcript .entry.user .code-view").last();
  await shown.waitFor();
  assert.match(await shown.innerText(), /return a \+ b/);
  await shown.locator("span", { hasText: /^return$/ }).waitFor(); // highlighted there too
  assert.deepEqual(page.pageErrors, []);
});

test("free text is answered with Enter and its limits are shown", async () => {
  const { page } = await inSession(newPage, "bob", "tutor", "Arithmetic basics");
  await answerPending(page);
  assert.equal(await page.locator(".widget").getAttribute("data-widget"), "free_text");
  assert.equal(await page.evaluate(() => document.activeElement?.tagName), "INPUT");
  await page.keyboard.type("12");
  assert.match(await page.locator(".widget small").innerText(), /at most 20 characters \(2 now\)/);
  await screenshot(page, "widget-free-text");
  await page.keyboard.press("Enter");
  await page.locator(".transcript .entry.user", { hasText: "12" }).waitFor();
});
