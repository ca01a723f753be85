// The session helper of @authd/client as the demo page uses it, in
// Chromium, where Web Locks, BroadcastChannel and HttpOnly cookies are real:
// authd issues four-second access tokens, so renewals happen within the
// test. Build the page first (`npm run build`).
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { launchChromium, startAuthd, stopAuthd } from "./support.mjs";

const TOKEN_LIFETIME_MS = 4_000;

describe("the session helper in Chromium", { timeout: 120_000 }, () => {
  let dataDir;
  let authd;
  let browser;
  let context;
  const refreshes = [];
  const pageErrors = [];

  // A tab of the one browser context: its tabs share cookies, Web Locks
  // and BroadcastChannels.
  async function openTab() {
    const page = await context.newPage();
    page.setDefaultTimeout(10_000);
    page.on("pageerror", (error) => pageErrors.push(error));
    await page.goto(authd.origin);
    await idle(page);
    return page;
  }

  function idle(page) {
    return page.locator('[data-testid="page"][aria-busy="false"]').waitFor();
  }

  function shownToken(page) {
    return page.getByTestId("token").textContent();
  }

  function signedInAs(page) {
    return page.getByTestId("session").textContent();
  }

  // Polls `probe` until it returns something other than undefined.
  async function eventually(probe, what, timeoutMs = TOKEN_LIFETIME_MS) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await probe();
      if (value !== undefined) {
        return value;
      }
      assert.ok(Date.now() < deadline, `${what} within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "authd-web-session-"));
    authd = await startAuthd(dataDir, ["--token-lifetime", `${TOKEN_LIFETIME_MS / 1000}s`]);
    browser = await launchChromium();
    context = await browser.newContext();
    context.on("requestfinished", (request) => {
      if (new URL(request.url()).pathname === "/token/refresh") {
        refreshes.push(Date.now());
      }
    });
  });

  after(async () => {
    await browser?.close();
    if (authd) {
      await stopAuthd(authd);
    }
    if (dataDir) {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  let first;
  let second;

  it("renews the access token before it expires, without a click", async () => {
    first = await openTab();
    const form = first.getByRole("form", { name: "Create an account", exact: true });
    await form.getByLabel("Username", { exact: true }).fill("renewing");
    await form.getByLabel("Password", { exact: true }).fill("correct horse battery");
    await first.getByTestId("register").click();
    await idle(first);
    const issued = await shownToken(first);
    assert.match(issued, /^[\w-]+\.[\w-]+\.[\w-]+$/);

    const renewed = await eventually(
      async () => ((await shownToken(first)) !== issued ? shownToken(first) : undefined),
      "a renewed token shown",
    );
    const claims = (token) => JSON.parse(Buffer.from(token.split(".")[1], "base64url"));
    assert.equal(claims(renewed).sid, claims(issued).sid, "the same session");
    assert.ok(claims(renewed).exp > claims(issued).exp);
    await first.getByTestId("who-am-i").click();
    await idle(first);
    assert.match(await first.getByTestId("session-outcome").textContent(), /^The token belongs to renewing/);
  });

  it("hands a second tab's token to the first, and the tabs renew one at a time", async () => {
    // The second tab resumes through the refresh cookie, which rotates it:
    // the first tab takes up the new token rather than keep a stale one.
    second = await openTab();
    assert.equal(await signedInAs(second), "Signed in as renewing");
    const resumed = await shownToken(second);
    await eventually(
      async () => ((await shownToken(first)) === resumed ? true : undefined),
      "the first tab showing the second tab's token",
      1_000,
    );

    // Both tabs hold the same token and so come due together; each renewal
    // is one refresh, made by whichever tab got there first (under the Web
    // Lock), and the other takes up its token. One more is tolerated: a tab
    // that gets the lock before the other's token reaches it refreshes
    // again, harmlessly.
    const since = refreshes.length;
    let token = resumed;
    for (let renewal = 0; renewal < 2; renewal += 1) {
      const previous = token;
      token = await eventually(
        async () => {
          const [one, two] = [await shownToken(first), await shownToken(second)];
          return one === two && one !== previous ? one : undefined;
        },
        `renewal ${renewal + 1}, the same token in both tabs`,
      );
    }
    const made = refreshes.length - since;
    assert.ok(made >= 2 && made <= 3, `${made} refreshes for two renewals of two tabs (four, if each tab renewed alone)`);
  });

  it("signs the other tab out when one signs out", async () => {
    await first.getByRole("button", { name: "Sign out", exact: true }).click();
    await idle(first);
    assert.equal(await signedInAs(first), "Not signed in");
    await eventually(
      async () => ((await signedInAs(second)) === "Not signed in" ? true : undefined),
      "the second tab signed out",
      1_000,
    );
    assert.equal(await shownToken(second), "");
    assert.deepEqual(pageErrors, []);
  });
});
