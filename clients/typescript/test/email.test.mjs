// Email addresses through the client against a real authd that sends its
// mail to a real SMTP server (test/mail.mjs): an address given at
// registration or set later, over gRPC, REST and the session helper,
// verified with the token read from the mail that arrived; the step-up
// SetEmail asks for; and the refusals as AuthdErrors with the same reason
// and code on both surfaces, also from an authd without mail.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { AuthdError, Code, bearer, createNodeClient, createRestClient } from "@authd/client/node";
import { createSession } from "@authd/client/browser";
import { PASSWORD, TestAuthd, cookieJar, uniqueName } from "./authd.mjs";
import { startMailServer, tokenOf, verificationLink } from "./mail.mjs";
import { totpCodes } from "./totp.mjs";

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

function uniqueAddress(prefix) {
  return `${uniqueName(prefix)}@example.com`;
}

// The token of the `count`th verification mail to `address`, after checking
// it is one: to the address, with authd's subject, and a link to the
// page's route on authd's own origin (no --public-url here).
async function mailedToken(address, count = 1) {
  const received = await mail.waitFor(address, { count });
  assert.equal(received.to, address);
  assert.equal(received.subject, "Verify your email address");
  const link = verificationLink(received);
  assert.ok(link?.startsWith(`${authd.url}/#/verify-email?token=authd_ev_`), `a link in ${received.text}`);
  assert.ok(received.html.includes(`href="${link}"`), "the HTML body links the same");
  return tokenOf(link);
}

describe("email addresses over gRPC", () => {
  it("registers with an address, verifies it with the mailed token once, and then has nothing to resend", async () => {
    const address = uniqueAddress("grpc");
    const registered = await client.auth.register({ username: uniqueName("grpc-mail"), password: PASSWORD, email: address });
    assert.equal(registered.user?.email, address);
    assert.equal(registered.user?.emailVerified, false);

    const token = await mailedToken(address);
    const { user } = await client.auth.verifyEmail({ token });
    assert.equal(user?.id, registered.user?.id);
    assert.equal(user?.email, address);
    assert.equal(user?.emailVerified, true);

    const used = await refusal(client.auth.verifyEmail({ token }));
    assert.equal(used.reason, "EMAIL_TOKEN_INVALID");
    assert.equal(used.code, Code.InvalidArgument);
    assert.deepEqual(used.fieldViolations.map(({ field }) => field), ["token"]);

    const verified = await refusal(client.auth.resendEmailVerification({}, bearer(registered.accessToken)));
    assert.equal(verified.reason, "EMAIL_ALREADY_VERIFIED");
    assert.equal(verified.code, Code.FailedPrecondition);
  });

  it("asks an account with TOTP for a code to set its address, and takes the code with the call", async () => {
    const registered = await client.auth.register({ username: uniqueName("grpc-stepup"), password: PASSWORD });
    const asUser = bearer(registered.accessToken);
    const enrollment = await client.auth.startTotpEnrollment({}, asUser);
    const codes = totpCodes(enrollment.secret);
    await client.auth.confirmTotpEnrollment({ code: await codes.next() }, asUser);
    const address = uniqueAddress("grpc-stepup");

    const stepUp = await refusal(client.auth.setEmail({ email: address }, asUser));
    assert.equal(stepUp.reason, "REAUTHENTICATION_REQUIRED");
    assert.equal(stepUp.code, Code.Unauthenticated);
    assert.ok(Number(stepUp.metadata.max_age) > 0);

    const { user } = await client.auth.setEmail(
      { email: address, second: { case: "totpCode", value: await codes.next() } },
      asUser,
    );
    assert.equal(user?.email, address);
    assert.equal(user?.emailVerified, false);
    await mailedToken(address);
  });

  it("refuses an address authd's rules refuse, naming the field", async () => {
    const error = await refusal(
      client.auth.register({ username: uniqueName("grpc-bad"), password: PASSWORD, email: "not an address" }),
    );
    assert.equal(error.reason, "INVALID_EMAIL");
    assert.equal(error.code, Code.InvalidArgument);
    assert.deepEqual(error.fieldViolations.map(({ field }) => field), ["email"]);
  });
});

