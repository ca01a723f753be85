// The demo page as a person uses it: web/dist served by a real authd (the
// binary named by AUTHD_BIN) on 127.0.0.1, driven in Debian's headless
// Chromium, from two browser contexts (two browsers, as far as cookies go).
// Build the page first (`npm run build`). Screenshots of the page's states
// go to $SCREENSHOT_DIR, by default e2e/screenshots (git-ignored).
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Visitor, launchChromium, screenshotDir, startAuthd, stopAuthd } from "./support.mjs";

const username = "alice";
const password = "correct horse battery";
const newPassword = "a different horse battery";


const SIGNED_OUT = {
  signIn: true,
  register: true,
  whoAmI: false,
  signOut: false,
  sessions: false,
  changePassword: false,
  deleteAccount: false,
  checkToken: true,
};
const SIGNED_IN = {
  signIn: false,
  register: false,
  whoAmI: true,
  signOut: true,
  sessions: true,
  changePassword: true,
  deleteAccount: true,
  checkToken: true,
};
// Transport words that must not reach the person: the page words every
// refusal after authd's reason alone.
const TRANSPORT_WORDS = /UNAUTHENTICATED|Unauthorized|\b40[0-9]\b|INVALID_ARGUMENT/;

describe("the demo page", { timeout: 120_000 }, () => {
  let dataDir;
  let authd;
  let browser;
  // Two browsers logged in as the same user.
  let first;
  let second;
  // What the pages tried to load from anywhere but authd, what they threw,
  // and what they (or Chromium about them) logged to the console.
  const foreignRequests = [];
  const pageErrors = [];
  const consoleMessages = [];
  const screenshots = [];

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
    // Chromium's own notes on the page's forms ("[DOM] Password forms
    // should have ...") arrive here too, at the "verbose" level.
    page.on("console", (message) => consoleMessages.push(`${message.type()}: ${message.text()}`));
    await page.goto(authd.origin);
    const visitor = new Visitor(context, page);
    await visitor.idle();
    return visitor;
  }

  async function screenshot(visitor, name, options) {
    screenshots.push(await visitor.screenshot(name, options));
  }

  before(async () => {
    await mkdir(screenshotDir, { recursive: true });
    dataDir = await mkdtemp(join(tmpdir(), "authd-web-e2e-"));
    authd = await startAuthd(dataDir);
    browser = await launchChromium();
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
    if (screenshots.length > 0) {
      console.log(`screenshots of the page's states in ${screenshotDir}:\n  ${screenshots.join("\n  ")}`);
    }
  });

  it("greets a first visit with \"Not signed in\", no error, and the forms to sign in or create an account", async () => {
    assert.equal(await first.text("session"), "Not signed in");
    assert.equal(await first.page.getByText("Not signed in", { exact: true }).isVisible(), true);
    assert.equal(await first.errorCount(), 0, "no error element on a first visit");
    assert.deepEqual(await first.said("session"), { words: "", reason: null, outcome: null });
    assert.deepEqual(await first.controls(), SIGNED_OUT);
    await screenshot(first, "01-first-visit");
  });

  it("marks up every password form as password managers expect", async () => {
    const forms = await first.page.evaluate(() =>
      [...document.forms]
        .filter((form) => form.querySelector('input[type="password"]'))
        .map((form) => ({
          form: form.id,
          // A token of the value: sign-in's is "username webauthn" (passkey autofill).
          username: form.querySelector('input[autocomplete~="username"]') !== null,
          passwords: [...form.querySelectorAll('input[type="password"]')].map((input) => input.autocomplete),
        })),
    );
    assert.deepEqual(forms, [
      { form: "reset-password", username: true, passwords: ["new-password", "new-password"] },
      { form: "sign-in", username: true, passwords: ["current-password"] },
      { form: "register", username: true, passwords: ["new-password"] },
      { form: "change-password", username: true, passwords: ["current-password", "new-password"] },
      { form: "set-password", username: true, passwords: ["new-password"] },
      { form: "delete-account", username: true, passwords: ["current-password"] },
    ]);
  });

  it("names every field a registration breaks, on the field itself", async () => {
    await first.register("no spaces allowed", "short");
    const form = first.form("Create an account");
    const usernameField = await first.fieldState(form.getByLabel("Username", { exact: true }));
    const passwordField = await first.fieldState(form.getByLabel("Password", { exact: true }));
    assert.deepEqual(usernameField, {
      invalid: "true",
      words: "Use 3 to 32 letters, digits, '.', '_' or '-', starting with a letter or digit.",
      reason: "INVALID_USERNAME",
      focused: true,
    });
    assert.deepEqual(passwordField, {
      invalid: "true",
      words: "Use at least 8 characters.",
      reason: "PASSWORD_TOO_SHORT",
      focused: false,
    });
    assert.equal(await form.locator(".field-error").count(), 2);
    for (const note of await form.locator(".field-error").all()) {
      assert.equal(await note.isVisible(), true);
    }
    assert.equal(await first.text("session"), "Not signed in");
    assert.doesNotMatch(await first.shownText(), TRANSPORT_WORDS);
    await screenshot(first, "02-registration-two-errors");
  });

  it("registers a new user and shows what a signed-in user can do, and nothing else", async () => {
    await first.register(username, password);
    assert.equal(await first.text("session"), `Signed in as ${username}`);
    assert.deepEqual(await first.said("session"), {
      words: `Account created. Welcome, ${username}.`,
      reason: null,
      outcome: "success",
    });
    assert.equal(await first.errorCount(), 0, "the earlier field errors are gone");
    assert.deepEqual(await first.controls(), SIGNED_IN);
    await screenshot(first, "03-signed-in");
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

  it("is still signed in after a reload", async () => {
    await first.reload();
    assert.equal(await first.text("session"), `Signed in as ${username}`);
    assert.equal((await first.said("session")).words, `Welcome back, ${username}.`);
    assert.deepEqual(await first.controls(), SIGNED_IN);
  });

  it("signs out, and a reload finds no session and shows no error", async () => {
    await first.press("log-out");
    assert.equal(await first.text("session"), "Not signed in");
    assert.deepEqual(await first.controls(), SIGNED_OUT);
    await first.reload();
    assert.equal(await first.text("session"), "Not signed in");
    assert.equal(await first.errorCount(), 0);
    assert.deepEqual(await first.controls(), SIGNED_OUT);
  });

  it("refuses a wrong password in words, beside the sign-in form", async () => {
    await first.logIn(username, "not the password");
    assert.deepEqual(await first.said("sign-in"), {
      words: "Wrong username or password.",
      reason: "INVALID_CREDENTIALS",
      outcome: "error",
    });
    assert.doesNotMatch(await first.shownText(), TRANSPORT_WORDS);
    assert.equal(await first.text("session"), "Not signed in");
  });

  it("signs in again", async () => {
    await first.logIn(username, password);
    assert.equal(await first.text("session"), `Signed in as ${username}`);
    assert.equal(await first.errorCount(), 0, "the wrong password's error is gone");
  });

  it("answers Who am I? with the username", async () => {
    await first.press("who-am-i");
    assert.match((await first.said("session")).words, new RegExp(`^The token belongs to ${username}, valid until `));
  });

  it("refuses the token once signed out: the session has ended", async () => {
    const token = await first.text("token");
    assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/, "the page shows the JWT it holds");
    await first.press("log-out");
    assert.equal(await first.text("session"), "Not signed in");
    assert.equal(await first.text("token"), "");

    await first.fill("Access token", token);
    await first.press("verify");
    assert.deepEqual(await first.said("check-token"), {
      words: "This session has ended.",
      reason: "TOKEN_REVOKED",
      outcome: "error",
    });
    assert.doesNotMatch(await first.shownText(), TRANSPORT_WORDS);
  });

  it("lists the sessions of two browsers signed in as the same user", async () => {
    await first.logIn(username, password);
    second = await openPage();
    await second.logIn(username, password);
    assert.equal(await second.text("session"), `Signed in as ${username}`);

    await first.pressButton("List sessions");
    assert.equal((await first.said("sessions")).words, "2 live sessions.");
    assert.equal(await first.sessions().count(), 2);
    assert.equal(await first.sessions().filter({ hasText: "This browser" }).count(), 1);
    await screenshot(first, "04-two-sessions");
  });

  it("ends the other browser's session, whose next call and reload say so in the same words", async () => {
    const other = first.sessions().filter({ hasNotText: "This browser" });
    await first.click(other.getByRole("button", { name: "End", exact: true }));
    assert.match((await first.said("sessions")).words, /^Ended the session started /);
    assert.equal(await first.sessions().count(), 1);

    // Who am I? goes over grpc-web, the reload's refresh over REST: two
    // surfaces, two reasons, one wording.
    await second.press("who-am-i");
    const overGrpcWeb = await second.said("session");
    assert.deepEqual(overGrpcWeb, { words: "This session has ended.", reason: "TOKEN_REVOKED", outcome: "error" });
    assert.equal(await second.text("session"), "Not signed in");
    assert.deepEqual(await second.controls(), SIGNED_OUT);
    assert.doesNotMatch(await second.shownText(), TRANSPORT_WORDS);

    await second.reload();
    const overRest = await second.said("session");
    assert.deepEqual(overRest, { words: "This session has ended.", reason: "SESSION_ENDED", outcome: "error" });
    assert.equal(await second.text("session"), "Not signed in");
    assert.doesNotMatch(await second.shownText(), TRANSPORT_WORDS);
    await screenshot(second, "05-session-ended-elsewhere");
  });

  it("refuses a wrong current password on its field, staying signed in", async () => {
    await first.fill("Current password", "not the password");
    await first.fill("New password", newPassword);
    await first.pressButton("Change password");
    assert.deepEqual(await first.fieldState(first.page.getByLabel("Current password", { exact: true })), {
      invalid: "true",
      words: "Wrong username or password.",
      reason: "INVALID_CREDENTIALS",
      focused: true,
    });
    assert.equal(await first.text("session"), `Signed in as ${username}`);
  });

  it("changes the password, ending every earlier session", async () => {
    const earlierToken = await first.text("token");
    await first.fill("Current password", password);
    await first.fill("New password", newPassword);
    await first.pressButton("Change password");
    assert.deepEqual(await first.said("change-password"), {
      words: "Password changed: every other browser is signed out.",
      reason: null,
      outcome: "success",
    });
    assert.equal(await first.text("session"), `Signed in as ${username}`);
    assert.notEqual(await first.text("token"), earlierToken);
    assert.equal(await first.errorCount(), 0, "the wrong password's mark is gone");

    await first.fill("Access token", earlierToken);
    await first.press("verify");
    assert.equal((await first.said("check-token")).reason, "TOKEN_REVOKED");

    await second.logIn(username, password);
    assert.equal((await second.said("sign-in")).reason, "INVALID_CREDENTIALS");
    await second.logIn(username, newPassword);
    assert.equal(await second.text("session"), `Signed in as ${username}`);
  });

  it("keeps the new session across a reload", async () => {
    await first.reload();
    assert.equal(await first.text("session"), `Signed in as ${username}`);
  });

  it("shows a wrong password for Delete account on its field, in view, beside the form", async () => {
    await first.fill("Your password", "not the password");
    await first.pressButton("Delete account");
    const field = first.page.getByLabel("Your password", { exact: true });
    assert.deepEqual(await first.fieldState(field), {
      invalid: "true",
      words: "Wrong username or password.",
      reason: "INVALID_CREDENTIALS",
      focused: true,
    });
    // The message is the delete form's own, and the only error on the page.
    const note = first.form("Delete account").locator(".field-error");
    assert.equal(await note.count(), 1);
    assert.equal(await first.page.locator('.field-error, [data-outcome="error"]').count(), 1);

    // Where the person is looking: inside the viewport, right below the field.
    const viewport = first.page.viewportSize();
    const noteBox = await note.boundingBox();
    const fieldBox = await field.boundingBox();
    assert.ok(noteBox && fieldBox, "the message and the field are rendered");
    assert.ok(noteBox.y >= 0 && noteBox.y + noteBox.height <= viewport.height, `message at y=${noteBox.y} in a ${viewport.height} px viewport`);
    assert.ok(noteBox.x >= 0 && noteBox.x + noteBox.width <= viewport.width);
    const gap = noteBox.y - (fieldBox.y + fieldBox.height);
    assert.ok(gap >= 0 && gap <= 24, `message ${gap} px below the field`);
    assert.equal(await first.text("session"), `Signed in as ${username}`);
    await screenshot(first, "06-delete-wrong-password-viewport", { fullPage: false });
  });

  it("deletes the account, whose name signs in no more", async () => {
    await first.fill("Your password", newPassword);
    await first.pressButton("Delete account");
    assert.equal((await first.said("session")).words, `Deleted the account ${username}.`);
    assert.equal(await first.text("session"), "Not signed in");
    assert.deepEqual(await first.controls(), SIGNED_OUT);

    await second.press("who-am-i");
    assert.equal((await second.said("session")).reason, "TOKEN_REVOKED");
    assert.equal(await second.text("session"), "Not signed in");

    await first.logIn(username, newPassword);
    assert.equal((await first.said("sign-in")).reason, "INVALID_CREDENTIALS");
    assert.equal(await first.text("session"), "Not signed in");
  });

  it("loaded nothing from elsewhere, threw nothing, and drew no console warning about its forms", () => {
    assert.deepEqual(foreignRequests, []);
    assert.deepEqual(pageErrors, []);
    assert.ok(consoleMessages.length > 0, "the console is collected (the first visit's refused refresh is logged)");
    assert.deepEqual(consoleMessages.filter((message) => /password|autocomplete|username/i.test(message)), []);
  });
});
