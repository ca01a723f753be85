// Password reset on the demo page, as a person uses it in Debian's headless
// Chromium against a real authd that sends its mail through a real SMTP
// server (Python's aiosmtpd, writing each mail to a directory): an address
// verified from its mail, "Forgot your password?" saying a link was sent
// only *if* the account has a verified address, the reset link read from
// the mail that arrived and opened in the browser, a new password set and
// the page signed in with it, the old password refused, the notice mail,
// the same link refused the second time with a new one offered; and an
// account with TOTP, whose reset asks for its code (MFA_REQUIRED).
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
// The RFC 6238 codes @authd/client's own tests compute (node:crypto only).
import { totpCodes } from "../../clients/typescript/test/totp.mjs";
import {
  Visitor,
  freePort,
  launchChromium,
  resetLink,
  screenshotDir,
  startAuthd,
  startMailServer,
  stopAuthd,
  verificationLink,
} from "./support.mjs";

const username = "ada";
const address = "ada@example.com";
const password = "correct horse battery";
const newPassword = "another horse battery staple";
const MAIL_FROM = "authd <no-reply@example.com>";
const RESET_SUBJECT = "Reset your password";
const NOTICE_SUBJECT = "Security notice: your password was reset";
const LINK_USED = "This link no longer works: it has expired, was used already, or a newer request replaced it.";