describe("email addresses over REST", () => {
  it("sets an address, mails it again, voids the first link, and verifies with the second", async () => {
    const registered = await rest.register({ username: uniqueName("rest-mail"), password: PASSWORD });
    assert.equal(registered.user.email, undefined);
    assert.equal(registered.user.emailVerified, false);
    const accessToken = registered.accessToken;
    const none = await refusal(rest.resendEmailVerification({ accessToken }));
    assert.equal(none.reason, "EMAIL_NOT_SET");
    assert.equal(none.code, Code.FailedPrecondition);
    assert.equal(none.httpStatus, 409);

    const address = uniqueAddress("rest");
    const set = await rest.setEmail(address, undefined, { accessToken });
    assert.deepEqual(set, { id: registered.user.id, username: registered.user.username, email: address, emailVerified: false });
    const first = await mailedToken(address);
    await rest.resendEmailVerification({ accessToken });
    const second = await mailedToken(address, 2);
    assert.notEqual(second, first);

    const voided = await refusal(rest.verifyEmail(first));
    assert.equal(voided.reason, "EMAIL_TOKEN_INVALID");
    assert.equal(voided.code, Code.InvalidArgument);
    assert.equal(voided.httpStatus, 400);
    const verified = await rest.verifyEmail(second);
    assert.deepEqual(verified, { ...set, emailVerified: true });

    // A new session's answer says it; one from the token alone cannot.
    const refreshed = await rest.refresh(registered.refreshToken);
    assert.equal(refreshed.user.email, address);
    assert.equal(refreshed.user.emailVerified, true);
    const me = await rest.me({ accessToken });
    assert.equal(me.user.email, undefined);
    assert.equal(me.user.emailVerified, undefined);
  });

  it("refuses a verification of an address another account verified first: EMAIL_TAKEN", async () => {
    const address = uniqueAddress("taken");
    await rest.register({ username: uniqueName("first"), password: PASSWORD, email: address });
    await rest.verifyEmail(await mailedToken(address));
    // Registering with it is not refused (that would tell who has an account).
    const late = await rest.register({ username: uniqueName("second"), password: PASSWORD, email: address });
    assert.equal(late.user.email, address);

    const taken = await refusal(rest.verifyEmail(await mailedToken(address, 2)));
    assert.equal(taken.reason, "EMAIL_TAKEN");
    assert.equal(taken.code, Code.AlreadyExists);
    assert.equal(taken.httpStatus, 409);
  });

  it("refuses a malformed address on the field, and asks for the second factor the way gRPC does", async () => {
    const registered = await rest.register({ username: uniqueName("rest-stepup"), password: PASSWORD });
    const accessToken = registered.accessToken;
    const enrollment = await rest.startTotpEnrollment({ accessToken });
    const codes = totpCodes(enrollment.secret);
    await rest.confirmTotpEnrollment(await codes.next(), { accessToken });
    const address = uniqueAddress("rest-stepup");

    const stepUp = await refusal(rest.setEmail(address, undefined, { accessToken }));
    assert.equal(stepUp.reason, "REAUTHENTICATION_REQUIRED");
    assert.equal(stepUp.code, Code.Unauthenticated);
    assert.ok(Number(stepUp.metadata.max_age) > 0);

    // The address is read before the step-up is asked for.
    const invalid = await refusal(rest.setEmail("ada@", undefined, { accessToken }));
    assert.equal(invalid.reason, "INVALID_EMAIL");
    assert.deepEqual(invalid.fieldViolations.map(({ field }) => field), ["email"]);

    const set = await rest.setEmail(address, { totpCode: await codes.next() }, { accessToken });
    assert.equal(set.email, address);
  });
});

describe("email addresses through the session helper", () => {
  it("registers with an address and reads it verified after the next renewal", async () => {
    const jar = { ...cookieJar(), name: uniqueName("tabs") };
    const session = createSession({ baseUrl: authd.url, fetch: jar.fetch, name: jar.name });
    try {
      const address = uniqueAddress("helper");
      const state = await session.register(uniqueName("helper"), PASSWORD, address);
      assert.equal(state.user.email, address);
      assert.equal(state.user.emailVerified, false);
      await rest.verifyEmail(await mailedToken(address));
      const renewed = await session.refresh();
      assert.equal(renewed.user.emailVerified, true);
    } finally {
      session.close();
    }
  });
});

describe("email addresses on an authd without mail", () => {
  let quiet;

  before(async () => {
    quiet = await TestAuthd.start();
  });

  after(() => quiet?.stop());

  it("keeps the address given at registration, and answers MAIL_NOT_CONFIGURED on both surfaces", async () => {
    const grpc = createNodeClient({ baseUrl: quiet.url });
    const quietRest = createRestClient({ baseUrl: quiet.url });
    const address = uniqueAddress("quiet");
    const registered = await quietRest.register({ username: uniqueName("quiet"), password: PASSWORD, email: address });
    assert.equal(registered.user.email, address);
    assert.equal(registered.user.emailVerified, false);
    const accessToken = registered.accessToken;

    for (const call of [
      () => grpc.auth.setEmail({ email: address }, bearer(accessToken)),
      () => grpc.auth.verifyEmail({ token: "authd_ev_x" }),
      () => grpc.auth.resendEmailVerification({}, bearer(accessToken)),
    ]) {
      const error = await refusal(call());
      assert.equal(error.reason, "MAIL_NOT_CONFIGURED");
      assert.equal(error.code, Code.FailedPrecondition);
    }
    for (const call of [
      () => quietRest.setEmail(address, undefined, { accessToken }),
      () => quietRest.verifyEmail("authd_ev_x"),
      () => quietRest.resendEmailVerification({ accessToken }),
    ]) {
      const error = await refusal(call());
      assert.equal(error.reason, "MAIL_NOT_CONFIGURED");
      assert.equal(error.code, Code.FailedPrecondition);
      assert.equal(error.httpStatus, 409);
    }
  });
});
