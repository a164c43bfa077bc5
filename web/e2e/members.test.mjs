// An agent's members: the owner adds and removes them, a member leaves, an admin manages
// someone else's agent, and everyone else reads the list without controls.
import assert from "node:assert/strict";
import { test } from "node:test";
import { api, openAgent, screenshot, signIn, withBrowser } from "./support.mjs";

const newPage = withBrowser();

/** The member list as read on the page: one "user role" line per member. */
async function members(page) {
  return (await page.locator("ul.members > li").allInnerTexts()).map((text) =>
    text.replace(/\s+(Remove|Leave)$/, "").replace(/\s+/g, " ").trim(),
  );
}

function focused(locator) {
  return locator.evaluate((element) => element === document.activeElement);
}

function row(page, user) {
  return page.locator(`ul.members > li[data-member="${user}"]`);
}

test("the owner adds a member, who sees the agent, then removes them", async () => {
  const owner = (await newPage()).page;
  await signIn(owner, "frank");
  const id = await openAgent(owner, "tutor");
  await owner.getByRole("heading", { name: "Members" }).waitFor();
  assert.deepEqual(await members(owner), ["frank (you) owner"]);

  await owner.getByLabel("User id").fill("grace");
  await owner.getByLabel("Role").selectOption("mentee");
  await owner.getByRole("button", { name: "Add member" }).click();
  await row(owner, "grace").waitFor();
  assert.deepEqual(await members(owner), ["frank (you) owner", "grace mentee"]);
  assert.equal(await owner.getByLabel("User id").inputValue(), "", "the form is cleared");
  await screenshot(owner, "agent-members");

  // Adding her twice is the API's 409, shown as the usual notice; the list is unchanged.
  await owner.getByLabel("User id").fill("grace");
  await owner.getByRole("button", { name: "Add member" }).click();
  const conflict = owner.locator("[role=alert][data-status='409']");
  await conflict.waitFor();
  assert.match(await conflict.innerText(), /Not possible right now[\s\S]*already assigned/);
  assert.deepEqual(await members(owner), ["frank (you) owner", "grace mentee"]);

  const member = (await newPage()).page;
  await signIn(member, "grace");
  await member.locator(`[data-agent-id="${id}"] a`).click();
  await row(member, "grace").waitFor();
  assert.deepEqual(await members(member), ["frank owner", "grace (you) mentee"]);
  assert.equal(await member.getByRole("button", { name: "Add member" }).count(), 0);
  assert.equal(await row(member, "frank").getByRole("button").count(), 0);
  assert.equal(await row(member, "grace").getByRole("button", { name: "Leave" }).count(), 1);

  // With the keyboard alone: Remove, then the confirmation that takes the focus.
  await row(owner, "grace").getByRole("button", { name: "Remove" }).focus();
  await owner.keyboard.press("Enter");
  const yes = owner.getByRole("button", { name: "Yes, remove grace" });
  await yes.waitFor();
  assert.equal(await focused(yes), true);
  await owner.keyboard.press("Escape");
  await yes.waitFor({ state: "detached" });
  assert.equal(await focused(row(owner, "grace").getByRole("button", { name: "Remove" })), true);
  await owner.keyboard.press("Enter");
  await yes.waitFor();
  assert.equal(await focused(yes), true);
  await owner.keyboard.press("Enter");
  await row(owner, "grace").waitFor({ state: "detached" });
  assert.deepEqual(await members(owner), ["frank (you) owner"]);

  await member.reload();
  const gone = member.locator("[role=alert][data-status='404']");
  await gone.waitFor();
  assert.match(await gone.innerText(), /Not found/);
  await gone.getByRole("link", { name: "Back to my agents" }).click();
  await member.getByRole("heading", { name: "My agents" }).waitFor();
  await member.getByText("No agents yet").waitFor();
  assert.equal(await member.locator(`[data-agent-id="${id}"]`).count(), 0);
  assert.deepEqual([...owner.pageErrors, ...member.pageErrors], []);
});

test("a member leaves: back to a list without the agent", async () => {
  const agent = await api("frank", "POST", "/api/agents", { agent_type: "coach" });
  await api("frank", "POST", `/api/agents/${agent.id}/assignments`, { user_id: "heidi", role: "shared" });
  const { page } = await newPage();
  await signIn(page, "heidi");
  await page.locator(`[data-agent-id="${agent.id}"] a`).click();
  const mine = row(page, "heidi");
  await mine.getByRole("button", { name: "Leave" }).click();
  await mine.getByText("Leave this agent? You will no longer see it.").waitFor();
  await mine.getByRole("button", { name: "Cancel" }).click();
  assert.equal(await focused(mine.getByRole("button", { name: "Leave" })), true, "Cancel gives the focus back");
  await mine.getByRole("button", { name: "Leave" }).click();
  await mine.getByRole("button", { name: "Yes, leave" }).click();
  await page.getByRole("heading", { name: "My agents" }).waitFor();
  await page.getByText("No agents yet").waitFor();
  assert.equal(await page.locator(`[data-agent-id="${agent.id}"]`).count(), 0);
  const owner = await api("frank", "GET", `/api/agents/${agent.id}`);
  assert.deepEqual(owner.assignments.map((a) => a.user_id), ["frank"]);
  assert.deepEqual(page.pageErrors, []);
});

test("an admin manages someone else's agent; an observer reads the list", async () => {
  const agent = await api("frank", "POST", "/api/agents", { agent_type: "planner" });
  await api("frank", "POST", `/api/agents/${agent.id}/assignments`, { user_id: "grace", role: "observer" });

  const observer = (await newPage()).page;
  await signIn(observer, "grace");
  await observer.goto(`/#/agents/${agent.id}`);
  await row(observer, "grace").waitFor();
  assert.deepEqual(await members(observer), ["frank owner", "grace (you) observer"]);
  assert.equal(await observer.locator("form").count(), 0, "no form for an observer");
  assert.equal(await row(observer, "frank").getByRole("button").count(), 0);

  const admin = (await newPage()).page;
  await signIn(admin, "admin");
  await admin.goto(`/#/agents/${agent.id}`);
  await row(admin, "grace").waitFor();
  assert.equal(await row(admin, "frank").getByRole("button").count(), 0, "nobody removes the owner");
  await admin.getByLabel("User id").fill("heidi");
  await admin.getByLabel("Role").selectOption("shared");
  await admin.getByRole("button", { name: "Add member" }).click();
  await row(admin, "heidi").waitFor();
  await row(admin, "grace").getByRole("button", { name: "Remove" }).click();
  await admin.getByRole("button", { name: "Yes, remove grace" }).click();
  await row(admin, "grace").waitFor({ state: "detached" });
  assert.deepEqual(await members(admin), ["frank owner", "heidi shared"]);

  await observer.reload();
  await observer.locator("[role=alert][data-status='404']").waitFor();
  assert.deepEqual([...observer.pageErrors, ...admin.pageErrors], []);
});
