// The second factor through the client against a real authd: TOTP enrolled
// with a code computed from the secret authd gave (test/totp.mjs), a Login
// that answers mfaRequired and is completed with a TOTP code or a recovery
// code, over gRPC, REST and the browser session helper; the new refusals as
// AuthdErrors with the same reason and code on both surfaces.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  AuthdError,
  Code,
  bearer,
  createNodeClient,
  createRestClient,
  isMfaRequired,
} from "@authd/client/node";
import { createSession } from "@authd/client/browser";
import { PASSWORD, TestAuthd, cookieJar, uniqueName } from "./authd.mjs";
import { totpCodes } from "./totp.mjs";

let authd;
let client;
let rest;

before(async () => {
  authd = await TestAuthd.start();
  client = createNodeClient({ baseUrl: authd.url });
  rest = createRestClient({ baseUrl: authd.url });
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

// A new account with TOTP on, enrolled over gRPC: its codes, recovery codes,
// and the token of the session that enrolled (password only).
async function enrolledAccount() {
  const username = uniqueName("mfa");
  const registered = await client.auth.register({ username, password: PASSWORD });
  const enrollment = await client.auth.startTotpEnrollment({}, bearer(registered.accessToken));
  const codes = totpCodes(enrollment.secret);
  const { recoveryCodes } = await client.auth.confirmTotpEnrollment(
    { code: await codes.next() },
    bearer(registered.accessToken),
  );
  return { username, codes, recoveryCodes, token: registered.accessToken };
}

describe("a second factor over gRPC", () => {
  it("enrolls TOTP from the secret authd gave, and Login then asks for a code before any token", async () => {
    const username = uniqueName("grpc-mfa");
    const registered = await client.auth.register({ username, password: PASSWORD });
    const asUser = bearer(registered.accessToken);
    const enrollment = await client.auth.startTotpEnrollment({}, asUser);
    assert.match(enrollment.secret, /^[A-Z2-7]{32}$/);
    assert.ok(enrollment.otpauthUri.startsWith(`otpauth://totp/authd:${username}?`), enrollment.otpauthUri);
    assert.match(enrollment.qrSvg, /<svg[\s>]/);
    const pending = await client.auth.getMfaStatus({}, asUser);
    assert.deepEqual([pending.totpEnabled, pending.recoveryCodesLeft, pending.totpPending], [false, 0, true]);

    const codes = totpCodes(enrollment.secret);
    const wrong = await refusal(client.auth.confirmTotpEnrollment({ code: codes.wrong() }, asUser));
    assert.deepEqual([wrong.reason, wrong.code], ["MFA_CODE_INVALID", Code.InvalidArgument]);
    const { recoveryCodes } = await client.auth.confirmTotpEnrollment({ code: await codes.next() }, asUser);
    assert.equal(recoveryCodes.length, 10);
    assert.equal(new Set(recoveryCodes).size, 10);
    const status = await client.auth.getMfaStatus({}, asUser);
    assert.deepEqual([status.totpEnabled, status.recoveryCodesLeft, status.totpPending], [true, 10, false]);

    const again = await refusal(client.auth.startTotpEnrollment({}, asUser));
    assert.deepEqual([again.reason, again.code], ["TOTP_ALREADY_ENABLED", Code.FailedPrecondition]);

    const login = await client.auth.login({ username, password: PASSWORD });
    assert.equal(login.accessToken, "");
    assert.equal(login.refreshToken, "");
    assert.ok(login.mfaRequired?.ticket);
    assert.deepEqual(login.mfaRequired.methods, ["totp", "recovery_code"]);
    assert.ok(login.mfaRequired.expiresIn > 0);

    const ticket = login.mfaRequired.ticket;
    const completed = await client.auth.completeLogin({
      ticket,
      proof: { case: "totpCode", value: await codes.next() },
    });
    assert.equal(completed.user?.username, username);
    assert.equal(completed.recoveryCodesLeft, undefined);
    const verified = await client.auth.verify({ accessToken: completed.accessToken });
    assert.deepEqual(verified.amr, ["pwd", "otp", "mfa"]);
    assert.equal(verified.assuranceLevel, 2);
    assert.ok(verified.authTime);

    const used = await refusal(
      client.auth.completeLogin({ ticket, proof: { case: "totpCode", value: await codes.next() } }),
    );
    assert.deepEqual([used.reason, used.code], ["MFA_TICKET_INVALID", Code.Unauthenticated]);
  });

  it("asks the enrolling session, which had one factor, for a second before turning TOTP off (max_age in the metadata)", async () => {
    const account = await enrolledAccount();
    const refused = await refusal(client.auth.disableTotp({}, bearer(account.token)));
    assert.deepEqual([refused.reason, refused.code], ["REAUTHENTICATION_REQUIRED", Code.Unauthenticated]);
    assert.equal(refused.metadata.max_age, "300");

    const regenerated = await client.auth.regenerateRecoveryCodes(
      { second: { case: "totpCode", value: await account.codes.next() } },
      bearer(account.token),
    );
    assert.equal(regenerated.recoveryCodes.length, 10);
    const oldCode = await refusal(
      client.auth.disableTotp({ second: { case: "recoveryCode", value: account.recoveryCodes[0] } }, bearer(account.token)),
    );
    assert.equal(oldCode.reason, "MFA_CODE_INVALID");
    await client.auth.disableTotp(
      { second: { case: "recoveryCode", value: regenerated.recoveryCodes[0] } },
      bearer(account.token),
    );
    const off = await refusal(client.auth.disableTotp({}, bearer(account.token)));
    assert.deepEqual([off.reason, off.code], ["TOTP_NOT_ENABLED", Code.FailedPrecondition]);
    const login = await client.auth.login({ username: account.username, password: PASSWORD });
    assert.equal(login.mfaRequired, undefined);
    assert.notEqual(login.accessToken, "");
  });
});

describe("a second factor over REST", () => {
  it("answers mfaRequired with no cookie, and completes the login with a recovery code, once", async () => {
    const account = await enrolledAccount();
    const login = await rest.login({ username: account.username, password: PASSWORD });
    assert.ok(isMfaRequired(login));
    assert.deepEqual(login.mfaRequired.methods, ["totp", "recovery_code"]);

    const wrong = await refusal(rest.completeLogin(login.mfaRequired.ticket, { totpCode: account.codes.wrong() }));
    assert.deepEqual([wrong.reason, wrong.code, wrong.httpStatus], ["MFA_CODE_INVALID", Code.InvalidArgument, 400]);
    const completed = await rest.completeLogin(login.mfaRequired.ticket, { recoveryCode: account.recoveryCodes[0] });
    assert.equal(completed.user.username, account.username);
    assert.equal(completed.recoveryCodesLeft, 9);
    const me = await rest.me({ accessToken: completed.accessToken });
    assert.deepEqual(me.amr, ["pwd", "rc", "mfa"]);
    assert.equal(me.assuranceLevel, 2);
    assert.ok(me.authTime instanceof Date && !Number.isNaN(me.authTime.getTime()));

    const reused = await refusal(rest.completeLogin(login.mfaRequired.ticket, { recoveryCode: account.recoveryCodes[1] }));
    assert.deepEqual([reused.reason, reused.code, reused.httpStatus], ["MFA_TICKET_INVALID", Code.Unauthenticated, 401]);
    const secondTicket = await rest.login({ username: account.username, password: PASSWORD });
    assert.ok(isMfaRequired(secondTicket));
    const spent = await refusal(
      rest.completeLogin(secondTicket.mfaRequired.ticket, { recoveryCode: account.recoveryCodes[0] }),
    );
    assert.equal(spent.reason, "MFA_CODE_INVALID");
    assert.deepEqual(await rest.mfaStatus({ accessToken: completed.accessToken }), {
      totpEnabled: true,
      recoveryCodesLeft: 9,
      totpPending: false,
    });
  });

  it("gives the new refusals the codes gRPC gives them, and REAUTHENTICATION_REQUIRED its max_age", async () => {
    const account = await enrolledAccount();
    const asEnroller = { accessToken: account.token };
    const already = await refusal(rest.startTotpEnrollment(asEnroller));
    assert.deepEqual([already.reason, already.code, already.httpStatus], ["TOTP_ALREADY_ENABLED", Code.FailedPrecondition, 409]);

    const stepUp = await refusal(rest.disableTotp(undefined, asEnroller));
    assert.deepEqual([stepUp.reason, stepUp.code, stepUp.httpStatus], ["REAUTHENTICATION_REQUIRED", Code.Unauthenticated, 401]);
    assert.equal(stepUp.metadata.max_age, "300");
    const password = await refusal(
      rest.changePassword({ currentPassword: PASSWORD, newPassword: "another passphrase" }, asEnroller),
    );
    assert.equal(password.reason, "REAUTHENTICATION_REQUIRED");

    const reauthenticated = await rest.reauthenticate(PASSWORD, { totpCode: await account.codes.next() }, asEnroller);
    const stepped = { accessToken: reauthenticated.accessToken };
    assert.equal((await rest.me(stepped)).assuranceLevel, 2);
    const codes = await rest.regenerateRecoveryCodes(undefined, stepped);
    assert.equal(codes.length, 10);
    await rest.disableTotp(undefined, stepped);
    const off = await refusal(rest.disableTotp(undefined, stepped));
    assert.deepEqual([off.reason, off.code, off.httpStatus], ["TOTP_NOT_ENABLED", Code.FailedPrecondition, 409]);
    const notStarted = await refusal(rest.confirmTotpEnrollment("123456", stepped));
    assert.deepEqual([notStarted.reason, notStarted.code], ["TOTP_ENROLLMENT_NOT_STARTED", Code.FailedPrecondition]);
  });
});

describe("the session helper with a second factor", () => {
  it("stays signed out on mfaRequired, sets the cookies only once a code completes the login", async () => {
    const account = await enrolledAccount();
    const jar = cookieJar();
    const session = createSession({ baseUrl: authd.url, fetch: jar.fetch, name: uniqueName("tabs") });
    try {
      const answer = await session.logIn(account.username, PASSWORD);
      assert.ok(isMfaRequired(answer));
      assert.equal(session.current, undefined);
      assert.deepEqual([...jar.cookies.keys()], []);

      const wrong = await refusal(session.completeLogin(answer.mfaRequired.ticket, { totpCode: account.codes.wrong() }));
      assert.equal(wrong.reason, "MFA_CODE_INVALID");
      assert.equal(session.current, undefined);

      const completed = await session.completeLogin(answer.mfaRequired.ticket, { totpCode: await account.codes.next() });
      assert.equal(completed.user.username, account.username);
      assert.equal(completed.recoveryCodesLeft, undefined);
      assert.equal(session.current?.accessToken, completed.accessToken);
      assert.ok(jar.cookies.has("authd_refresh"));
    } finally {
      session.close();
    }
  });

  it("keeps the session when a call asks for a fresher authentication, and reauthenticates it in place", async () => {
    const account = await enrolledAccount();
    const jar = cookieJar();
    const session = createSession({ baseUrl: authd.url, fetch: jar.fetch, name: uniqueName("tabs") });
    try {
      const answer = await session.logIn(account.username, PASSWORD);
      assert.ok(isMfaRequired(answer));
      const started = await session.completeLogin(answer.mfaRequired.ticket, { recoveryCode: account.recoveryCodes[0] });
      assert.equal(started.recoveryCodesLeft, 9);

      const wrongPassword = await refusal(session.reauthenticate("not the password", { totpCode: account.codes.wrong() }));
      assert.equal(wrongPassword.reason, "INVALID_CREDENTIALS");
      // A session that authenticated with a recovery code, still without a
      // code for the password change: authd asks, the session stays.
      const noCode = await refusal(session.reauthenticate(PASSWORD));
      assert.equal(noCode.reason, "REAUTHENTICATION_REQUIRED");
      assert.equal(session.current?.accessToken, started.accessToken, "still signed in, same token");

      const renewed = await session.reauthenticate(PASSWORD, { totpCode: await account.codes.next() });
      assert.equal(renewed.sessionId, started.sessionId);
      assert.notEqual(renewed.accessToken, started.accessToken);
      assert.equal(session.current?.accessToken, renewed.accessToken);
      const changed = await session.changePassword(PASSWORD, "another passphrase");
      assert.notEqual(changed.sessionId, started.sessionId);
    } finally {
      session.close();
    }
  });
});

describe("too many wrong codes", () => {
  let strict;

  before(async () => {
    strict = await TestAuthd.start({ args: ["--second-factor-failures-per-account", "2/15m"] });
  });

  after(() => strict?.stop());

  it("are RATE_LIMITED with a retry hint on both surfaces, even for a right code", async () => {
    const grpc = createNodeClient({ baseUrl: strict.url });
    const http = createRestClient({ baseUrl: strict.url });
    const username = uniqueName("limited");
    const registered = await grpc.auth.register({ username, password: PASSWORD });
    const { secret } = await grpc.auth.startTotpEnrollment({}, bearer(registered.accessToken));
    const codes = totpCodes(secret);
    await grpc.auth.confirmTotpEnrollment({ code: await codes.next() }, bearer(registered.accessToken));

    const login = await http.login({ username, password: PASSWORD });
    assert.ok(isMfaRequired(login));
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const wrong = await refusal(http.completeLogin(login.mfaRequired.ticket, { totpCode: codes.wrong() }));
      assert.equal(wrong.reason, "MFA_CODE_INVALID");
    }
    const overRest = await refusal(http.completeLogin(login.mfaRequired.ticket, { totpCode: await codes.next() }));
    assert.deepEqual([overRest.reason, overRest.code, overRest.httpStatus], ["RATE_LIMITED", Code.ResourceExhausted, 429]);
    assert.ok(overRest.retryAfter > 60_000, `retry after ${overRest.retryAfter} ms`);

    const ticket = (await grpc.auth.login({ username, password: PASSWORD })).mfaRequired?.ticket;
    const overGrpc = await refusal(grpc.auth.completeLogin({ ticket, proof: { case: "totpCode", value: await codes.next() } }));
    assert.deepEqual([overGrpc.reason, overGrpc.code], ["RATE_LIMITED", Code.ResourceExhausted]);
    assert.ok(overGrpc.retryAfter > 60_000, `retry after ${overGrpc.retryAfter} ms`);
  });
});
