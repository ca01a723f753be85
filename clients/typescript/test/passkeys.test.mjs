// Passkeys through the REST client and the session helper against a real
// authd (with its default relying party: RP id `localhost`, origin
// `http://localhost:PORT`), the browser's part played by a software passkey
// (test/webauthn.mjs): registering one after a fresh sign-in, listing,
// renaming and removing it, signing in with it by username and through a
// discoverable request, and each refusal as an AuthdError with its reason.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { AuthdError, createRestClient } from "@authd/client/node";
import { createSession } from "@authd/client/browser";
import { PASSWORD, TestAuthd, cookieJar, uniqueName } from "./authd.mjs";
import { SoftPasskey } from "./webauthn.mjs";

let authd;
let rest;
let origin;

before(async () => {
  authd = await TestAuthd.start();
  rest = createRestClient({ baseUrl: authd.url });
  origin = `http://localhost:${new URL(authd.url).port}`;
});

after(() => authd.stop());

async function refusal(promise) {
  const error = await promise.then(
    () => assert.fail("the call was accepted"),
    (thrown) => thrown,
  );
  assert.ok(error instanceof AuthdError, `an AuthdError, not ${error}`);
  return error;
}

// A new account (password) whose fresh session registers a passkey.
async function accountWithPasskey(name) {
  const username = uniqueName("pk");
  const { accessToken } = await rest.register({ username, password: PASSWORD });
  const passkey = new SoftPasskey(origin);
  const started = await rest.startPasskeyRegistration({ accessToken });
  const registered = await rest.finishPasskeyRegistration(
    { ceremonyId: started.ceremonyId, credentialJson: passkey.register(started.optionsJson), name },
    { accessToken },
  );
  return { username, accessToken, passkey, registered };
}

