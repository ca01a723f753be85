// Password reset by mail through the client against a real authd that sends
// its mail to a real SMTP server (test/mail.mjs): the link read from the
// mail that arrived, its token setting the new password and starting a
// session over gRPC, REST and the session helper; the same answer for a
// name without an account; a wrong or used token; the second factor an
// account with TOTP or a passkey must add (MFA_REQUIRED, then a code or an
// assertion); and the refusals as AuthdErrors with the same reason and code
// on both surfaces, also from an authd without mail.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { AuthdError, Code, createNodeClient, createRestClient } from "@authd/client/node";
import { createSession } from "@authd/client/browser";
import { PASSWORD, TestAuthd, cookieJar, uniqueName } from "./authd.mjs";
import { resetLink, startMailServer, tokenOf, verificationLink } from "./mail.mjs";
import { totpCodes } from "./totp.mjs";
import { SoftPasskey } from "./webauthn.mjs";

const NEW_PASSWORD = "another horse battery staple";
const RESET_SUBJECT = "Reset your password";
const NOTICE_SUBJECT = "Security notice: your password was reset";

let mail;
let authd;
let client;
let rest;

before(async () => {
  mail = await startMailServer();
  authd = await TestAuthd.start({
    args: ["--smtp-url", mail.url, "--mail-from", "authd <no-reply@example.com>", "--mail-poll-interval", "100ms"],
  });
  client = createNodeClient({ baseUrl: authd.url });
  rest = createRestClient({ baseUrl: authd.url });
});

after(async () => {
  await authd?.stop();
  await mail?.stop();
});

async function refusal(promise) {
  const error = await promise.then(
    () => assert.fail("the call was accepted"),
    (thrown) => thrown,
  );
  assert.ok(error instanceof AuthdError, `an AuthdError, not ${error}`);
  return error;
}

// A new account whose address is verified (a reset mail goes to verified
// addresses only), signed in once.
async function accountWithVerifiedAddress(prefix) {
  const username = uniqueName(prefix);
  const address = `${username}@example.com`;
  const registered = await rest.register({ username, password: PASSWORD, email: address });
  const verification = await mail.waitFor(address, { subject: "Verify your email address" });
  await rest.verifyEmail(tokenOf(verificationLink(verification)));
  return { username, address, registered };
}

// The token of the `count`th reset mail to `address`, after checking it is
// one: to the address, with authd's subject, and a link to the page's route
// on authd's own origin (no --public-url here) in both bodies.
async function mailedResetToken(address, count = 1) {
  const received = await mail.waitFor(address, { count, subject: RESET_SUBJECT });
  assert.equal(received.to, address);
  const link = resetLink(received);
  assert.ok(link?.startsWith(`${authd.url}/#/reset-password?token=authd_pr_`), `a link in ${received.text}`);
  assert.ok(received.html.includes(`href="${link}"`), "the HTML body links the same");
  return tokenOf(link);
}

// TOTP on for an account, from its session; the codes to come.
async function withTotp(accessToken) {
  const enrollment = await rest.startTotpEnrollment({ accessToken });
  const codes = totpCodes(enrollment.secret);
  const recoveryCodes = await rest.confirmTotpEnrollment(await codes.next(), { accessToken });
  return { codes, recoveryCodes };
}

