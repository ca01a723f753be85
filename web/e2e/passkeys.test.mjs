// Passkeys on the demo page in Debian's headless Chromium against a real
// authd, with Chromium's virtual authenticator (the DevTools protocol's
// WebAuthn domain: CTAP2, internal transport, resident keys, user
// verification, presence simulated) standing in for the device's platform
// authenticator. The page is opened on http://localhost:PORT: authd's
// default relying party is RP id `localhost` with origin
// http://localhost:PORT for the port it listens on, and a page must be on
// its RP id (127.0.0.1 is not a registrable suffix of it).
//
// The autofill: the page keeps a conditional request (`mediation:
// "conditional"`) open while signed out. Chromium's virtual environment
// answers such a request at once with a discoverable credential of the RP,
// as if the person had focused the username field and picked the passkey
// from its drop-down, which headless Chromium does not draw; with none, it
// refuses the request at once. So the test signs out with the
// authenticator's credentials held back (the page's request is refused:
// nothing to offer), gives them back, and the page's next request, on
// load, is answered by the pick.
//
// The account is made with a password here, then given passkeys, which
// then also serve as its second factor after the password; passkey
// sign-up is passwordless.test.mjs's.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
// The RFC 6238 codes @authd/client's own tests compute (node:crypto only).
import { totpCodes } from "../../clients/typescript/test/totp.mjs";
import { Visitor, launchChromium, screenshotDir, startAuthd, stopAuthd } from "./support.mjs";

const username = "carol";
const password = "correct horse battery";

// The virtual authenticator of a device with a platform authenticator that
// verifies its user (as a phone or laptop with a fingerprint reader).
const PLATFORM_AUTHENTICATOR = {
  protocol: "ctap2",
  transport: "internal",
  hasResidentKey: true,
  hasUserVerification: true,
  isUserVerified: true,
  automaticPresenceSimulation: true,
};

// The same authd's page on http://localhost:PORT.
function onLocalhost(origin) {
  const url = new URL(origin);
  url.hostname = "localhost";
  return url.origin;
}

