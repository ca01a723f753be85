// Accounts with a passkey only on the demo page, in Debian's headless
// Chromium against a real authd, with Chromium's virtual authenticator
// standing in for the device's platform authenticator (as in
// passkeys.test.mjs, which says how the autofill is driven headless): a
// sign-up with a passkey and no password, the passkey signing in again
// through the username field's autofill, a password set afterwards, the
// passkey as the second step after it, a passkey removed with a passkey
// step-up, and the last passkey of an account without a password kept.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Visitor, launchChromium, screenshotDir, startAuthd, stopAuthd } from "./support.mjs";

const username = "dana";
const password = "correct horse battery";

const PLATFORM_AUTHENTICATOR = {
  protocol: "ctap2",
  transport: "internal",
  hasResidentKey: true,
  hasUserVerification: true,
  isUserVerified: true,
  automaticPresenceSimulation: true,
};

describe("an account with a passkey only on the demo page", { timeout: 180_000 }, () => {
  let dataDir;
  let authd;
  let browser;
  let pageOrigin;
  const foreignRequests = [];
  const pageErrors = [];
  const screenshots = [];

  // A new browser context on the page, with requests anywhere else refused,
  // and a platform authenticator there before the page loads (and asks for
  // autofill).
  async function open() {
    const context = await browser.newContext();
    await context.route(
      (url) => url.origin !== pageOrigin,
      (route) => {
        foreignRequests.push(route.request().url());
        return route.abort("blockedbyclient");
      },
    );
    const page = await context.newPage();
    page.setDefaultTimeout(10_000);
    page.on("pageerror", (error) => pageErrors.push(error));
    const cdp = await context.newCDPSession(page);
    await cdp.send("WebAuthn.enable");
    const authenticatorId = await addAuthenticator(cdp);
    await page.goto(pageOrigin);
    const visitor = new Visitor(context, page);
    await visitor.idle();
    await autofillOff(page);
    return { visitor, cdp, authenticatorId };
  }

  async function addAuthenticator(cdp) {
    const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
      options: PLATFORM_AUTHENTICATOR,
    });
    return authenticatorId;
  }

  function autofillOff(page) {
    return page.locator('form#sign-in[data-autofill="off"]').waitFor({ state: "attached" });
  }

  // Runs `action` with the authenticator's credentials held back, so that
  // no autofill request the page makes meanwhile is answered.
  async function holdingCredentials({ cdp, authenticatorId }, action) {
    const { credentials: held } = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
    await cdp.send("WebAuthn.clearCredentials", { authenticatorId });
    await action();
    for (const credential of held) {
      await cdp.send("WebAuthn.addCredential", { authenticatorId, credential });
    }
  }

  // Signs out and stays so: the page's autofill request is refused.
  async function signOut(device) {
    await holdingCredentials(device, async () => {
      await device.visitor.press("log-out");
      await autofillOff(device.visitor.page);
    });
    assert.equal(await device.visitor.text("session"), "Not signed in");
  }

  function listedPasskeys(visitor) {
    return visitor.page
      .getByTestId("passkey-list")
      .getByRole("listitem")
      .evaluateAll((items) => items.map((item) => item.querySelector("input").value));
  }

  function passkeyItem(visitor, index) {
    return visitor.page.getByTestId("passkey-list").getByRole("listitem").nth(index);
  }

  // The page's StartPasskeyReauthentication calls (grpc-web), as they go.
  function watchStepUps(visitor) {
    const stepUps = [];
    visitor.page.on("request", (request) => {
      if (new URL(request.url()).pathname.endsWith("/StartPasskeyReauthentication")) {
        stepUps.push(request.url());
      }
    });
    return stepUps;
  }

  async function signUpWithPasskey(visitor, name) {
    await visitor.fill("Username", name, visitor.form("Create an account"));
    await visitor.press("passkey-register");
  }

  before(async () => {
    await mkdir(screenshotDir, { recursive: true });
    dataDir = await mkdtemp(join(tmpdir(), "authd-web-passwordless-"));
    authd = await startAuthd(dataDir);
    // On authd's RP id, localhost (see passkeys.test.mjs).
    const url = new URL(authd.origin);
    url.hostname = "localhost";
    pageOrigin = url.origin;
    browser = await launchChromium();
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
      console.log(`screenshots of the passkey-only states in ${screenshotDir}:\n  ${screenshots.join("\n  ")}`);
    }
  });

  let device;

  it("signs up with a passkey and no password, stays signed in across a reload, and signs in again through the autofill", async () => {
    device = await open();
    const { visitor } = device;
    await signUpWithPasskey(visitor, username);
    assert.deepEqual(await visitor.said("session"), {
      words: `Account created with a passkey, no password. Welcome, ${username}.`,
      reason: null,
      outcome: "success",
    });
    assert.equal(await visitor.text("session"), `Signed in as ${username}`);
    assert.equal(
      await visitor.text("session-factors"),
      "Multi-factor session (assurance level 2): signed in with a passkey.",
    );
    assert.deepEqual(await listedPasskeys(visitor), ["Passkey"]);
    const { credentials } = await device.cdp.send("WebAuthn.getCredentials", { authenticatorId: device.authenticatorId });
    assert.equal(credentials.length, 1);
    assert.equal(credentials[0].isResidentCredential, true, "a discoverable credential, for autofill");
    screenshots.push(await visitor.screenshot("passwordless-01-signed-up"));

    await visitor.reload();
    assert.equal(await visitor.text("session"), `Signed in as ${username}`);
    await signOut(device);
    assert.deepEqual(await visitor.context.cookies(), []);

    // The next visit: the autofill request on load is answered with the
    // passkey, no username or password typed.
    await visitor.page.reload();
    await visitor.page.getByTestId("session").filter({ hasText: `Signed in as ${username}` }).waitFor();
    await visitor.idle();
    assert.equal((await visitor.said("session")).words, `Welcome, ${username}.`);
    assert.equal(
      await visitor.text("session-factors"),
      "Multi-factor session (assurance level 2): signed in with a passkey.",
    );
  });

  // The passkey then is the second factor after the password: authd's
  // mfa_required names "passkey", and "Use a passkey" gives it.
  it("sets a password, and signs in with it and the passkey as the second step", async () => {
    const { visitor } = device;
    await visitor.page.getByTestId("set-password-new").fill(password);
    await visitor.press("set-password");
    assert.deepEqual(await visitor.said("set-password"), {
      words: "Password set: your username and password sign you in too, with your passkey as the second step.",
      reason: null,
      outcome: "success",
    });
    const field = visitor.page.getByTestId("set-password-new");
    await field.fill("another password entirely");
    await visitor.press("set-password");
    assert.deepEqual(await visitor.fieldState(field), {
      invalid: "true",
      words: 'This account has a password already: change it under "Change password".',
      reason: "PASSWORD_ALREADY_SET",
      focused: true,
    });

    await signOut(device);
    await holdingCredentials(device, () => visitor.logIn(username, password));
    assert.equal(await visitor.text("session"), "Not signed in");
    assert.deepEqual(await visitor.context.cookies(), [], "no cookie before the second step");
    assert.deepEqual(await visitor.said("session"), {
      words: "Password accepted. Now your passkey.",
      reason: null,
      outcome: "success",
    });
    assert.equal(await visitor.page.getByTestId("second-factor-code").isVisible(), false, "no code to give");
    screenshots.push(await visitor.screenshot("passwordless-02-second-step"));
    await visitor.press("second-factor-passkey");
    assert.equal(await visitor.text("session"), `Signed in as ${username}`);
    assert.equal(
      await visitor.text("session-factors"),
      "Multi-factor session (assurance level 2): signed in with password and a passkey.",
    );
    const { amr } = await visitor.page.evaluate(async (accessToken) => {
      const response = await fetch("/verify", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ access_token: accessToken }),
      });
      return response.json();
    }, await visitor.page.getByTestId("token").textContent());
    assert.ok(amr.includes("pwd") && (amr.includes("hwk") || amr.includes("swk")), `amr ${amr}`);
  });

  it("refuses a passkey sign-up for a name in use", async () => {
    const other = await open();
    await signUpWithPasskey(other.visitor, username);
    assert.deepEqual(await other.visitor.fieldState(other.visitor.form("Create an account").getByLabel("Username", { exact: true })), {
      invalid: "true",
      words: "This username is taken: choose another.",
      reason: "USERNAME_TAKEN",
      focused: true,
    });
    assert.equal(await other.visitor.text("session"), "Not signed in");
    const { credentials } = await other.cdp.send("WebAuthn.getCredentials", { authenticatorId: other.authenticatorId });
    assert.deepEqual(credentials, [], "no passkey made for a name authd refused");
    await other.visitor.context.close();
  });

  // A session that signed in with a password alone, before the account
  // had a passkey, has not passed the account's second factor: removing a
  // passkey then needs a proof, and without a code typed the page answers
  // authd's REAUTHENTICATION_REQUIRED with a passkey
  // (StartPasskeyReauthentication, then the removal with the assertion).
  it("removes a passkey with a passkey step-up for a session that signed in with a password alone", async () => {
    const frank = await open();
    const { visitor } = frank;
    const stepUps = watchStepUps(visitor);
    await visitor.register("frank", password);
    await visitor.page.getByTestId("passkey-name").fill("Laptop");
    await visitor.press("add-passkey");
    assert.deepEqual(await listedPasskeys(visitor), ["Laptop"]);
    assert.equal(
      await visitor.text("session-factors"),
      "Single-factor session (assurance level 1): signed in with password.",
    );

    await visitor.click(passkeyItem(visitor, 0).getByRole("button", { name: "Remove" }));
    assert.deepEqual(await visitor.said("passkeys"), {
      words: 'Removed the passkey "Laptop": it signs in no more.',
      reason: null,
      outcome: "success",
    });
    assert.equal(stepUps.length, 1, "one passkey step-up");
    assert.deepEqual(await listedPasskeys(visitor), []);
    await visitor.context.close();
  });

  // An account without a password keeps its last passkey: its only way in.
  it("removes one of two passkeys of an account without a password, and refuses to remove the last", async () => {
    const erin = await open();
    const { visitor, cdp } = erin;
    const stepUps = watchStepUps(visitor);
    await signUpWithPasskey(visitor, "erin");
    // A second device, its own passkey.
    await cdp.send("WebAuthn.removeVirtualAuthenticator", { authenticatorId: erin.authenticatorId });
    await addAuthenticator(cdp);
    await visitor.page.getByTestId("passkey-name").fill("Phone");
    await visitor.press("add-passkey");
    assert.deepEqual(await listedPasskeys(visitor), ["Passkey", "Phone"]);

    // The sign-up session passed two factors just now: no step-up asked.
    await visitor.click(passkeyItem(visitor, 0).getByRole("button", { name: "Remove" }));
    assert.equal((await visitor.said("passkeys")).words, 'Removed the passkey "Passkey": it signs in no more.');
    await visitor.click(passkeyItem(visitor, 0).getByRole("button", { name: "Remove" }));
    assert.deepEqual(await visitor.said("passkeys"), {
      words: "This is the account's only passkey and it has no password: removing it would lock you out.",
      reason: "LAST_SIGN_IN_METHOD",
      outcome: "error",
    });
    assert.deepEqual(stepUps, []);
    assert.deepEqual(await listedPasskeys(visitor), ["Phone"]);
    assert.equal(await visitor.text("session"), "Signed in as erin", "still signed in");
    screenshots.push(await visitor.screenshot("passwordless-03-last-passkey"));
    await visitor.context.close();
  });

  it("loaded nothing from elsewhere and threw nothing", () => {
    assert.deepEqual(foreignRequests, []);
    assert.deepEqual(pageErrors, []);
  });
});