describe("password reset over gRPC", () => {
  it("mails a link to the verified address, whose token sets the new password and starts the only session", async () => {
    const { username, address, registered } = await accountWithVerifiedAddress("grpc-reset");
    assert.deepEqual(await client.auth.requestPasswordReset({ usernameOrEmail: username }), {
      $typeName: "auth.v1.RequestPasswordResetResponse",
    });
    const token = await mailedResetToken(address);

    const reset = await client.auth.resetPassword({ token, newPassword: NEW_PASSWORD });
    assert.equal(reset.user?.username, username);
    assert.equal(reset.tokenType, "Bearer");
    assert.notEqual(reset.sessionId, registered.sessionId);
    assert.equal(reset.recoveryCodesLeft, undefined);
    const { amr } = await client.auth.verify({ accessToken: reset.accessToken });
    assert.deepEqual(amr, ["pwd"]);

    // Every earlier session ended; the new password signs in, the old one not.
    const ended = await refusal(client.auth.refresh({ refreshToken: registered.refreshToken }));
    assert.equal(ended.code, Code.Unauthenticated);
    const old = await refusal(client.auth.login({ username, password: PASSWORD }));
    assert.equal(old.reason, "INVALID_CREDENTIALS");
    const signedIn = await client.auth.login({ username, password: NEW_PASSWORD });
    assert.equal(signedIn.mfaRequired, undefined);
    assert.ok(signedIn.accessToken);

    const notice = await mail.waitFor(address, { subject: NOTICE_SUBJECT });
    assert.ok(!notice.text.includes(token) && !notice.text.includes(NEW_PASSWORD), "the notice holds no secret");

    const used = await refusal(client.auth.resetPassword({ token, newPassword: "yet another horse battery" }));
    assert.equal(used.reason, "PASSWORD_RESET_TOKEN_INVALID");
    assert.equal(used.code, Code.InvalidArgument);
    assert.deepEqual(used.fieldViolations.map(({ field }) => field), ["token"]);
  });

  it("answers an unknown name and an unknown address the same as an account's name", async () => {
    const { username } = await accountWithVerifiedAddress("grpc-same");
    const answers = [];
    for (const usernameOrEmail of [username, uniqueName("nobody"), `${uniqueName("nobody")}@example.com`]) {
      answers.push(await client.auth.requestPasswordReset({ usernameOrEmail }));
    }
    assert.deepEqual(answers[1], answers[0]);
    assert.deepEqual(answers[2], answers[0]);
  });

  it("asks an account with TOTP for a code (MFA_REQUIRED), keeps the token, and resets with a code", async () => {
    const { username, address, registered } = await accountWithVerifiedAddress("grpc-totp");
    const { codes } = await withTotp(registered.accessToken);
    await client.auth.requestPasswordReset({ usernameOrEmail: address });
    const token = await mailedResetToken(address);

    const required = await refusal(client.auth.resetPassword({ token, newPassword: NEW_PASSWORD }));
    assert.equal(required.reason, "MFA_REQUIRED");
    assert.equal(required.code, Code.FailedPrecondition);
    const wrong = await refusal(
      client.auth.resetPassword({ token, newPassword: NEW_PASSWORD, second: { case: "totpCode", value: codes.wrong() } }),
    );
    assert.equal(wrong.reason, "MFA_CODE_INVALID");
    assert.equal(wrong.code, Code.InvalidArgument);

    const reset = await client.auth.resetPassword({
      token,
      newPassword: NEW_PASSWORD,
      second: { case: "totpCode", value: await codes.next() },
    });
    assert.equal(reset.user?.username, username);
    const { amr } = await client.auth.verify({ accessToken: reset.accessToken });
    assert.ok(amr.includes("pwd") && amr.includes("otp"), `amr ${amr}`);
    // TOTP stays on: the new password alone asks for the second step.
    const login = await client.auth.login({ username, password: NEW_PASSWORD });
    assert.ok(login.mfaRequired?.ticket);
  });
});

describe("password reset over REST", () => {
  it("answers 202 and the same bytes whether or not the name has an account", async () => {
    const { username } = await accountWithVerifiedAddress("rest-same");
    const bodies = [];
    for (const usernameOrEmail of [username, uniqueName("nobody")]) {
      const response = await fetch(`${authd.url}/user/password/reset`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ username_or_email: usernameOrEmail }),
      });
      assert.equal(response.status, 202);
      bodies.push(await response.text());
    }
    assert.deepEqual(bodies, ["{}", "{}"]);
    assert.equal(await rest.requestPasswordReset(uniqueName("nobody")), undefined);
  });

  it("refuses a wrong token and a used one as gRPC does, on the token field", async () => {
    const { address } = await accountWithVerifiedAddress("rest-token");
    await rest.requestPasswordReset(address);
    const token = await mailedResetToken(address);
    const reset = await rest.resetPassword(token, NEW_PASSWORD);
    assert.equal(reset.user.email, address);
    assert.equal(reset.user.emailVerified, true);

    for (const tried of [token, "authd_pr_not-a-token", `${token.slice(0, -1)}x`]) {
      const refused = await refusal(rest.resetPassword(tried, "yet another horse battery"));
      assert.equal(refused.reason, "PASSWORD_RESET_TOKEN_INVALID");
      assert.equal(refused.code, Code.InvalidArgument);
      assert.equal(refused.httpStatus, 400);
      assert.deepEqual(refused.fieldViolations.map(({ field }) => field), ["token"]);
    }
  });

  it("refuses a common password on new_password and keeps the token", async () => {
    const { address } = await accountWithVerifiedAddress("rest-rules");
    await rest.requestPasswordReset(address);
    const token = await mailedResetToken(address);
    const common = await refusal(rest.resetPassword(token, "password123"));
    assert.equal(common.code, Code.InvalidArgument);
    assert.deepEqual(common.fieldViolations.map(({ field, reason }) => [field, reason]), [
      ["new_password", "PASSWORD_TOO_COMMON"],
    ]);
    await rest.resetPassword(token, NEW_PASSWORD);
  });

  it("asks an account with TOTP for a code with MFA_REQUIRED (403, FAILED_PRECONDITION), then takes a recovery code", async () => {
    const { address, registered } = await accountWithVerifiedAddress("rest-totp");
    const { recoveryCodes } = await withTotp(registered.accessToken);
    await rest.requestPasswordReset(address);
    const token = await mailedResetToken(address);

    const required = await refusal(rest.resetPassword(token, NEW_PASSWORD));
    assert.deepEqual([required.reason, required.code, required.httpStatus], ["MFA_REQUIRED", Code.FailedPrecondition, 403]);

    const reset = await rest.resetPassword(token, NEW_PASSWORD, { recoveryCode: recoveryCodes[0] });
    assert.equal(reset.recoveryCodesLeft, recoveryCodes.length - 1);
  });

  it("resets an account whose second factor is a passkey with an assertion of the token's challenge", async () => {
    const { username, address, registered } = await accountWithVerifiedAddress("rest-pk");
    const accessToken = registered.accessToken;
    const passkey = new SoftPasskey(`http://localhost:${new URL(authd.url).port}`);
    const started = await rest.startPasskeyRegistration({ accessToken });
    await rest.finishPasskeyRegistration(
      { ceremonyId: started.ceremonyId, credentialJson: passkey.register(started.optionsJson) },
      { accessToken },
    );
    await rest.requestPasswordReset(username);
    const token = await mailedResetToken(address);

    const required = await refusal(rest.resetPassword(token, NEW_PASSWORD));
    assert.equal(required.reason, "MFA_REQUIRED");
    const optionsJson = await rest.startPasskeyPasswordReset(token);
    const reset = await rest.resetPassword(token, NEW_PASSWORD, { passkeyCredentialJson: passkey.assert(optionsJson) });
    assert.equal(reset.user.username, username);
    const { amr } = await rest.verify(reset.accessToken);
    assert.ok(amr.includes("pwd") && amr.includes("mfa"), `amr ${amr}`);
  });

  it("answers PASSKEY_NOT_FOUND for a passkey challenge of an account without one", async () => {
    const { address } = await accountWithVerifiedAddress("rest-nopk");
    await rest.requestPasswordReset(address);
    const token = await mailedResetToken(address);
    const none = await refusal(rest.startPasskeyPasswordReset(token));
    assert.deepEqual([none.reason, none.httpStatus], ["PASSKEY_NOT_FOUND", 404]);
    const grpcNone = await refusal(client.auth.startPasskeyPasswordReset({ token }));
    assert.deepEqual([grpcNone.reason, grpcNone.code], ["PASSKEY_NOT_FOUND", Code.NotFound]);
  });
});