describe("passkeys on the demo page", { timeout: 180_000 }, () => {
  let dataDir;
  let authd;
  let browser;
  let visitor;
  let cdp;
  let laptop;
  let phone;
  let pageOrigin;
  // The bodies of the page's POST /login/passkey/start, in order.
  const passkeyStarts = [];
  const foreignRequests = [];
  const pageErrors = [];
  const screenshots = [];

  async function screenshot(name, options) {
    screenshots.push(await visitor.screenshot(name, options));
  }

  // A new browser context on `origin`, with requests anywhere else refused,
  // and a DevTools session with the WebAuthn domain on and a platform
  // authenticator, there before the page loads (and asks for autofill).
  async function open(origin) {
    const context = await browser.newContext();
    await context.route(
      (url) => url.origin !== origin,
      (route) => {
        foreignRequests.push(route.request().url());
        return route.abort("blockedbyclient");
      },
    );
    const page = await context.newPage();
    page.setDefaultTimeout(10_000);
    page.on("pageerror", (error) => pageErrors.push(error));
    page.on("request", (request) => {
      if (new URL(request.url()).pathname === "/login/passkey/start") {
        passkeyStarts.push(request.postData());
      }
    });
    const session = await context.newCDPSession(page);
    await session.send("WebAuthn.enable");
    const authenticatorId = await addAuthenticator(session);
    await page.goto(origin);
    const opened = new Visitor(context, page);
    await opened.idle();
    return { visitor: opened, cdp: session, authenticatorId };
  }

  async function addAuthenticator(session) {
    const { authenticatorId } = await session.send("WebAuthn.addVirtualAuthenticator", {
      options: PLATFORM_AUTHENTICATOR,
    });
    return authenticatorId;
  }

  async function credentials(authenticatorId) {
    return (await cdp.send("WebAuthn.getCredentials", { authenticatorId })).credentials;
  }

  // The names of the passkeys the page lists, in its order.
  function listedPasskeys() {
    return visitor.page
      .getByTestId("passkey-list")
      .getByRole("listitem")
      .evaluateAll((items) => items.map((item) => item.querySelector("input").value));
  }

  // The passkey listed `index`th (from 0), oldest first.
  function passkeyItem(index) {
    return visitor.page.getByTestId("passkey-list").getByRole("listitem").nth(index);
  }

  async function signInWithPasskeyButton(name = username) {
    await visitor.fill("Username", name, visitor.form("Sign in"));
    await visitor.press("passkey-sign-in");
  }

  // Runs `action` with the authenticator's credentials held back, so that
  // no autofill request the page makes meanwhile is answered (see above).
  async function holdingCredentials(authenticatorId, action) {
    const held = await credentials(authenticatorId);
    await cdp.send("WebAuthn.clearCredentials", { authenticatorId });
    await action();
    for (const credential of held) {
      await cdp.send("WebAuthn.addCredential", { authenticatorId, credential });
    }
  }

  // Signs out and stays so: the page's autofill request is refused.
  async function signOut(authenticatorId) {
    await holdingCredentials(authenticatorId, async () => {
      await visitor.press("log-out");
      await autofillOff();
    });
    assert.equal(await visitor.text("session"), "Not signed in");
  }

  function autofillOff(page = visitor.page) {
    return page.locator('form#sign-in[data-autofill="off"]').waitFor({ state: "attached" });
  }

  before(async () => {
    await mkdir(screenshotDir, { recursive: true });
    dataDir = await mkdtemp(join(tmpdir(), "authd-web-passkeys-"));
    authd = await startAuthd(dataDir);
    pageOrigin = onLocalhost(authd.origin);
    browser = await launchChromium();
    ({ visitor, cdp, authenticatorId: laptop } = await open(pageOrigin));
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
      console.log(`screenshots of the passkey states in ${screenshotDir}:\n  ${screenshots.join("\n  ")}`);
    }
  });

  it("offers passkeys in the username field's autofill", async () => {
    const field = visitor.form("Sign in").getByLabel("Username", { exact: true });
    assert.equal(await field.getAttribute("autocomplete"), "username webauthn");
    assert.equal(await visitor.page.evaluate(() => PublicKeyCredential.isConditionalMediationAvailable()), true);
    // On load, the page asked authd for a discoverable sign-in (no
    // username) and the browser for a pick; with no passkey yet, Chromium
    // refused the request.
    await autofillOff();
    assert.deepEqual(passkeyStarts, ["{}"]);
  });

  it("shows a password session as single-factor, then adds a passkey to the account", async () => {
    await visitor.register(username, password);
    assert.equal(await visitor.text("session"), `Signed in as ${username}`);
    assert.equal(
      await visitor.text("session-factors"),
      "Single-factor session (assurance level 1): signed in with password.",
    );
    assert.deepEqual(await listedPasskeys(), []);

    await visitor.page.getByTestId("passkey-name").fill("Laptop");
    await visitor.press("add-passkey");
    assert.deepEqual(await visitor.said("passkeys"), {
      words: 'Added the passkey "Laptop": it signs you in without your password.',
      reason: null,
      outcome: "success",
    });
    assert.deepEqual(await listedPasskeys(), ["Laptop"]);
    assert.match(await passkeyItem(0).locator("small").textContent(), /not used yet/);
    const [credential] = await credentials(laptop);
    assert.equal(credential.isResidentCredential, true, "a discoverable credential, for autofill");
    assert.equal(credential.rpId, "localhost");
    await screenshot("passkeys-01-added");
  });

  it("keeps the passkey across a reload, and signs in with it through the username field's autofill", async () => {
    await visitor.reload();
    assert.equal(await visitor.text("session"), `Signed in as ${username}`);
    assert.deepEqual(await listedPasskeys(), ["Laptop"]);
    await signOut(laptop);
    assert.deepEqual(await visitor.context.cookies(), []);

    // The next visit: the page's autofill request on load is answered with
    // the laptop's passkey, picked without a username or password typed.
    const starts = passkeyStarts.length;
    await visitor.page.reload();
    await visitor.page.getByTestId("session").filter({ hasText: `Signed in as ${username}` }).waitFor();
    await visitor.idle();
    assert.deepEqual(passkeyStarts.slice(starts), ["{}"], "one discoverable sign-in, no username");
    assert.equal((await visitor.said("session")).words, `Welcome, ${username}.`);
    assert.equal(
      await visitor.text("session-factors"),
      "Multi-factor session (assurance level 2): signed in with a passkey.",
    );
    assert.deepEqual((await visitor.context.cookies()).map(({ name }) => name).sort(), ["authd_refresh", "authd_token"]);
    assert.match(await passkeyItem(0).locator("small").textContent(), /last used /);
    await screenshot("passkeys-02-signed-in-with-passkey");
  });

  it("adds a second passkey from another device, renames one and removes the other", async () => {
    // The laptop is lost: the phone, a second device, gets its own passkey.
    await cdp.send("WebAuthn.removeVirtualAuthenticator", { authenticatorId: laptop });
    phone = await addAuthenticator(cdp);
    await visitor.page.getByTestId("passkey-name").fill("Phone");
    await visitor.press("add-passkey");
    assert.equal((await visitor.said("passkeys")).outcome, "success");
    assert.deepEqual(await listedPasskeys(), ["Laptop", "Phone"]);

    const name = visitor.page.getByLabel("Name of passkey 1", { exact: true });
    await name.fill("x".repeat(65));
    await visitor.click(passkeyItem(0).getByRole("button", { name: "Rename" }));
    assert.deepEqual(await visitor.fieldState(name), {
      invalid: "true",
      words: "Use at most 64 characters, without line breaks or other control characters.",
      reason: "INVALID_PASSKEY_NAME",
      focused: true,
    });
    await name.fill("Lost laptop");
    await visitor.click(passkeyItem(0).getByRole("button", { name: "Rename" }));
    assert.deepEqual(await visitor.said("passkeys"), {
      words: 'Renamed the passkey "Laptop" to "Lost laptop".',
      reason: null,
      outcome: "success",
    });
    assert.deepEqual(await listedPasskeys(), ["Lost laptop", "Phone"]);

    // A session from a passkey has just passed two factors: no step-up asked.
    await visitor.click(passkeyItem(0).getByRole("button", { name: "Remove" }));
    assert.deepEqual(await visitor.said("passkeys"), {
      words: 'Removed the passkey "Lost laptop": it signs in no more.',
      reason: null,
      outcome: "success",
    });
    assert.deepEqual(await listedPasskeys(), ["Phone"]);
    await screenshot("passkeys-03-managed");
  });

  it("signs in by username with the button", async () => {
    await signOut(phone);
    await signInWithPasskeyButton();
    assert.deepEqual(passkeyStarts.at(-1), JSON.stringify({ username }));
    assert.equal(await visitor.text("session"), `Signed in as ${username}`);
    assert.equal(
      await visitor.text("session-factors"),
      "Multi-factor session (assurance level 2): signed in with a passkey.",
    );
  });

  it("refuses a passkey whose authenticator did not verify the user, and says so", async () => {
    await signOut(phone);
    await cdp.send("WebAuthn.setResponseOverrideBits", { authenticatorId: phone, isBadUV: true });
    await signInWithPasskeyButton();
    assert.deepEqual(await visitor.said("sign-in"), {
      words: "Your device did not check it is you (PIN, fingerprint or face): a passkey signs in only with that check.",
      reason: "USER_VERIFICATION_REQUIRED",
      outcome: "error",
    });
    assert.equal(await visitor.text("session"), "Not signed in");
    assert.deepEqual(await visitor.context.cookies(), []);
    await screenshot("passkeys-04-no-user-verification");
  });

  it("refuses a passkey assertion with a bad signature", async () => {
    // isBogusSignature is the DevTools protocol's name: it zeroes the
    // assertion's signature.
    await cdp.send("WebAuthn.setResponseOverrideBits", { authenticatorId: phone, isBadUV: false, isBogusSignature: true });
    // The username is there from before: focusing it again would offer
    // the autofill, which the virtual environment answers at once.
    await visitor.press("passkey-sign-in");
    assert.deepEqual(await visitor.said("sign-in"), {
      words: "authd could not verify this passkey: it is not registered here, or not for this site.",
      reason: "PASSKEY_VERIFICATION_FAILED",
      outcome: "error",
    });
    assert.equal(await visitor.text("session"), "Not signed in");
    await cdp.send("WebAuthn.setResponseOverrideBits", { authenticatorId: phone, isBogusSignature: false });
  });

  // Two ways a passkey meets a page on an origin it is not for. The
  // browser's own check: authd's options name RP id `localhost`, which a
  // page on 127.0.0.1 may not use, so Chromium refuses before any
  // authenticator is asked (SecurityError), and nothing reaches authd.
  it("is refused by the browser on a page whose origin is not on the RP id", async () => {
    const elsewhere = await open(authd.origin);
    await autofillOff(elsewhere.visitor.page);
    await elsewhere.visitor.fill("Username", username, elsewhere.visitor.form("Sign in"));
    await elsewhere.visitor.press("passkey-sign-in");
    assert.deepEqual(await elsewhere.visitor.said("sign-in"), {
      words: "The browser refused: this page's address is not one authd's passkeys are for.",
      reason: null,
      outcome: "error",
    });
    assert.equal(await elsewhere.visitor.text("session"), "Not signed in");
    await elsewhere.visitor.context.close();
  });

  // authd's own check: an authd that accepts only this test's first page
  // origin serves the page on its own port, on the same RP id. The browser
  // signs (the RP id matches the page), but the credential names the
  // page's origin, which this authd does not accept: what a look-alike
  // site relaying authd's challenge would send.
  it("is refused by authd for a credential made on a page of an origin it does not accept", async () => {
    const otherDir = await mkdtemp(join(tmpdir(), "authd-web-passkeys-other-"));
    const other = await startAuthd(otherDir, ["--webauthn-rp-id", "localhost", "--webauthn-origin", pageOrigin]);
    try {
      const elsewhere = await open(onLocalhost(other.origin));
      await elsewhere.visitor.register(username, password);
      await elsewhere.visitor.press("add-passkey");
      assert.deepEqual(await elsewhere.visitor.said("passkeys"), {
        words: "authd could not verify this passkey: it is not registered here, or not for this site.",
        reason: "PASSKEY_VERIFICATION_FAILED",
        outcome: "error",
      });
      assert.equal(await elsewhere.visitor.text("session"), `Signed in as ${username}`, "still signed in");
      await elsewhere.visitor.screenshot("passkeys-05-other-origin").then((path) => screenshots.push(path));
      await elsewhere.visitor.context.close();
    } finally {
      await stopAuthd(other);
      await rm(otherDir, { recursive: true, force: true });
    }
  });

  // With a passkey, the account has a second factor: a password sign-in
  // asks for it (authd's mfa_required names "passkey"), and the page's
  // "Use a passkey" gives it. The session has then passed two factors, so
  // turning TOTP on and removing the passkey ask for no code.
  it("asks for the passkey after the password, and then removes it with TOTP on without a code", async () => {
    // Typing the username focuses the field, which offers the autofill
    // again after the refusals above: held back, it signs in nobody.
    await holdingCredentials(phone, () => visitor.logIn(username, password));
    assert.equal(await visitor.text("session"), "Not signed in");
    assert.equal((await visitor.said("session")).words, "Password accepted. Now your passkey.");
    assert.equal(await visitor.page.getByTestId("second-factor-code").isVisible(), false, "no code to give");
    await visitor.press("second-factor-passkey");
    assert.equal(await visitor.text("session"), `Signed in as ${username}`);
    assert.equal(
      await visitor.text("session-factors"),
      "Multi-factor session (assurance level 2): signed in with password and a passkey.",
    );

    await visitor.press("start-totp");
    const codes = totpCodes(await visitor.page.getByTestId("totp-secret").inputValue());
    await visitor.page.getByTestId("confirm-totp-code").fill(await codes.next());
    await visitor.press("confirm-totp");
    await visitor.press("recovery-codes-saved");
    await screenshot("passkeys-06-totp-on");

    await visitor.click(passkeyItem(0).getByRole("button", { name: "Remove" }));
    assert.equal((await visitor.said("passkeys")).words, 'Removed the passkey "Phone": it signs in no more.');
    assert.deepEqual(await listedPasskeys(), []);
  });

  it("loaded nothing from elsewhere and threw nothing", () => {
    assert.deepEqual(foreignRequests, []);
    assert.deepEqual(pageErrors, []);
  });
});
