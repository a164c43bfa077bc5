// Shared by the browser tests: Debian's chromium (never a downloaded browser), the service
// under test (started by tests/integration/test_web_ui.py) and signing in as a user.
import { mkdirSync } from "node:fs";
import net from "node:net";
import { after, before } from "node:test";
import { join } from "node:path";
import { chromium } from "playwright-core";

export const BASE_URL = required("AGENTHOST_URL");
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const SHOTS = process.env.AGENTHOST_SCREENSHOTS;
/** prompt -> right answer, read off the templates by the pytest side. */
export const RIGHT_ANSWERS = JSON.parse(process.env.AGENTHOST_ANSWERS ?? "{}");

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run these tests through pytest (make test)`);
  return value;
}

/** The token the service accepts for `user` (minted by the pytest side). */
export function tokenOf(user) {
  return required(`AGENTHOST_TOKEN_${user.toUpperCase()}`);
}

export async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // The flags this machine's closed network needs (no background calls home).
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/**
 * One chromium for the spec file that calls this at its top, closed after its tests; returns
 * `newPage(options)` on it.
 */
export function withBrowser() {
  let browser;
  before(async () => {
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
  });
  return (options) => newPage(browser, options);
}

/** A fresh context (own storage) with a page whose errors the test can check. */
export async function newPage(browser, options = {}) {
  const context = await browser.newContext({ baseURL: BASE_URL, ...options });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (error) => errors.push(error));
  page.pageErrors = errors;
  return { context, page };
}

/** Signs in through `make run`'s kind of link: `/#token=<jwt>`. */
export async function signIn(page, user) {
  await page.goto(`/#token=${tokenOf(user)}`);
  await page.getByRole("heading", { name: "My agents" }).waitFor();
}

/** The API as `user`, for what a test arranges outside the page. */
export async function api(user, method, path, body) {
  const response = await fetch(BASE_URL + path, {
    method,
    headers: {
      Authorization: `Bearer ${tokenOf(user)}`,
      ...(body === undefined ? {} : { "Content-Type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

/** The widget's prompt: a fieldset legend, a label, or the code task. */
export async function pendingPrompt(page) {
  return page.locator(".widget legend, .widget label, .widget #code-prompt").first().innerText();
}

export async function screenshot(page, name) {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/** Opens (creating if needed) the signed-in user's agent of `type`; returns its id. */
export async function openAgent(page, type) {
  await page.getByLabel("Agent type").selectOption(type);
  await page.getByRole("button", { name: "Open or create" }).click();
  await page.waitForURL(/#\/agents\//);
  return decodeURIComponent(page.url().split("#/agents/")[1]);
}

/** A new page signed in as `user`, on their agent of `type`, in a fresh session of the
 * template titled `template`; returns its `{ context, page }`. */
export async function inSession(newPage, user, type, template, options) {
  const opened = await newPage(options);
  await signIn(opened.page, user);
  await openAgent(opened.page, type);
  await startSession(opened.page, template);
  return opened;
}

export async function startSession(page, templateTitle) {
  const option = page.locator("#template option", { hasText: templateTitle });
  await page.getByLabel("What to do").selectOption(await option.getAttribute("value"));
  await page.getByRole("button", { name: "Start", exact: true }).click();
  await page.locator(".widget").waitFor();
}

/** The transcript as the user reads it, one string per message. */
export async function transcript(page) {
  return page.locator(".transcript > li.entry").allInnerTexts();
}

/** Answers whatever widget is pending (right, unless `answers` says otherwise); returns the
 * prompt it answered. */
export async function answerPending(page, override = {}, { expectAnswer = true } = {}) {
  const answers = { ...RIGHT_ANSWERS, ...override };
  const widget = page.locator(".widget");
  const kind = await widget.getAttribute("data-widget");
  const asked = await widget.getAttribute("data-tool-call-id");
  let prompt;
  if (kind === "multiple_choice") {
    prompt = await widget.locator("legend").innerText();
    const wanted = answers[prompt];
    const option = wanted ? widget.getByLabel(wanted, { exact: true }) : widget.getByRole("radio").first();
    await option.check();
    await widget.getByRole("button", { name: "Answer" }).click();
  } else if (kind === "free_text") {
    prompt = await widget.locator("label").first().innerText();
    await widget.getByRole("textbox").fill(answers[prompt] ?? "42");
    await widget.getByRole("button", { name: "Answer" }).click();
  } else if (kind === "code_editor") {
    prompt = await widget.locator("#code-prompt").innerText();
    await widget.locator(".cm-content").fill(answers[prompt] ?? "def f():\n    return 1\n");
    await widget.getByRole("button", { name: "Submit code" }).click();
  } else {
    throw new Error(`no widget to answer (found ${kind})`);
  }
  if (!expectAnswer) return prompt;
  // Settled once the next widget (or the end) shows and the streamed transcript has caught up
  // with the answer's log position.
  await page.waitForFunction(
    (id) =>
      !document.querySelector(`.widget[data-tool-call-id="${id}"]`) &&
      document.querySelector(".widget, .session-end") !== null &&
      document.querySelector(".session[data-caught-up=true]") !== null,
    asked,
  );
  return prompt;
}

/**
 * A TCP proxy in front of the service whose connections the test can cut: a real network
 * loss as the browser sees it (Chromium's offline emulation leaves open streams alone).
 */
export async function cuttableProxy(target = BASE_URL) {
  const { port: targetPort, hostname } = new URL(target);
  const sockets = new Set();
  let down = false;
  const server = net.createServer((client) => {
    if (down) return client.destroy();
    const upstream = net.connect(Number(targetPort), hostname);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      socket.on("error", () => undefined);
    }
    client.pipe(upstream).pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    /** Drops every open connection and refuses new ones until `restore`. */
    cut() {
      down = true;
      for (const socket of sockets) socket.destroy();
    },
    restore() {
      down = false;
    },
    close: () => new Promise((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(resolve);
    }),
  };
}