describe("password reset through the session helper", () => {
  it("signs in as after a login: the new session is held, and the refresh cookie renews it", async () => {
    const { username, address } = await accountWithVerifiedAddress("helper-reset");
    const jar = { ...cookieJar(), name: uniqueName("tabs") };
    const session = createSession({ baseUrl: authd.url, fetch: jar.fetch, name: jar.name });
    try {
      await session.requestPasswordReset(username);
      const token = await mailedResetToken(address);
      const state = await session.resetPassword(token, NEW_PASSWORD);
      assert.equal(state.user.username, username);
      assert.equal(state.recoveryCodesLeft, undefined);
      assert.equal(session.current?.sessionId, state.sessionId);
      assert.ok(jar.cookies.has("authd_refresh"), "the refresh token is in its cookie");
      const renewed = await session.refresh();
      assert.equal(renewed.sessionId, state.sessionId);
      const { user } = await client.auth.verify({ accessToken: renewed.accessToken });
      assert.equal(user?.username, username);
    } finally {
      session.close();
    }
  });

  it("stays signed out on MFA_REQUIRED, and signs in with the code", async () => {
    const { address, registered } = await accountWithVerifiedAddress("helper-totp");
    const { codes } = await withTotp(registered.accessToken);
    const jar = { ...cookieJar(), name: uniqueName("tabs") };
    const session = createSession({ baseUrl: authd.url, fetch: jar.fetch, name: jar.name });
    try {
      await session.requestPasswordReset(address);
      const token = await mailedResetToken(address);
      const required = await refusal(session.resetPassword(token, NEW_PASSWORD));
      assert.equal(required.reason, "MFA_REQUIRED");
      assert.equal(session.current, undefined);
      const state = await session.resetPassword(token, NEW_PASSWORD, { totpCode: await codes.next() });
      assert.equal(session.current?.sessionId, state.sessionId);
    } finally {
      session.close();
    }
  });
});

describe("password reset on an authd without mail", () => {
  let quiet;

  before(async () => {
    quiet = await TestAuthd.start();
  });

  after(() => quiet?.stop());

  it("answers MAIL_NOT_CONFIGURED to the three calls on both surfaces", async () => {
    const grpc = createNodeClient({ baseUrl: quiet.url });
    const quietRest = createRestClient({ baseUrl: quiet.url });
    for (const call of [
      () => grpc.auth.requestPasswordReset({ usernameOrEmail: "ada" }),
      () => grpc.auth.resetPassword({ token: "authd_pr_x", newPassword: NEW_PASSWORD }),
      () => grpc.auth.startPasskeyPasswordReset({ token: "authd_pr_x" }),
    ]) {
      const error = await refusal(call());
      assert.equal(error.reason, "MAIL_NOT_CONFIGURED");
      assert.equal(error.code, Code.FailedPrecondition);
    }
    for (const call of [
      () => quietRest.requestPasswordReset("ada"),
      () => quietRest.resetPassword("authd_pr_x", NEW_PASSWORD),
      () => quietRest.startPasskeyPasswordReset("authd_pr_x"),
    ]) {
      const error = await refusal(call());
      assert.equal(error.reason, "MAIL_NOT_CONFIGURED");
      assert.equal(error.code, Code.FailedPrecondition);
      assert.equal(error.httpStatus, 409);
    }
  });
});
