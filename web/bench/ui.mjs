// The UI's latencies as a user meets them, in Debian's chromium (run by scripts/bench_ui.py,
// which starts the service and passes AGENTHOST_URL, AGENTHOST_TOKEN_BENCH, BENCH_RUNS).
// Prints one JSON object: milliseconds per measure.
import { api, answerPending, cuttableProxy, launch, newPage, signIn } from "../e2e/support.mjs";

const RUNS = Number(process.env.BENCH_RUNS ?? 30);
const USER = "bench";

async function freshSession(agentId) {
  const current = await api(USER, "GET", `/api/agents/${agentId}/session`);
  if (current.session) await api(USER, "DELETE", `/api/agents/${agentId}/session`);
  await api(USER, "POST", `/api/agents/${agentId}/sessions`, { config: { template_id: "arithmetic-basics" } });
}

async function timed(action, settled) {
  const start = performance.now();
  await action();
  await settled();
  return performance.now() - start;
}

const proxy = await cuttableProxy();
const browser = await launch();
const results = { reload: [], answer: [], reconnect: [] };
try {
  const { page } = await newPage(browser, { baseURL: proxy.url });
  await signIn(page, USER);
  const agent = await api(USER, "POST", "/api/agents", { agent_type: "tutor" });
  await freshSession(agent.id);
  await page.goto(`/#/agents/${agent.id}`);
  await page.locator(".widget").waitFor();
  await answerPending(page);
  await answerPending(page);
  const entries = await page.locator(".transcript > li.entry").count();

  // A reload: page, scripts, config, agent, session, then the session's log replayed.
  for (let i = 0; i < RUNS + 2; i += 1) {
    const ms = await timed(
      () => page.reload(),
      () => page.waitForFunction(
        (n) => document.querySelector(".widget") && document.querySelectorAll(".transcript > li.entry").length >= n,
        entries,
      ),
    );
    if (i >= 2) results.reload.push(ms); // the first loads warm caches and the JIT
  }

  // An answer: click, POST, the executor's next step, the events back over SSE, the render.
  while (results.answer.length < RUNS) {
    if (!(await page.locator(".widget").count())) {
      await freshSession(agent.id);
      await page.reload();
      await page.locator(".widget").waitFor();
    }
    const start = performance.now();
    await answerPending(page);
    results.answer.push(performance.now() - start);
  }

  // A network cut: from the network coming back to the stream live again (this includes the
  // client's reconnection delay, which the server sets with the SSE `retry` field).
  for (let i = 0; i < Math.min(RUNS, 10); i += 1) {
    proxy.cut();
    await page.locator("[data-connection=reconnecting]").waitFor();
    const ms = await timed(
      async () => proxy.restore(),
      () => page.locator("[data-connection=live]").waitFor({ timeout: 30_000 }),
    );
    results.reconnect.push(ms);
  }
} finally {
  await browser.close();
  await proxy.close();
}
console.log(JSON.stringify(results));
