// What the browser tests share: a real authd serving the built page (the
// binary named by AUTHD_BIN) on a free port of 127.0.0.1 with a fresh
// database, a real SMTP server for its mail, and Debian's headless Chromium.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const authdBin = process.env.AUTHD_BIN;
if (!authdBin) {
  throw new Error("set AUTHD_BIN to the authd binary to test, e.g. AUTHD_BIN=../target/debug/authd");
}
/** Where the tests put screenshots of the page's states (git-ignored). */
export const screenshotDir = process.env.SCREENSHOT_DIR ?? fileURLToPath(new URL("screenshots", import.meta.url));
export const webRoot = fileURLToPath(new URL("../dist", import.meta.url));
if (!existsSync(join(webRoot, "index.html"))) {
  throw new Error(`${webRoot}/index.html is missing: run \`npm run build\` first`);
}

// The mail server of the client's tests: Python's aiosmtpd on a free port,
// writing each mail it accepts to a directory (`waitFor(address)` reads the
// next one), and how to read the verification and reset links out of a mail.
export { resetLink, startMailServer, tokenOf, verificationLink } from "../../clients/typescript/test/mail.mjs";

/**
 * A port of 127.0.0.1 free now, for an authd that must know its own origin
 * before it starts (`--public-url`, the base of its mails' links).
 */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

// Starts authd on `listen` (a free port unless given) with a fresh
// database, cheap hashing and `extraArgs`, and resolves once its log names
// the address it listens on.
export async function startAuthd(dataDir, extraArgs = [], { listen = "127.0.0.1:0" } = {}) {
  const child = spawn(
    authdBin,
    [
      "--listen", listen,
      "--web-root", webRoot,
      "--database-url", `sqlite://${dataDir}/authd.db?mode=rwc`,
      "--argon2-memory-kib", "256",
      "--argon2-iterations", "1",
      // Stop at once on SIGTERM: there is no load balancer to drain.
      "--shutdown-drain", "0s",
      ...extraArgs,
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

export async function stopAuthd({ child, log }) {
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

/** Debian's Chromium (or $CHROMIUM), headless. */
export function launchChromium() {
  return chromium.launch({
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
}

// One browser context with the page open. Every helper that starts a call to
// authd waits for its end: the page is aria-busy from its load until it has
// tried to resume a session, and during every call, from the click on.
export class Visitor {
  constructor(context, page) {
    this.context = context;
    this.page = page;
  }

  idle() {
    return this.page.locator('[data-testid="page"][aria-busy="false"]').waitFor();
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

  form(name) {
    return this.page.getByRole("form", { name, exact: true });
  }

  // Fills the field with this label, within `scope` where labels repeat
  // (both "Sign in" and "Create an account" ask for a username).
  async fill(label, value, scope = this.page) {
    await scope.getByLabel(label, { exact: true }).fill(value);
  }

  async logIn(name, typedPassword) {
    const form = this.form("Sign in");
    await this.fill("Username", name, form);
    await this.fill("Password", typedPassword, form);
    await this.press("log-in");
  }

  async register(name, typedPassword) {
    const form = this.form("Create an account");
    await this.fill("Username", name, form);
    await this.fill("Password", typedPassword, form);
    await this.press("register");
  }

  text(testId) {
    return this.page.getByTestId(testId).textContent();
  }

  // What a section's outcome element says: its words (without the reason
  // printed after them), authd's reason, and "success" or "error".
  said(section) {
    return this.page.getByTestId(`${section}-outcome`).evaluate((element) => ({
      words: element.firstChild?.textContent.trim() ?? "",
      reason: element.dataset.reason ?? null,
      outcome: element.dataset.outcome ?? null,
    }));
  }

  // How a field is marked: aria-invalid, and the words and reason of the
  // message its aria-describedby names (null if none).
  fieldState(field) {
    return field.evaluate((input) => {
      const note = document.getElementById(input.getAttribute("aria-describedby") ?? "");
      return {
        invalid: input.getAttribute("aria-invalid"),
        words: note?.firstChild?.textContent.trim() ?? null,
        reason: note?.dataset.reason ?? null,
        focused: document.activeElement === input,
      };
    });
  }

  sessions() {
    return this.page.getByRole("list", { name: "Your sessions" }).getByRole("listitem");
  }

  // What the page shows as text, for checks that no transport status leaks.
  shownText() {
    return this.page.getByTestId("page").innerText();
  }

  errorCount() {
    return this.page.locator('[data-outcome="error"], .field-error, [aria-invalid="true"]').count();
  }

  // Which of the controls that depend on being signed in or out are shown.
  async controls() {
    const page = this.page;
    const button = (name) => page.getByRole("button", { name, exact: true }).isVisible();
    return {
      signIn: await this.form("Sign in").isVisible(),
      register: await this.form("Create an account").isVisible(),
      whoAmI: await button("Who am I?"),
      signOut: await button("Sign out"),
      sessions: await button("List sessions"),
      changePassword: await this.form("Change password").isVisible(),
      deleteAccount: await this.form("Delete account").isVisible(),
      checkToken: await this.form("Check a token").isVisible(),
    };
  }

  async screenshot(name, { fullPage = true } = {}) {
    const path = join(screenshotDir, `${name}.png`);
    await this.page.screenshot({ path, fullPage });
    return path;
  }
}
