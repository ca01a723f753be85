// The demo page as a person uses it: web/dist served by a real authd (the
// binary named by AUTHD_BIN) on 127.0.0.1, driven in Debian's headless
// Chromium, from two browser contexts (two browsers, as far as cookies go).
// Build the page first (`npm run build`).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const authdBin = process.env.AUTHD_BIN;
if (!authdBin) {
  throw new Error("set AUTHD_BIN to the authd binary to test, e.g. AUTHD_BIN=../target/debug/authd");
}
const webRoot = fileURLToPath(new URL("../dist", import.meta.url));
if (!existsSync(join(webRoot, "index.html"))) {
  throw new Error(`${webRoot}/index.html is missing: run \`npm run build\` first`);
}
const screenshotPath = "/tmp/authd-page.png";
const username = "alice";
const password = "correct horse battery";
const newPassword = "a different horse battery";

// Starts authd on a free port with a fresh database and cheap hashing, and
// resolves once its log names the address it listens on.
async function startAuthd(dataDir) {
  const child = spawn(
    authdBin,
    [
      "--listen", "127.0.0.1:0",
      "--web-root", webRoot,
      "--database-url", `sqlite://${dataDir}/authd.db?mode=rwc`,
      "--argon2-memory-kib", "256",
      "--argon2-iterations", "1",
      // Stop at once on SIGTERM: there is no load balancer to drain.
      "--shutdown-drain", "0s",
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  const log = [];
  const address = await new Promise((resolve, reject) => {
    const fail = (why) => {
      clearTimeout(timer);
      reject(new Error(`authd ${why}:\n${log.join("\n")}`));
    };
    const timer = setTimeout(() => fail("did not start within 10 s"), 10_000);
    child.once("error", (error) => fail(`could not be started: ${error.message}`));
    child.once("exit", (code, signal) => fail(`exited (${code ?? signal}) before serving`));
    // Stays attached after the address is found, so authd never blocks on a
    // full stderr pipe.
    createInterface({ input: child.stderr }).on("line", (line) => {
      log.push(line);
      const listen = /authd serving .* listen=(\S+)/.exec(line)?.[1];
      if (listen) {
        clearTimeout(timer);
        resolve(listen);
      }
    });
  });
  return { child, log, origin: `http://${address}` };
}

async function stopAuthd({ child, log }) {
  if (child.exitCode !== null || child.signalCode !== null) {
    console.error(`authd had stopped by itself:\n${log.join("\n")}`);
    return;
  }
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  const stopped = await Promise.race([
    exited.then(() => true),
    new Promise((resolve) => setTimeout(resolve, 5_000, false)),
  ]);
  if (!stopped) {
    child.kill("SIGKILL");
    await exited;
  }
}

// One browser context with the page open. Every helper that starts a call to
// authd waits for its end: the page marks the status area aria-busy during a
// call, from the click on, and again from the page's load until it has tried
// to resume a session.
class Visitor {
  constructor(context, page) {
    this.context = context;
    this.page = page;
  }

  idle() {
    return this.page.locator('[data-testid="status"][aria-busy="false"]').waitFor();
  }

  async reload() {
    await this.page.reload();
    await this.idle();
  }

  // Clicks a button and waits for the call it starts to end.
  async click(button) {
    await button.click();
    await this.idle();
  }

  press(testId) {
    return this.click(this.page.getByTestId(testId));
  }

  pressButton(name) {
    return this.click(this.page.getByRole("button", { name, exact: true }));
  }

  async fill(label, value) {
    await this.page.getByLabel(label, { exact: true }).fill(value);
  }

  async logIn(typedPassword) {
    await this.fill("Username", username);
    await this.fill("Password", typedPassword);
    await this.press("log-in");
  }

  text(testId) {
    return this.page.getByTestId(testId).textContent();
  }

  sessions() {
    return this.page.getByRole("list", { name: "All your sessions" }).getByRole("listitem");
  }
}

describe("the demo page", { timeout: 120_000 }, () => {
  let dataDir;
  let authd;
  let browser;
  // Two browsers logged in as the same user.
  let first;
  let second;
  // What the pages tried to load from anywhere but authd, and what they threw.
  const foreignRequests = [];
  const pageErrors = [];

  async function openPage() {
    const context = await browser.newContext();
    // The page must need nothing but authd; block and note anything else.
    await context.route(
      (url) => url.origin !== authd.origin,
      (route) => {
        foreignRequests.push(route.request().url());
        return route.abort("blockedbyclient");
      },
    );
    const page = await context.newPage();
    page.setDefaultTimeout(10_000);
    page.on("pageerror", (error) => pageErrors.push(error));
    await page.goto(authd.origin);
    const visitor = new Visitor(context, page);
    await visitor.idle();
    return visitor;
  }

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "authd-web-e2e-"));
    authd = await startAuthd(dataDir);
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
      timeout: 30_000,
    });
    first = await openPage();
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

  it("finds no session to resume on a first visit", async () => {
    assert.equal(await first.text("session"), "Not logged in");
    assert.equal(await first.text("error-reason"), "REFRESH_TOKEN_INVALID");
    assert.equal(await first.page.getByRole("button", { name: "List sessions" }).isVisible(), false);
  });

  it("registers a new user and shows them logged in", async () => {
    await first.fill("Username", username);
    await first.fill("Password", password);
    await first.press("register");
    assert.equal(await first.text("session"), `Logged in as ${username}`);
    assert.equal(await first.text("status"), `Registered and logged in as ${username}.`);
  });

  it("keeps the refresh token in an HttpOnly cookie for /token, and nothing in web storage", async () => {
    const cookies = Object.fromEntries(
      (await first.context.cookies()).map(({ name, path, httpOnly, secure, sameSite }) => [
        name,
        { path, httpOnly, secure, sameSite },
      ]),
    );
    // Chromium keeps Secure cookies for http://127.0.0.1, a secure context.
    assert.deepEqual(cookies, {
      authd_token: { path: "/", httpOnly: true, secure: true, sameSite: "Strict" },
      authd_refresh: { path: "/token", httpOnly: true, secure: true, sameSite: "Strict" },
    });
    assert.deepEqual(
      await first.page.evaluate(() => [localStorage.length, sessionStorage.length, document.cookie]),
      [0, 0, ""],
    );
  });

  it("is still logged in after a reload", async () => {
    await first.reload();
    assert.equal(await first.text("session"), `Logged in as ${username}`);
    assert.equal(
      await first.text("status"),
      `Welcome back, ${username}: the session was renewed from its cookie.`,
    );
  });

  it("logs out, and a reload finds no session", async () => {
    await first.press("log-out");
    assert.equal(await first.text("session"), "Not logged in");
    await first.reload();
    assert.equal(await first.text("session"), "Not logged in");
    assert.equal(await first.text("error-reason"), "REFRESH_TOKEN_INVALID");
  });

  it("refuses a wrong password with INVALID_CREDENTIALS", async () => {
    await first.logIn("not the password");
    assert.equal(await first.text("error-code"), "401 Unauthorized");
    assert.equal(await first.text("error-reason"), "INVALID_CREDENTIALS");
    assert.equal(await first.text("session"), "Not logged in");
  });

  it("logs in again", async () => {
    await first.logIn(password);
    assert.equal(await first.text("session"), `Logged in as ${username}`);
  });

  it("answers Who am I? with the username", async () => {
    await first.press("who-am-i");
    assert.match(await first.text("status"), new RegExp(`^The token belongs to ${username}, valid until `));
  });

  it("refuses the token with TOKEN_REVOKED once logged out", async () => {
    const token = await first.text("token");
    assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/, "the page shows the JWT it holds");
    await first.press("log-out");
    assert.equal(await first.text("session"), "Not logged in");
    assert.equal(await first.text("token"), "");

    await first.fill("Access token", token);
    await first.press("verify");
    assert.equal(await first.text("error-code"), "UNAUTHENTICATED");
    assert.equal(await first.text("error-reason"), "TOKEN_REVOKED");
  });

  it("lists the sessions of two browsers logged in as the same user", async () => {
    await first.logIn(password);
    second = await openPage();
    await second.logIn(password);
    assert.equal(await second.text("session"), `Logged in as ${username}`);

    await first.pressButton("List sessions");
    assert.equal(await first.text("status"), "2 live sessions.");
    assert.equal(await first.sessions().count(), 2);
    assert.equal(await first.sessions().filter({ hasText: "This browser" }).count(), 1);
    await first.page.screenshot({ path: screenshotPath, fullPage: true });
  });

  it("ends the other browser's session, whose next call is refused", async () => {
    const other = first.sessions().filter({ hasNotText: "This browser" });
    await first.click(other.getByRole("button", { name: "End", exact: true }));
    assert.match(await first.text("status"), /^Ended the session started /);
    assert.equal(await first.sessions().count(), 1);

    await second.press("who-am-i");
    assert.equal(await second.text("error-code"), "UNAUTHENTICATED");
    assert.equal(await second.text("error-reason"), "TOKEN_REVOKED");
    assert.equal(await second.text("session"), "Not logged in");
    await second.reload();
    assert.equal(await second.text("session"), "Not logged in");
    assert.equal(await second.text("error-reason"), "SESSION_ENDED");
  });

  it("refuses a wrong current password, staying logged in", async () => {
    await first.fill("Current password", "not the password");
    await first.fill("New password", newPassword);
    await first.pressButton("Change password");
    assert.equal(await first.text("error-code"), "401 Unauthorized");
    assert.equal(await first.text("error-reason"), "INVALID_CREDENTIALS");
    assert.equal(await first.text("session"), `Logged in as ${username}`);
  });

  it("changes the password, ending every earlier session", async () => {
    const earlierToken = await first.text("token");
    await first.fill("Current password", password);
    await first.fill("New password", newPassword);
    await first.pressButton("Change password");
    assert.equal(
      await first.text("status"),
      "Password changed: every earlier session has ended, and this browser has a new one.",
    );
    assert.equal(await first.text("session"), `Logged in as ${username}`);
    assert.notEqual(await first.text("token"), earlierToken);

    await first.fill("Access token", earlierToken);
    await first.press("verify");
    assert.equal(await first.text("error-reason"), "TOKEN_REVOKED");

    await second.logIn(password);
    assert.equal(await second.text("error-reason"), "INVALID_CREDENTIALS");
    await second.logIn(newPassword);
    assert.equal(await second.text("session"), `Logged in as ${username}`);
  });

  it("keeps the new session across a reload", async () => {
    await first.reload();
    assert.equal(await first.text("session"), `Logged in as ${username}`);
  });

  it("deletes the account, whose name logs in no more", async () => {
    await first.fill("Your password", newPassword);
    await first.pressButton("Delete account");
    assert.equal(await first.text("status"), `Deleted the account ${username}.`);
    assert.equal(await first.text("session"), "Not logged in");

    await second.press("who-am-i");
    assert.equal(await second.text("error-code"), "UNAUTHENTICATED");
    assert.equal(await second.text("error-reason"), "TOKEN_REVOKED");
    assert.equal(await second.text("session"), "Not logged in");

    await first.logIn(newPassword);
    assert.equal(await first.text("error-reason"), "INVALID_CREDENTIALS");
    assert.equal(await first.text("session"), "Not logged in");
  });

  it("loaded nothing from elsewhere and threw nothing", () => {
    assert.deepEqual(foreignRequests, []);
    assert.deepEqual(pageErrors, []);
  });
});
