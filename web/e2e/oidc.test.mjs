// OIDC sign-in: the authorization code flow with PKCE, through the provider's login page.
import assert from "node:assert/strict";
import { test } from "node:test";
import { BASE_URL, withBrowser, openAgent, screenshot } from "./support.mjs";

const ISSUER = new URL(process.env.AGENTHOST_ISSUER);
const newPage = withBrowser();

test("signs in at the issuer and comes back signed in", async () => {
  const { page } = await newPage();
  await page.goto("/");
  await screenshot(page, "sign-in-oidc");
  await page.getByRole("button", { name: `Sign in with ${ISSUER.host}` }).click();

  await page.waitForURL((url) => url.host === ISSUER.host);
  const challenge = new URL(page.url()).searchParams;
  assert.equal(challenge.get("code_challenge_method"), "S256");
  assert.equal(challenge.get("client_id"), "agenthost-web");
  assert.equal(challenge.get("redirect_uri"), `${BASE_URL}/`);
  await page.getByLabel("Username").fill("olivia");
  await page.getByRole("button", { name: "Sign in" }).click();

  await page.getByRole("heading", { name: "My agents" }).waitFor();
  assert.equal(await page.locator("[data-user]").innerText(), "olivia");
  assert.equal(new URL(page.url()).search, "", "the code is gone from the address bar");
  await openAgent(page, "tutor"); // the API accepts the provider's token
  assert.deepEqual(page.pageErrors, []);
});

test("a callback this page did not start is refused", async () => {
  const { page } = await newPage();
  await page.goto("/?code=stolen&state=forged");
  await page.getByText("Sign-in failed").waitFor();
  await page.getByRole("button", { name: `Sign in with ${ISSUER.host}` }).waitFor();
});