describe("passkeys over REST", () => {
  it("registers a passkey after a fresh sign-in, lists, renames and removes it", async () => {
    const { accessToken, passkey, registered } = await accountWithPasskey(" Laptop ");
    assert.equal(registered.name, "Laptop");
    assert.ok(registered.createdAt instanceof Date);
    assert.equal(registered.lastUsedAt, undefined);
    assert.equal(typeof registered.backedUp, "boolean");
    assert.deepEqual(
      (await rest.listPasskeys({ accessToken })).map(({ id, name }) => ({ id, name })),
      [{ id: registered.id, name: "Laptop" }],
    );

    await rest.renamePasskey(registered.id, "Phone", { accessToken });
    assert.deepEqual((await rest.listPasskeys({ accessToken })).map(({ name }) => name), ["Phone"]);

    // With a passkey, the account has a second factor: a password session
    // proves it for the step-up, here with the passkey itself.
    const unproved = await refusal(rest.removePasskey(registered.id, undefined, { accessToken }));
    assert.deepEqual([unproved.reason, unproved.httpStatus], ["REAUTHENTICATION_REQUIRED", 401]);
    const optionsJson = await rest.startPasskeyReauthentication({ accessToken });
    await rest.removePasskey(registered.id, { passkeyCredentialJson: passkey.assert(optionsJson) }, { accessToken });
    assert.deepEqual(await rest.listPasskeys({ accessToken }), []);
    const gone = await refusal(rest.removePasskey(registered.id, undefined, { accessToken }));
    assert.deepEqual([gone.reason, gone.httpStatus], ["PASSKEY_NOT_FOUND", 404]);
  });

  it("signs in by username and through a discoverable request, as multi-factor, and marks the passkey used", async () => {
    const { username, accessToken, passkey, registered } = await accountWithPasskey();
    assert.equal(registered.name, "Passkey");

    const byName = await rest.startPasskeyLogin(username);
    const signedIn = await rest.finishPasskeyLogin({
      ceremonyId: byName.ceremonyId,
      credentialJson: passkey.assert(byName.optionsJson),
    });
    assert.equal(signedIn.user.username, username);
    const info = await rest.verify(signedIn.accessToken);
    assert.ok(info.amr.includes("user") && info.amr.includes("mfa"), `amr ${info.amr}`);
    assert.ok(info.amr.includes("hwk") || info.amr.includes("swk"), `amr ${info.amr}`);
    assert.equal(info.assuranceLevel, 2);

    const discoverable = await rest.startPasskeyLogin();
    // Names no credential: the browser offers whichever it holds for the RP.
    assert.deepEqual(JSON.parse(discoverable.optionsJson).allowCredentials ?? [], []);
    const again = await rest.finishPasskeyLogin({
      ceremonyId: discoverable.ceremonyId,
      credentialJson: passkey.assert(discoverable.optionsJson),
    });
    assert.equal(again.user.username, username);
    assert.notEqual(again.sessionId, signedIn.sessionId);
    const [listed] = await rest.listPasskeys({ accessToken });
    assert.ok(listed.lastUsedAt instanceof Date, "last_used_at is set by a sign-in");
  });

  it("refuses a sign-in without user verification, a ceremony used twice, and an assertion from another origin", async () => {
    const { username, passkey } = await accountWithPasskey();

    const unverified = await rest.startPasskeyLogin(username);
    const noUv = await refusal(
      rest.finishPasskeyLogin({
        ceremonyId: unverified.ceremonyId,
        credentialJson: passkey.assert(unverified.optionsJson, { userVerified: false }),
      }),
    );
    assert.deepEqual([noUv.reason, noUv.httpStatus], ["USER_VERIFICATION_REQUIRED", 401]);

    const once = await rest.startPasskeyLogin(username);
    await rest.finishPasskeyLogin({ ceremonyId: once.ceremonyId, credentialJson: passkey.assert(once.optionsJson) });
    const twice = await refusal(
      rest.finishPasskeyLogin({ ceremonyId: once.ceremonyId, credentialJson: passkey.assert(once.optionsJson) }),
    );
    assert.deepEqual([twice.reason, twice.httpStatus], ["PASSKEY_CEREMONY_INVALID", 409]);

    // The same key, used by a page on an origin authd does not serve: what
    // a phishing site relaying the challenge would send.
    const phished = await rest.startPasskeyLogin(username);
    passkey.origin = "http://localhost:1";
    const elsewhere = await refusal(
      rest.finishPasskeyLogin({ ceremonyId: phished.ceremonyId, credentialJson: passkey.assert(phished.optionsJson) }),
    );
    assert.deepEqual([elsewhere.reason, elsewhere.httpStatus], ["PASSKEY_VERIFICATION_FAILED", 401]);
  });

  it("refuses a credential registered already, a name too long, and a renamed passkey of another account", async () => {
    const first = await accountWithPasskey();
    const other = await accountWithPasskey();

    const started = await rest.startPasskeyRegistration({ accessToken: other.accessToken });
    const taken = await refusal(
      rest.finishPasskeyRegistration(
        { ceremonyId: started.ceremonyId, credentialJson: first.passkey.register(started.optionsJson) },
        { accessToken: other.accessToken },
      ),
    );
    assert.deepEqual([taken.reason, taken.httpStatus], ["PASSKEY_ALREADY_REGISTERED", 409]);

    const long = await refusal(rest.renamePasskey(first.registered.id, "x".repeat(65), { accessToken: first.accessToken }));
    assert.equal(long.httpStatus, 400);
    assert.deepEqual(
      long.fieldViolations.map(({ field, reason }) => [field, reason]),
      [["name", "INVALID_PASSKEY_NAME"]],
    );

    const notTheirs = await refusal(
      rest.renamePasskey(first.registered.id, "Mine now", { accessToken: other.accessToken }),
    );
    assert.deepEqual([notTheirs.reason, notTheirs.httpStatus], ["PASSKEY_NOT_FOUND", 404]);
  });
});