describe("password reset on the demo page", { timeout: 240_000 }, () => {
  let dataDir;
  let mail;
  let authd;
  let browser;
  let visitor;
  // The link of the first reset mail to ada's address.
  let firstLink;
  const foreignRequests = [];
  const pageErrors = [];
  const screenshots = [];

  async function screenshot(on, name, options) {
    screenshots.push(await on.screenshot(name, options));
  }

  // A browser context (cookies of its own) with the page open.
  async function openPage() {
    const context = await browser.newContext();
    await context.route(
      (url) => url.origin !== authd.origin,
      (route) => {
        foreignRequests.push(route.request().url());
        return route.abort("blockedbyclient");
      },
    );
    return openTab(context, authd.origin);
  }

  // A new tab of `context` at `url`, as a mail client opens a link: the
  // page loads, resumes the context's session, then follows the link.
  async function openTab(context, url) {
    const page = await context.newPage();
    page.setDefaultTimeout(10_000);
    page.on("pageerror", (error) => pageErrors.push(error));
    await page.goto(url);
    const tab = new Visitor(context, page);
    await tab.idle();
    return tab;
  }

  // Registers `name` with `email` and verifies it from the mail's link, in
  // a tab of the same browser: a reset mail goes to a verified address only.
  async function registerVerified(on, name, email) {
    await on.fill("Email address (optional)", email, on.form("Create an account"));
    await on.register(name, password);
    assert.equal(await on.text("session"), `Signed in as ${name}`);
    const link = verificationLink(await mail.waitFor(email, { subject: "Verify your email address" }));
    const tab = await openTab(on.context, link);
    assert.deepEqual(await tab.said("verify-email"), {
      words: `Your email address ${email} is verified.`,
      reason: null,
      outcome: "success",
    });
    await tab.page.close();
  }

  // "Forgot your password?" (unless its form is open already) with `name`,
  // signed out.
  async function requestReset(on, name) {
    if (!(await shown("request-reset-panel", on))) {
      await on.press("forgot-password");
    }
    await on.fill("Username or email address", name, on.form("Reset your password"));
    await on.press("request-reset");
    assert.deepEqual(await on.said("request-reset"), {
      words: `If "${name}" is an account with a verified email address, a link to set a new password was mailed to that address. It works once, for a limited time; asking again replaces it.`,
      reason: null,
      outcome: "success",
    });
  }

  // The `count`th reset mail to `email`, checked as a mail: to the address,
  // from --mail-from, authd's subject, and in both bodies a link to the
  // page's route on authd's --public-url. Resolves to the link.
  async function mailedResetLink(email, count = 1) {
    const received = await mail.waitFor(email, { count, subject: RESET_SUBJECT });
    assert.deepEqual(received.envelopeTo, [email]);
    assert.equal(received.from, MAIL_FROM);
    const link = resetLink(received);
    assert.match(link ?? "", new RegExp(`^${authd.origin.replaceAll(".", "\\.")}/#/reset-password\\?token=authd_pr_[A-Za-z0-9_-]+$`));
    assert.ok(received.html.includes(`href="${link}"`), "the HTML body links the same");
    return link;
  }

  // The form of a reset link, filled in: the new password twice.
  async function fillNewPassword(on, first, second = first) {
    const form = on.form("Set a new password");
    await on.fill("Your new password", first, form);
    await on.fill("Your new password again", second, form);
  }

  const shown = (testId, on = visitor) => on.page.getByTestId(testId).isVisible();

  before(async () => {
    await mkdir(screenshotDir, { recursive: true });
    dataDir = await mkdtemp(join(tmpdir(), "authd-web-reset-"));
    mail = await startMailServer();
    // authd's links start with --public-url, so the page's origin is chosen
    // before authd starts.
    const origin = `http://127.0.0.1:${await freePort()}`;
    authd = await startAuthd(
      dataDir,
      ["--smtp-url", mail.url, "--mail-from", MAIL_FROM, "--public-url", origin, "--mail-poll-interval", "100ms"],
      { listen: new URL(origin).host },
    );
    browser = await launchChromium();
    visitor = await openPage();
  });

  after(async () => {
    await browser?.close();
    if (authd) {
      await stopAuthd(authd);
    }
    await mail?.stop();
    if (dataDir) {
      await rm(dataDir, { recursive: true, force: true });
    }
    if (screenshots.length > 0) {
      console.log(`screenshots of the password reset states in ${screenshotDir}:\n  ${screenshots.join("\n  ")}`);
    }
  });

  it("registers with an address, verifies it from the mail, and signs out", async () => {
    await registerVerified(visitor, username, address);
    await visitor.press("log-out");
    assert.equal(await visitor.text("session"), "Not signed in");
  });

  it("asks for the username or address under 'Forgot your password?', and says a link was sent only if the account has a verified address", async () => {
    await visitor.page.getByRole("form", { name: "Sign in" }).getByLabel("Username").fill(username);
    await visitor.press("forgot-password");
    assert.equal(await visitor.form("Sign in").isVisible(), false);
    assert.equal(await visitor.page.getByTestId("request-reset-name").inputValue(), username, "the username typed is taken");
    await visitor.press("cancel-request-reset");
    assert.equal(await visitor.form("Sign in").isVisible(), true);
    assert.equal(await shown("request-reset-panel"), false);

    // A name without an account reads the same: the page cannot tell.
    await requestReset(visitor, "nobody-here");
    await requestReset(visitor, address);
    await screenshot(visitor, "reset-01-link-requested");
  });

  it("receives the reset mail, with a link to the page's route", async () => {
    firstLink = await mailedResetLink(address);
    assert.deepEqual(await mail.to("nobody-here"), []);
  });

  it("opens the link: refuses two different passwords and a common one, then sets the new one and signs in", async () => {
    const tab = await openTab(visitor.context, firstLink);
    assert.equal(tab.page.url(), `${authd.origin}/`, "the token is off the address bar");
    assert.deepEqual(await tab.said("reset-password"), {
      words: "Choose a new password, and type it twice.",
      reason: null,
      outcome: "success",
    });
    assert.equal(await shown("reset-password-code", tab), false);
    await screenshot(tab, "reset-02-link-opened");

    const form = tab.form("Set a new password");
    await fillNewPassword(tab, newPassword, `${newPassword}!`);
    await tab.press("reset-password");
    assert.deepEqual(await tab.fieldState(form.getByLabel("Your new password again", { exact: true })), {
      invalid: "true",
      words: "The two passwords differ: type the same one twice.",
      reason: "",
      focused: true,
    });

    await fillNewPassword(tab, "password123");
    await tab.press("reset-password");
    assert.deepEqual(await tab.fieldState(form.getByLabel("Your new password", { exact: true })), {
      invalid: "true",
      words: "This password is one of the most common ones: choose another.",
      reason: "PASSWORD_TOO_COMMON",
      focused: true,
    });
    assert.equal(await tab.text("session"), "Not signed in");

    await fillNewPassword(tab, newPassword);
    await tab.press("reset-password");
    assert.equal(await tab.text("session"), `Signed in as ${username}`);
    assert.deepEqual(await tab.said("session"), {
      words: `Password set. Welcome, ${username}: every other browser is signed out.`,
      reason: null,
      outcome: "success",
    });
    assert.equal(await shown("reset-password-panel", tab), false);
    await screenshot(tab, "reset-03-signed-in");

    // Signed out, the old password is refused and the new one signs in.
    await tab.press("log-out");
    await tab.logIn(username, password);
    assert.equal((await tab.said("sign-in")).reason, "INVALID_CREDENTIALS");
    await tab.logIn(username, newPassword);
    assert.equal(await tab.text("session"), `Signed in as ${username}`);
    await tab.press("log-out");
    await tab.page.close();
  });

  it("mails the 'password was reset' notice to the address", async () => {
    const notice = await mail.waitFor(address, { subject: NOTICE_SUBJECT });
    assert.equal(notice.from, MAIL_FROM);
    assert.ok(!notice.text.includes(newPassword), "the notice holds no password");
  });

  it("opens the same link again: it no longer works, and the page offers to request a new one", async () => {
    const tab = await openTab(visitor.context, firstLink);
    assert.deepEqual(await tab.said("reset-password"), {
      words: LINK_USED,
      reason: "PASSWORD_RESET_TOKEN_INVALID",
      outcome: "error",
    });
    assert.equal(await shown("reset-password-new", tab), false);
    assert.equal(await shown("reset-password-request-new", tab), true);
    await screenshot(tab, "reset-04-link-used");

    await tab.press("reset-password-request-new");
    assert.equal(await shown("reset-password-panel", tab), false);
    assert.equal(await shown("request-reset-panel", tab), true);
    await tab.page.close();
  });

  it("asks an account with TOTP for its code (MFA_REQUIRED), refuses a wrong one, and resets with the app's code", async () => {
    const other = await openPage();
    await registerVerified(other, "grace", "grace@example.com");
    await other.press("start-totp");
    const codes = totpCodes(await other.page.getByTestId("totp-secret").inputValue());
    await other.page.getByTestId("confirm-totp-code").fill(await codes.next());
    await other.press("confirm-totp");
    await other.press("recovery-codes-saved");
    await other.press("log-out");

    await requestReset(other, "grace");
    const tab = await openTab(other.context, await mailedResetLink("grace@example.com"));
    await fillNewPassword(tab, newPassword);
    await tab.press("reset-password");
    const codeField = tab.page.getByTestId("reset-password-code");
    assert.deepEqual(await tab.fieldState(codeField), {
      invalid: "true",
      words: "This account has a second factor: enter a code from your authenticator app or a recovery code, or use a passkey.",
      reason: "MFA_REQUIRED",
      focused: true,
    });
    assert.equal(await tab.text("session"), "Not signed in");
    await screenshot(tab, "reset-05-code-required");

    await codeField.fill(codes.wrong());
    await tab.press("reset-password");
    assert.equal((await tab.fieldState(codeField)).reason, "MFA_CODE_INVALID");

    await codeField.fill(await codes.next());
    await tab.press("reset-password");
    assert.equal(await tab.text("session"), "Signed in as grace");
    assert.equal(
      await tab.text("session-factors"),
      "Multi-factor session (assurance level 2): signed in with password and authenticator app.",
    );
    await screenshot(tab, "reset-06-signed-in-with-code");
    await other.context.close();
  });

  it("loaded nothing from elsewhere and threw nothing", () => {
    assert.deepEqual(foreignRequests, []);
    assert.deepEqual(pageErrors, []);
  });
});
