// Email addresses on the demo page, as a person uses it in Debian's
// headless Chromium against a real authd that sends its mail through a real
// SMTP server (Python's aiosmtpd, writing each mail to a directory): an
// address given at registration, the verification link read from the mail
// that arrived and opened in the browser, the same link refused the second
// time, another address set from the account screen with the step-up authd
// asks for, a resent link voiding the earlier one, an address another
// account verified first, and an authd that sends no mail.
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
  screenshotDir,
  startAuthd,
  startMailServer,
  stopAuthd,
  verificationLink,
} from "./support.mjs";

const username = "ada";
const password = "correct horse battery";
const firstAddress = "ada@example.com";
const secondAddress = "ada.lovelace@example.org";
const MAIL_FROM = "authd <no-reply@example.com>";

describe("email addresses on the demo page", { timeout: 180_000 }, () => {
  const dataDirs = [];
  let mail;
  let authd;
  let browser;
  let visitor;
  let codes;
  // The link of the first mail to ada's first address.
  let firstLink;
  // The links of the mails to her second address, in the order they came.
  const secondLinks = [];
  const foreignRequests = [];
  const pageErrors = [];
  const screenshots = [];

  async function screenshot(on, name, options) {
    screenshots.push(await on.screenshot(name, options));
  }

  // A browser context (cookies of its own) with the page of `origin` open.
  async function openPage(origin = authd.origin) {
    const context = await browser.newContext();
    await context.route(
      (url) => url.origin !== origin,
      (route) => {
        foreignRequests.push(route.request().url());
        return route.abort("blockedbyclient");
      },
    );
    return openTab(context, origin);
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

  // The verification mail to `address` (the `count`th), checked as a mail:
  // to the address, from --mail-from, authd's subject, and in both bodies
  // a link to the page's route on authd's --public-url. Resolves to the link.
  async function mailedLink(address, count = 1) {
    const received = await mail.waitFor(address, { count });
    assert.deepEqual(received.envelopeTo, [address]);
    assert.equal(received.to, address);
    assert.equal(received.from, MAIL_FROM);
    assert.equal(received.subject, "Verify your email address");
    const link = verificationLink(received);
    assert.match(link ?? "", new RegExp(`^${authd.origin.replaceAll(".", "\\.")}/#/verify-email\\?token=authd_ev_[A-Za-z0-9_-]+$`));
    assert.ok(received.html.includes(`href="${link}"`), "the HTML body links the same");
    return link;
  }

  const status = (on = visitor) =>
    on.page.getByTestId("email-status").evaluate((element) => ({
      text: element.textContent,
      verified: element.dataset.verified,
    }));
  const shown = (testId, on = visitor) => on.page.getByTestId(testId).isVisible();

  before(async () => {
    await mkdir(screenshotDir, { recursive: true });
    dataDirs.push(await mkdtemp(join(tmpdir(), "authd-web-email-")));
    mail = await startMailServer();
    // authd's links start with --public-url, so the page's origin is chosen
    // before authd starts.
    const origin = `http://127.0.0.1:${await freePort()}`;
    authd = await startAuthd(
      dataDirs[0],
      ["--smtp-url", mail.url, "--mail-from", MAIL_FROM, "--public-url", origin, "--mail-poll-interval", "100ms"],
      { listen: new URL(origin).host },
    );
    assert.equal(authd.origin, origin);
    browser = await launchChromium();
    visitor = await openPage();
  });

  after(async () => {
    await browser?.close();
    if (authd) {
      await stopAuthd(authd);
    }
    await mail?.stop();
    for (const dataDir of dataDirs) {
      await rm(dataDir, { recursive: true, force: true });
    }
    if (screenshots.length > 0) {
      console.log(`screenshots of the email states in ${screenshotDir}:\n  ${screenshots.join("\n  ")}`);
    }
  });

  it("refuses an address authd's rules refuse on the registration form's email field", async () => {
    const form = visitor.form("Create an account");
    await visitor.fill("Email address (optional)", "ada@", form);
    await visitor.register(username, password);
    assert.deepEqual(await visitor.fieldState(form.getByLabel("Email address (optional)", { exact: true })), {
      invalid: "true",
      words: "Enter one plain address, like name@example.com.",
      reason: "INVALID_EMAIL",
      focused: true,
    });
    assert.equal(await visitor.text("session"), "Not signed in");
  });

  it("registers with an address, shows it not verified yet, and mails it a link to the page's route", async () => {
    const form = visitor.form("Create an account");
    await visitor.fill("Email address (optional)", firstAddress, form);
    await visitor.register(username, password);
    assert.equal(await visitor.text("session"), `Signed in as ${username}`);
    assert.deepEqual(await visitor.said("session"), {
      words: `Account created. Welcome, ${username}. Open the link mailed to ${firstAddress} to verify it.`,
      reason: null,
      outcome: "success",
    });
    assert.deepEqual(await status(), {
      text: `${firstAddress}: not verified yet. Open the link mailed to it.`,
      verified: "false",
    });
    assert.equal(await shown("resend-email"), true);
    await screenshot(visitor, "email-01-registered-unverified");

    firstLink = await mailedLink(firstAddress);
  });

  it("opens the mail's link: the page says the address is verified, and so does the account screen", async () => {
    const tab = await openTab(visitor.context, firstLink);
    assert.deepEqual(await tab.said("verify-email"), {
      words: `Your email address ${firstAddress} is verified.`,
      reason: null,
      outcome: "success",
    });
    assert.equal(await tab.text("session"), `Signed in as ${username}`);
    assert.deepEqual(await status(tab), { text: `${firstAddress}: verified.`, verified: "true" });
    assert.equal(await shown("resend-email", tab), false);
    assert.equal(tab.page.url(), `${authd.origin}/`, "the token is off the address bar");
    await screenshot(tab, "email-02-verified");

    // The tab that was open meanwhile learns it from its next session.
    await visitor.reload();
    assert.deepEqual(await status(), { text: `${firstAddress}: verified.`, verified: "true" });
    await tab.page.close();
  });

  it("opens the same link again: it no longer works, and the page says the address is verified already", async () => {
    const tab = await openTab(visitor.context, firstLink);
    assert.deepEqual(await tab.said("verify-email"), {
      words: "This link no longer works: it has expired, was used already, or a newer mail replaced it.",
      reason: "EMAIL_TOKEN_INVALID",
      outcome: "error",
    });
    assert.equal(await tab.text("verify-email-next"), `Your address ${firstAddress} is verified already.`);
    assert.equal(await shown("verify-email-resend", tab), false);
    await screenshot(tab, "email-03-link-used");
    await tab.page.close();
  });

  it("sets another address from the account screen, with the authenticator app's code authd asks for", async () => {
    // TOTP on: the session's password alone no longer does for a step-up.
    await visitor.press("start-totp");
    codes = totpCodes(await visitor.page.getByTestId("totp-secret").inputValue());
    await visitor.page.getByTestId("confirm-totp-code").fill(await codes.next());
    await visitor.press("confirm-totp");
    await visitor.press("recovery-codes-saved");

    const form = visitor.form("New email address");
    await visitor.fill("New email address", secondAddress, form);
    await visitor.press("set-email");
    const codeField = visitor.page.getByTestId("set-email-code");
    assert.deepEqual(await visitor.fieldState(codeField), {
      invalid: "true",
      words:
        "This needs proof that it is still you: enter a code from your authenticator app, or sign out and sign in again.",
      reason: "REAUTHENTICATION_REQUIRED",
      focused: true,
    });
    assert.deepEqual(await status(), { text: `${firstAddress}: verified.`, verified: "true" });
    await screenshot(visitor, "email-04-step-up");

    await codeField.fill(await codes.next());
    await visitor.press("set-email");
    assert.deepEqual(await visitor.said("set-email"), {
      words: `Address set: open the link mailed to ${secondAddress} to verify it.`,
      reason: null,
      outcome: "success",
    });
    assert.deepEqual(await status(), {
      text: `${secondAddress}: not verified yet. Open the link mailed to it.`,
      verified: "false",
    });
    secondLinks.push(await mailedLink(secondAddress));
  });

  it("sends the link again; the earlier link then no longer works, and the page offers a new one", async () => {
    await visitor.press("resend-email");
    assert.deepEqual(await visitor.said("email"), {
      words: `Sent a new link to ${secondAddress}: the links mailed before it no longer work.`,
      reason: null,
      outcome: "success",
    });
    secondLinks.push(await mailedLink(secondAddress, 2));
    assert.notEqual(secondLinks[1], secondLinks[0]);

    // In the tab that shows the page already: only the fragment changes.
    await visitor.page.goto(secondLinks[0]);
    await visitor.page.getByTestId("verify-email-panel").waitFor();
    await visitor.idle();
    assert.deepEqual(await visitor.said("verify-email"), {
      words: "This link no longer works: it has expired, was used already, or a newer mail replaced it.",
      reason: "EMAIL_TOKEN_INVALID",
      outcome: "error",
    });
    assert.equal(
      await visitor.text("verify-email-next"),
      `A new link can be sent to ${secondAddress}; the links mailed before it stop working.`,
    );
    assert.equal(await shown("verify-email-resend"), true);
    await screenshot(visitor, "email-05-link-replaced");
  });

  it("sends a new link from there, and verifies the new address with it", async () => {
    await visitor.press("verify-email-resend");
    assert.deepEqual(await visitor.said("verify-email"), {
      words: `Sent a new link to ${secondAddress}: the links mailed before it no longer work.`,
      reason: null,
      outcome: "success",
    });
    assert.equal(await shown("verify-email-resend"), false);
    secondLinks.push(await mailedLink(secondAddress, 3));

    await visitor.press("verify-email-dismiss");
    assert.equal(await shown("verify-email-panel"), false);
    await visitor.page.goto(secondLinks[2]);
    await visitor.page.getByTestId("verify-email-panel").waitFor();
    await visitor.idle();
    assert.deepEqual(await visitor.said("verify-email"), {
      words: `Your email address ${secondAddress} is verified.`,
      reason: null,
      outcome: "success",
    });
    assert.deepEqual(await status(), { text: `${secondAddress}: verified.`, verified: "true" });
    assert.equal(visitor.page.url(), `${authd.origin}/`);
    await screenshot(visitor, "email-06-new-address-verified");
  });

  it("refuses the link of an address another account verified first (EMAIL_TAKEN), signed in as that one", async () => {
    const other = await openPage();
    await other.fill("Email address (optional)", secondAddress, other.form("Create an account"));
    await other.register("grace", password);
    assert.equal(await other.text("session"), "Signed in as grace");
    const link = await mailedLink(secondAddress, 4);

    const tab = await openTab(other.context, link);
    assert.deepEqual(await tab.said("verify-email"), {
      words: "Another account has verified this address already: use another one.",
      reason: "EMAIL_TAKEN",
      outcome: "error",
    });
    assert.deepEqual(await status(tab), {
      text: `${secondAddress}: not verified yet. Open the link mailed to it.`,
      verified: "false",
    });
    await screenshot(tab, "email-07-taken");
    await other.context.close();
  });

  it("verifies a link opened signed out, and asks to sign in", async () => {
    const other = await openPage();
    await other.fill("Email address (optional)", "grace@example.net", other.form("Create an account"));
    await other.register("hopper", password);
    await other.press("log-out");
    const link = await mailedLink("grace@example.net");
    const tab = await openTab(other.context, link);
    assert.equal(await tab.text("session"), "Not signed in");
    assert.deepEqual(await tab.said("verify-email"), {
      words: "Your email address is verified. Sign in to use your account.",
      reason: null,
      outcome: "success",
    });
    await other.context.close();
  });

  it("says so when authd sends no mail: MAIL_NOT_CONFIGURED", async () => {
    dataDirs.push(await mkdtemp(join(tmpdir(), "authd-web-email-")));
    const quiet = await startAuthd(dataDirs[1]);
    try {
      const page = await openPage(quiet.origin);
      await page.fill("Email address (optional)", firstAddress, page.form("Create an account"));
      await page.register(username, password);
      assert.deepEqual(await status(page), {
        text: `${firstAddress}: not verified yet. Open the link mailed to it.`,
        verified: "false",
      });
      await page.press("resend-email");
      assert.deepEqual(await page.said("email"), {
        words:
          "This authd sends no mail (no mail server is set up), so it cannot verify email addresses or mail password reset links.",
        reason: "MAIL_NOT_CONFIGURED",
        outcome: "error",
      });
      await screenshot(page, "email-08-mail-not-configured");
      await page.context.close();
    } finally {
      await stopAuthd(quiet);
    }
  });

  it("loaded nothing from elsewhere and threw nothing", () => {
    assert.deepEqual(foreignRequests, []);
    assert.deepEqual(pageErrors, []);
  });
});
