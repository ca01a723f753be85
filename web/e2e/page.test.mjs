// The demo page as a person uses it: web/dist served by a real authd (the
// binary named by AUTHD_BIN) on 127.0.0.1, driven in Debian's headless
// Chromium. Build the page first (`npm run build`).
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

describe("the demo page", { timeout: 120_000 }, () => {
  let dataDir;
  let authd;
  let browser;
  let page;
  // What the page tried to load from anywhere but authd, and what it threw.
  const foreignRequests = [];
  const pageErrors = [];

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
    const context = await browser.newContext();
    // The page must need nothing but authd; block and note anything else.
    await context.route(
      (url) => url.origin !== authd.origin,
      (route) => {
        foreignRequests.push(route.request().url());
        return route.abort("blockedbyclient");
      },
    );
    page = await context.newPage();
    page.setDefaultTimeout(10_000);
    page.on("pageerror", (error) => pageErrors.push(error));
    await page.goto(authd.origin);
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

  // Clicks a button and waits for the call to authd it starts to end: the
  // page marks the status area aria-busy during a call, from the click on.
  async function press(testId) {
    await page.getByTestId(testId).click();
    await page.locator('[data-testid="status"][aria-busy="false"]').waitFor();
  }

  async function fillCredentials(typedPassword) {
    await page.getByLabel("Username").fill(username);
    await page.getByLabel("Password").fill(typedPassword);
  }

  const text = (testId) => page.getByTestId(testId).textContent();

  it("registers a new user and shows them logged in", async () => {
    await fillCredentials(password);
    await press("register");
    assert.equal(await text("session"), `Logged in as ${username}`);
    assert.equal(await text("status"), `Registered and logged in as ${username}.`);
  });

  it("logs out", async () => {
    await press("log-out");
    assert.equal(await text("session"), "Not logged in");
  });

  it("refuses a wrong password with INVALID_CREDENTIALS", async () => {
    await fillCredentials("not the password");
    await press("log-in");
    assert.equal(await text("error-code"), "UNAUTHENTICATED");
    assert.equal(await text("error-reason"), "INVALID_CREDENTIALS");
    assert.equal(await text("session"), "Not logged in");
  });

  it("logs in again", async () => {
    await fillCredentials(password);
    await press("log-in");
    assert.equal(await text("session"), `Logged in as ${username}`);
  });

  it("answers Who am I? with the username", async () => {
    await press("who-am-i");
    assert.match(await text("status"), new RegExp(`^The token belongs to ${username}, valid until `));
    await page.screenshot({ path: screenshotPath, fullPage: true });
  });

  it("refuses the token with TOKEN_REVOKED once logged out", async () => {
    const token = await text("token");
    assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/, "the page shows the JWT it holds");
    await press("log-out");
    assert.equal(await text("session"), "Not logged in");
    assert.equal(await text("token"), "");

    await page.getByLabel("Access token", { exact: true }).fill(token);
    await press("verify");
    assert.equal(await text("error-code"), "UNAUTHENTICATED");
    assert.equal(await text("error-reason"), "TOKEN_REVOKED");
  });

  it("loaded nothing from elsewhere and threw nothing", () => {
    assert.deepEqual(foreignRequests, []);
    assert.deepEqual(pageErrors, []);
  });
});
