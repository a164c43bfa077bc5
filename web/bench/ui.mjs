// The UI's latencies as a user meets them, in Debian's chromium (run by scripts/bench_ui.py,
// which starts the service and passes AGENTHOST_URL, AGENTHOST_TOKEN_BENCH, BENCH_RUNS).
// Every time is taken inside the page (performance.now and a MutationObserver), so the test
// driver's own round trips are not in it. Prints one JSON object: milliseconds per measure.
import { api, cuttableProxy, launch, newPage, signIn } from "../e2e/support.mjs";

const RUNS = Number(process.env.BENCH_RUNS ?? 30);
const USER = "bench";

async function freshSession(agentId) {
  const current = await api(USER, "GET", `/api/agents/${agentId}/session`);
  if (current.session) await api(USER, "DELETE", `/api/agents/${agentId}/session`);
  await api(USER, "POST", `/api/agents/${agentId}/sessions`, { config: { template_id: "arithmetic-basics" } });
}

/** Picks or types an answer, then times the click: [next widget shown, transcript caught up]. */
async function answerTimed(page) {
  const widget = page.locator(".widget");
  const asked = await widget.getAttribute("data-tool-call-id");
  if ((await widget.getAttribute("data-widget")) === "multiple_choice") {
    await widget.getByRole("radio").first().check();
  } else {
    await widget.getByRole("textbox").fill("42");
  }
  await widget.locator("button[type=submit]:not([disabled])").waitFor(); // the render is async
  return page.evaluate(
    (id) =>
      new Promise((resolve, reject) => {
        const start = performance.now();
        let shown = null;
        const observer = new MutationObserver(() => {
          const now = performance.now() - start;
          if (shown === null && !document.querySelector(`.widget[data-tool-call-id="${id}"]`) &&
              document.querySelector(".widget, .session-end")) shown = now;
          if (shown !== null && document.querySelector(".session[data-caught-up=true]")) {
            observer.disconnect();
            resolve([shown, now]);
          }
        });
        observer.observe(document.body, { subtree: true, childList: true, attributes: true });
        setTimeout(() => {
          observer.disconnect();
          const session = document.querySelector(".session");
          reject(new Error(`no next widget after 10 s (shown: ${shown}, caught up: ${session?.dataset.caughtUp})`));
        }, 10_000);
        document.querySelector(".widget button[type=submit]").click();
      }),
    asked,
  );
}

const proxy = await cuttableProxy();
const browser = await launch();
const results = { reload: [], answer: [], caught_up: [], reconnect: [] };
try {
  const { page } = await newPage(browser, { baseURL: proxy.url });
  await signIn(page, USER);
  const agent = await api(USER, "POST", "/api/agents", { agent_type: "tutor" });
  await freshSession(agent.id);
  await page.goto(`/#/agents/${agent.id}`);
  await page.locator(".widget").waitFor();
  await answerTimed(page);
  await answerTimed(page);
  const entries = await page.locator(".transcript > li.entry").count();

  // A reload: from navigation start to the pending widget with the whole transcript rebuilt
  // (page, scripts, config, agent, session, then the session's log replayed over SSE).
  await page.addInitScript((n) => {
    new MutationObserver((_, observer) => {
      if (document.querySelector(".widget") &&
          document.querySelectorAll(".transcript > li.entry").length >= n) {
        window.resumedAt = performance.now();
        observer.disconnect();
      }
    }).observe(document, { subtree: true, childList: true });
  }, entries);
  for (let i = 0; i < RUNS + 2; i += 1) {
    await page.reload();
    const ms = await page.waitForFunction(() => window.resumedAt, null, { timeout: 10_000 }).then((h) => h.jsonValue());
    if (i >= 2) results.reload.push(ms); // the first ones warm the caches and the JIT
  }

  // An answer: the next widget comes from the write's own answer; the transcript (evaluation,
  // next question) follows over SSE.
  while (results.answer.length < RUNS) {
    if (!(await page.locator(".widget").count())) {
      await freshSession(agent.id);
      await page.reload();
      await page.locator(".widget").waitFor();
    }
    const [shown, caughtUp] = await answerTimed(page);
    results.answer.push(shown);
    results.caught_up.push(caughtUp);
  }

  // A dropped connection, the network back at once: from the page noticing to live again
  // (the server's `retry:` delay, then the reconnect with Last-Event-ID).
  if (!(await page.locator(".widget").count())) {
    await freshSession(agent.id); // a live stream to drop
    await page.reload();
  }
  await page.locator("[data-connection=live]").waitFor();
  for (let i = 0; i < Math.min(RUNS, 10); i += 1) {
    await page.evaluate(() => {
      window.outage = new Promise((resolve) => {
        let dropped = null;
        const target = document.querySelector("[data-connection]");
        const observer = new MutationObserver(() => {
          const state = target.getAttribute("data-connection");
          if (state === "reconnecting" && dropped === null) dropped = performance.now();
          if (state === "live" && dropped !== null) {
            observer.disconnect();
            resolve(performance.now() - dropped);
          }
        });
        observer.observe(target, { attributes: true });
      });
    });
    proxy.cut();
    await page.locator("[data-connection=reconnecting]").waitFor();
    proxy.restore();
    const live = await page.waitForFunction(() => window.outage, null, { timeout: 10_000 });
    results.reconnect.push(await page.evaluate(() => window.outage));
    await live.dispose();
  }
} finally {
  await browser.close();
  await proxy.close();
}
console.log(JSON.stringify(results));