describe("the session helper with a passkey", () => {
  it("starts a session from a passkey sign-in, with both cookies, and renews it through the refresh cookie", async () => {
    const { username, passkey } = await accountWithPasskey();
    const jar = cookieJar();
    const session = createSession({ baseUrl: authd.url, fetch: jar.fetch, name: uniqueName("tabs") });
    try {
      const started = await session.startPasskeyLogin();
      const state = await session.finishPasskeyLogin(started.ceremonyId, passkey.assert(started.optionsJson));
      assert.equal(state.user.username, username);
      assert.equal(session.current?.accessToken, state.accessToken);
      assert.deepEqual([...jar.cookies.keys()].sort(), ["authd_refresh", "authd_token"]);

      const renewed = await session.refresh();
      assert.equal(renewed.sessionId, state.sessionId);
      assert.notEqual(renewed.accessToken, state.accessToken);
    } finally {
      session.close();
    }
  });

  it("stays signed in when a passkey it adds is refused", async () => {
    const jar = cookieJar();
    const session = createSession({ baseUrl: authd.url, fetch: jar.fetch, name: uniqueName("tabs") });
    try {
      const state = await session.register(uniqueName("pk"), PASSWORD);
      const unverified = await refusal(
        session.withToken(async (accessToken) => {
          const started = await rest.startPasskeyRegistration({ accessToken });
          const credentialJson = new SoftPasskey(origin).register(started.optionsJson, { userVerified: false });
          return rest.finishPasskeyRegistration({ ceremonyId: started.ceremonyId, credentialJson }, { accessToken });
        }),
      );
      assert.deepEqual([unverified.reason, unverified.httpStatus], ["USER_VERIFICATION_REQUIRED", 401]);
      assert.equal(session.current?.accessToken, state.accessToken, "still signed in, same token");
    } finally {
      session.close();
    }
  });
});

describe("an account with a passkey only", () => {
  it("signs up with a passkey, refuses a taken name, takes a password, and proves a step-up with a passkey", async () => {
    const username = uniqueName("pk");
    const passkey = new SoftPasskey(origin);
    const jar = cookieJar();
    const session = createSession({ baseUrl: authd.url, fetch: jar.fetch, name: uniqueName("tabs") });
    try {
      const started = await session.startPasskeySignup(username);
      const state = await session.registerWithPasskey(started.ceremonyId, passkey.register(started.optionsJson), "Laptop");
      assert.equal(state.user.username, username);
      assert.deepEqual([...jar.cookies.keys()].sort(), ["authd_refresh", "authd_token"]);
      const info = await rest.verify(state.accessToken);
      assert.equal(info.assuranceLevel, 2);

      const taken = await refusal(rest.startPasskeySignup(username));
      assert.equal(taken.httpStatus, 409);
      assert.equal(taken.reason, "USERNAME_TAKEN");
      const noPassword = await refusal(rest.login({ username, password: PASSWORD }));
      assert.deepEqual([noPassword.reason, noPassword.httpStatus], ["INVALID_CREDENTIALS", 401]);

      const { accessToken } = state;
      const [only] = await rest.listPasskeys({ accessToken });
      assert.equal(only.name, "Laptop");
      const optionsJson = await rest.startPasskeyReauthentication({ accessToken });
      const last = await refusal(
        rest.removePasskey(only.id, { passkeyCredentialJson: passkey.assert(optionsJson) }, { accessToken }),
      );
      assert.deepEqual([last.reason, last.httpStatus], ["LAST_SIGN_IN_METHOD", 409]);

      await rest.setPassword(PASSWORD, { accessToken });
      const again = await refusal(rest.setPassword(PASSWORD, { accessToken }));
      assert.deepEqual([again.reason, again.httpStatus], ["PASSWORD_ALREADY_SET", 409]);
      const signedIn = await rest.login({ username, password: PASSWORD });
      assert.deepEqual(signedIn.mfaRequired.methods, ["passkey"]);
      const completed = await rest.completeLogin(signedIn.mfaRequired.ticket, {
        passkeyCredentialJson: passkey.assert(signedIn.mfaRequired.passkeyOptionsJson),
      });
      assert.equal(completed.user.username, username);
    } finally {
      session.close();
    }
  });
});
