// Two-factor authentication on the demo page, as a person uses it in
// Debian's headless Chromium against a real authd: TOTP set up from the QR
// code's key the page shows (the test computes each code from it, as a
// phone would), the recovery codes shown once, signing in with a code and
// with a recovery code, turning TOTP off, and the password alone after.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
// The RFC 6238 codes @authd/client's own tests compute (node:crypto only).
import { totpCodes } from "../../clients/typescript/test/totp.mjs";
import { Visitor, launchChromium, screenshotDir, startAuthd, stopAuthd } from "./support.mjs";

const username = "bob";
const password = "correct horse battery";

// Each code the test types is of a step not used before (authd accepts a
// step once); one code may wait for the next 30 s step.
describe("two-factor authentication on the demo page", { timeout: 180_000 }, () => {
  let dataDir;
  let authd;
  let browser;
  let visitor;
  let codes;
  let recoveryCodes;
  const foreignRequests = [];
  const pageErrors = [];
  const screenshots = [];

  async function screenshot(name, options) {
    screenshots.push(await visitor.screenshot(name, options));
  }

  // What the two-factor part, or the second step of signing in, says.
  const mfaStatus = () => visitor.text("mfa-status");
  const codeField = (testId) => visitor.page.getByTestId(testId);

  async function signIn() {
    await visitor.logIn(username, password);
  }

  async function secondStep(code) {
    await codeField("second-factor-code").fill(code);
    await visitor.press("complete-login");
  }

  before(async () => {
    await mkdir(screenshotDir, { recursive: true });
    dataDir = await mkdtemp(join(tmpdir(), "authd-web-mfa-"));
    authd = await startAuthd(dataDir);
    browser = await launchChromium();
    const context = await browser.newContext();
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
    visitor = new Visitor(context, page);
    await visitor.idle();
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
      console.log(`screenshots of the two-factor states in ${screenshotDir}:\n  ${screenshots.join("\n  ")}`);
    }
  });

  it("shows a new account's two-factor authentication as off", async () => {
    await visitor.register(username, password);
    assert.equal(await visitor.text("session"), `Signed in as ${username}`);
    assert.equal(await mfaStatus(), "Off: your password alone signs you in.");
    assert.equal(await codeField("start-totp").isVisible(), true);
    assert.equal(await codeField("disable-totp").isVisible(), false);
  });

  it("sets up an authenticator app: a QR code drawn as an image, and the key to copy", async () => {
    await visitor.press("start-totp");
    const qr = codeField("totp-qr");
    assert.equal(await qr.isVisible(), true);
    const image = await qr.evaluate((img) => ({ src: img.src, width: img.naturalWidth, alt: img.alt }));
    assert.match(image.src, /^data:image\/svg\+xml;base64,/);
    assert.ok(image.width > 0, "Chromium decoded authd's SVG");
    assert.equal(image.alt, "QR code of the key for your authenticator app");
    const svg = Buffer.from(image.src.slice(image.src.indexOf(",") + 1), "base64").toString();
    assert.match(svg, /<svg[\s>]/);
    assert.equal(await visitor.page.locator("svg").count(), 0, "the SVG is an image, not markup in the page");

    const secret = await codeField("totp-secret").inputValue();
    assert.match(secret, /^[A-Z2-7]{32}$/);
    codes = totpCodes(secret);
    assert.equal(await codeField("start-totp").isVisible(), false);
    await screenshot("mfa-01-enrollment");
  });

  it("refuses a wrong code on the confirmation field, and TOTP stays off", async () => {
    await codeField("confirm-totp-code").fill(codes.wrong());
    await visitor.press("confirm-totp");
    assert.deepEqual(await visitor.fieldState(codeField("confirm-totp-code")), {
      invalid: "true",
      words:
        "That code is wrong or was used already: enter the code your authenticator app shows now, or an unused recovery code.",
      reason: "MFA_CODE_INVALID",
      focused: true,
    });
    assert.equal(await codeField("totp-qr").isVisible(), true, "the key is still there to try again");
  });

  it("turns TOTP on with the app's code and shows ten recovery codes once, with a note to save them", async () => {
    await codeField("confirm-totp-code").fill(await codes.next());
    await visitor.press("confirm-totp");
    assert.deepEqual(await visitor.said("mfa"), {
      words: "Two-factor authentication is on: every other browser is signed out.",
      reason: null,
      outcome: "success",
    });
    const list = codeField("recovery-codes");
    recoveryCodes = await list.getByRole("listitem").allTextContents();
    assert.equal(recoveryCodes.length, 10);
    assert.equal(new Set(recoveryCodes).size, 10);
    assert.equal(
      await visitor.page.getByText("Save these recovery codes somewhere safe now", { exact: false }).isVisible(),
      true,
    );
    assert.equal(await codeField("totp-qr").isVisible(), false);
    assert.equal(
      await mfaStatus(),
      "On: signing in asks for a code from your authenticator app. 10 recovery codes left.",
    );
    await screenshot("mfa-02-recovery-codes");

    await visitor.page.getByTestId("recovery-codes-saved").click();
    assert.equal(await list.isVisible(), false);
    await visitor.reload();
    assert.equal(await visitor.text("session"), `Signed in as ${username}`);
    assert.equal(await list.getByRole("listitem").count(), 0, "never shown again");
    assert.doesNotMatch(await visitor.shownText(), new RegExp(recoveryCodes[0]));
  });

  it("asks for a code to change the password of an account with TOTP, and stays signed in", async () => {
    const form = visitor.form("Change password");
    await visitor.fill("Current password", password, form);
    await visitor.fill("New password", "a different horse battery", form);
    await visitor.pressButton("Change password");
    const codeState = await visitor.fieldState(
      form.getByLabel("Code from your authenticator app, or a recovery code", { exact: true }),
    );
    assert.deepEqual(codeState, {
      invalid: "true",
      words:
        "This needs proof that it is still you: enter a code from your authenticator app, or sign out and sign in again.",
      reason: "REAUTHENTICATION_REQUIRED",
      focused: true,
    });
    assert.equal(await visitor.text("session"), `Signed in as ${username}`);
  });

  it("asks for a second step after the password, with no cookie until it is given", async () => {
    await visitor.press("log-out");
    await signIn();
    assert.equal(await visitor.text("session"), "Not signed in");
    assert.equal(await visitor.form("Second step").isVisible(), true);
    assert.equal(await visitor.form("Sign in").isVisible(), false);
    assert.equal(
      (await visitor.said("session")).words,
      "Password accepted. Now the code from your authenticator app, or a recovery code.",
    );
    assert.deepEqual(await visitor.context.cookies(), []);
    await screenshot("mfa-03-second-step");

    await secondStep(codes.wrong());
    assert.equal((await visitor.fieldState(codeField("second-factor-code"))).reason, "MFA_CODE_INVALID");
    assert.equal(await visitor.text("session"), "Not signed in");
  });

  it("goes back to the password when the sign-in runs out of attempts, and Cancel does too", async () => {
    // authd allows a ticket five codes; the test gave one wrong code already.
    for (let attempt = 2; attempt <= 5; attempt += 1) {
      await secondStep(codes.wrong());
      assert.equal((await visitor.fieldState(codeField("second-factor-code"))).reason, "MFA_CODE_INVALID");
    }
    await secondStep(codes.wrong());
    assert.deepEqual(await visitor.said("session"), {
      words: "That sign-in took too long or had too many wrong codes: sign in again.",
      reason: "MFA_TICKET_INVALID",
      outcome: "error",
    });
    assert.equal(await visitor.form("Sign in").isVisible(), true);
    assert.equal(await visitor.form("Second step").isVisible(), false);

    await signIn();
    assert.equal(await visitor.form("Second step").isVisible(), true);
    await visitor.page.getByRole("button", { name: "Cancel", exact: true }).click();
    assert.equal(await visitor.form("Sign in").isVisible(), true);
    assert.equal(await visitor.form("Second step").isVisible(), false);
    assert.equal(await visitor.text("session"), "Not signed in");
    await signIn();
  });

  it("signs in with the code the app shows", async () => {
    await secondStep(await codes.next());
    assert.equal(await visitor.text("session"), `Signed in as ${username}`);
    assert.equal((await visitor.said("session")).words, `Welcome, ${username}.`);
    assert.equal(await visitor.form("Second step").isVisible(), false);
    assert.deepEqual((await visitor.context.cookies()).map(({ name }) => name).sort(), ["authd_refresh", "authd_token"]);
  });

  it("signs in with a recovery code, and says how many are left", async () => {
    await visitor.press("log-out");
    await signIn();
    await secondStep(recoveryCodes[0]);
    assert.equal(await visitor.text("session"), `Signed in as ${username}`);
    assert.equal((await visitor.said("session")).words, `Welcome, ${username}. 9 recovery codes left.`);
    assert.equal(
      await mfaStatus(),
      "On: signing in asks for a code from your authenticator app. 9 recovery codes left.",
    );
  });

  it("turns TOTP off with a code, after refusing a recovery code used before", async () => {
    await codeField("disable-totp-code").fill(recoveryCodes[0]);
    await visitor.press("disable-totp");
    assert.equal((await visitor.fieldState(codeField("disable-totp-code"))).reason, "MFA_CODE_INVALID");
    assert.equal(await mfaStatus(), "On: signing in asks for a code from your authenticator app. 9 recovery codes left.");

    await codeField("disable-totp-code").fill(await codes.next());
    await visitor.press("disable-totp");
    assert.deepEqual(await visitor.said("mfa"), {
      words: "Two-factor authentication is off: every other browser is signed out.",
      reason: null,
      outcome: "success",
    });
    assert.equal(await mfaStatus(), "Off: your password alone signs you in.");
    assert.equal(await codeField("disable-totp").isVisible(), false);
    assert.equal(await codeField("start-totp").isVisible(), true);
    await screenshot("mfa-04-off");
  });

  it("signs in with the password alone once TOTP is off", async () => {
    await visitor.press("log-out");
    await signIn();
    assert.equal(await visitor.text("session"), `Signed in as ${username}`);
    assert.equal((await visitor.said("session")).words, `Welcome, ${username}.`);
    assert.equal(await visitor.form("Second step").isVisible(), false);
  });

  it("loaded nothing from elsewhere and threw nothing", () => {
    assert.deepEqual(foreignRequests, []);
    assert.deepEqual(pageErrors, []);
  });
});
