// Typed calls against a real authd: every RPC over gRPC (Node's HTTP/2
// transport) and the REST gateway, refusals as AuthdErrors with authd's
// reasons, field violations and retry hints, never a bare message.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { AuthdError, Code, bearer, createNodeClient, createRestClient } from "@authd/client/node";
import { FEED_TOKEN, PASSWORD, TestAuthd, uniqueName } from "./authd.mjs";

let authd;
let client;
let rest;

before(async () => {
  authd = await TestAuthd.start({ args: ["--login-failures-per-username", "3/1h"] });
  client = createNodeClient({ baseUrl: authd.url });
  rest = createRestClient({ baseUrl: authd.url });
});

after(() => authd.stop());

// Resolves to the AuthdError `promise` rejects with.
async function refusal(promise) {
  const error = await promise.then(
    () => assert.fail("the call was accepted"),
    (thrown) => thrown,
  );
  assert.ok(error instanceof AuthdError, `an AuthdError, not ${error}`);
  return error;
}

describe("typed calls over gRPC", () => {
  it("walks a session from registration to deletion, every RPC typed", async () => {
    const username = uniqueName("grpc");
    const registered = await client.auth.register({ username, password: PASSWORD });
    assert.equal(registered.tokenType, "Bearer");
    assert.equal(registered.user?.username, username);

    const login = await client.auth.login({ username, password: PASSWORD });
    const verified = await client.auth.verify({ accessToken: login.accessToken });
    assert.equal(verified.user?.id, registered.user?.id);
    assert.equal(verified.sessionId, login.sessionId);
    assert.ok(verified.expiresAt && verified.issuedAt);

    const refreshed = await client.auth.refresh({ refreshToken: login.refreshToken });
    assert.equal(refreshed.sessionId, login.sessionId);
    assert.notEqual(refreshed.refreshToken, login.refreshToken);

    const { sessions } = await client.auth.listSessions({}, bearer(refreshed.accessToken));
    assert.equal(sessions.length, 2);
    assert.deepEqual(
      sessions.filter((session) => session.current).map((session) => session.id),
      [login.sessionId],
    );

    await client.auth.revokeSession({ sessionId: registered.sessionId }, bearer(refreshed.accessToken));
    const revoked = await refusal(client.auth.verify({ accessToken: registered.accessToken }));
    assert.equal(revoked.reason, "TOKEN_REVOKED");

    const changed = await client.auth.changePassword(
      { currentPassword: PASSWORD, newPassword: "a new passphrase" },
      bearer(refreshed.accessToken),
    );
    const { keys } = await client.auth.getJwks({});
    assert.ok(keys.length >= 1 && keys.every((key) => key.alg === "EdDSA" && key.crv === "Ed25519"));

    await client.auth.logoutAll({}, bearer(changed.accessToken));
    const again = await client.auth.login({ username, password: "a new passphrase" });
    await client.auth.logout({}, bearer(again.accessToken));
    const third = await client.auth.login({ username, password: "a new passphrase" });
    await client.auth.deleteAccount({ password: "a new passphrase" }, bearer(third.accessToken));
    const gone = await refusal(client.auth.login({ username, password: "a new passphrase" }));
    assert.equal(gone.reason, "INVALID_CREDENTIALS");
  });

  it("throws AuthdErrors carrying the code, reason and metadata authd sent", async () => {
    const error = await refusal(client.auth.verify({ accessToken: "not.a.token" }));
    assert.equal(error.code, Code.Unauthenticated);
    assert.equal(error.codeName, "UNAUTHENTICATED");
    assert.equal(error.reason, "TOKEN_MALFORMED");
    assert.equal(error.httpStatus, undefined);
    assert.equal(typeof error.metadata, "object");

    const missing = await refusal(client.auth.listSessions({}));
    assert.equal(missing.reason, "MISSING_TOKEN");
  });

  it("names every invalid field of a request (google.rpc.BadRequest)", async () => {
    const error = await refusal(client.auth.register({ username: "x", password: "short" }));
    assert.equal(error.code, Code.InvalidArgument);
    assert.equal(error.reason, "INVALID_USERNAME");
    // Each field with its reason, as REST's errors[] has it.
    assert.deepEqual(
      error.fieldViolations.map(({ field, reason }) => ({ field, reason })),
      [
        { field: "username", reason: "INVALID_USERNAME" },
        { field: "password", reason: "PASSWORD_TOO_SHORT" },
      ],
    );
    assert.ok(error.fieldViolations.every((violation) => violation.description.length > 0));
  });

  it("says when to come back after too many failed logins (google.rpc.RetryInfo)", async () => {
    const username = uniqueName("limited");
    await client.auth.register({ username, password: PASSWORD });
    let error;
    for (let attempt = 0; attempt < 5 && error?.reason !== "RATE_LIMITED"; attempt += 1) {
      error = await refusal(client.auth.login({ username, password: "wrong password!" }));
    }
    assert.equal(error.reason, "RATE_LIMITED");
    assert.equal(error.code, Code.ResourceExhausted);
    assert.ok(error.retryAfter > 0, `retryAfter ${error.retryAfter}`);
  });

  it("streams the revocation feed, and ends a watch with the feed's own reasons", async () => {
    const first = async (request, options) => {
      for await (const message of client.revocations.watchRevocations(request, options)) {
        return message;
      }
    };
    const snapshot = await first({}, bearer(FEED_TOKEN));
    assert.ok(snapshot.cursor.length > 0);

    const wrong = await refusal(first({}, bearer("not the feed token")));
    assert.equal(wrong.code, Code.Unauthenticated);
    assert.equal(wrong.reason, "FEED_CREDENTIAL_INVALID");

    const made_up = await refusal(first({ cursor: "not-a-cursor" }, bearer(FEED_TOKEN)));
    assert.equal(made_up.reason, "CURSOR_INVALID");
  });
});

describe("typed calls over REST", () => {
  it("walks a session and returns camelCase, typed answers", async () => {
    const username = uniqueName("rest");
    const registered = await rest.register({ username, password: PASSWORD });
    assert.equal(registered.user.username, username);
    assert.equal(registered.tokenType, "Bearer");
    assert.ok(registered.expiresIn > 0 && registered.refreshExpiresIn > 0);

    const refreshed = await rest.refresh(registered.refreshToken);
    assert.equal(refreshed.sessionId, registered.sessionId);
    const info = await rest.verify(refreshed.accessToken);
    assert.equal(info.user.username, username);
    assert.ok(info.expiresAt instanceof Date && info.expiresAt > info.issuedAt);
    assert.equal((await rest.me({ accessToken: refreshed.accessToken })).tokenId, info.tokenId);

    const other = await rest.login({ username, password: PASSWORD });
    const sessions = await rest.listSessions({ accessToken: refreshed.accessToken });
    assert.equal(sessions.length, 2);
    assert.ok(sessions[0].createdAt instanceof Date);
    await rest.revokeSession(other.sessionId, { accessToken: refreshed.accessToken });
    const ended = await refusal(rest.refresh(other.refreshToken));
    assert.equal(ended.reason, "SESSION_ENDED");

    const changed = await rest.changePassword(
      { currentPassword: PASSWORD, newPassword: "a new passphrase" },
      { accessToken: refreshed.accessToken },
    );
    assert.ok((await rest.jwks()).length >= 1);
    await rest.logout({ accessToken: changed.accessToken });
    const afterLogout = await refusal(rest.me({ accessToken: changed.accessToken }));
    assert.equal(afterLogout.reason, "TOKEN_REVOKED");
    const last = await rest.login({ username, password: "a new passphrase" });
    await rest.logoutAll({ accessToken: last.accessToken });
    const final = await rest.login({ username, password: "a new passphrase" });
    await rest.deleteAccount("a new passphrase", { accessToken: final.accessToken });
  });

  it("reads problem+json into the same AuthdError, with the gRPC code of the reason", async () => {
    const error = await refusal(rest.register({ username: "x", password: "short" }));
    assert.equal(error.httpStatus, 400);
    assert.equal(error.status, "400 Bad Request");
    assert.equal(error.code, Code.InvalidArgument);
    assert.deepEqual(
      error.fieldViolations.map(({ field, reason }) => ({ field, reason })),
      [
        { field: "username", reason: "INVALID_USERNAME" },
        { field: "password", reason: "PASSWORD_TOO_SHORT" },
      ],
    );

    const username = uniqueName("taken");
    await rest.register({ username, password: PASSWORD });
    const taken = await refusal(rest.register({ username: username.toUpperCase(), password: PASSWORD }));
    assert.equal(taken.reason, "USERNAME_TAKEN");
    assert.equal(taken.code, Code.AlreadyExists);

    const noCookie = await refusal(rest.refresh());
    assert.equal(noCookie.reason, "REFRESH_TOKEN_INVALID");
    assert.equal(noCookie.code, Code.Unauthenticated);
  });

  it("refuses a password for an account that has one, with the reason's gRPC code", async () => {
    const username = uniqueName("setpw");
    const registered = await rest.register({ username, password: PASSWORD });
    const overRest = await refusal(
      rest.setPassword("a new passphrase", { accessToken: registered.accessToken }),
    );
    assert.equal(overRest.httpStatus, 409);
    assert.equal(overRest.reason, "PASSWORD_ALREADY_SET");
    assert.equal(overRest.code, Code.FailedPrecondition);
    const overGrpc = await refusal(
      client.auth.setPassword({ newPassword: "a new passphrase" }, bearer(registered.accessToken)),
    );
    assert.equal(overGrpc.reason, "PASSWORD_ALREADY_SET");
    assert.equal(overGrpc.code, Code.FailedPrecondition);
  });

  it("gives the same reason over both surfaces", async () => {
    const overGrpc = await refusal(client.auth.verify({ accessToken: "x.y.z" }));
    const overRest = await refusal(rest.verify("x.y.z"));
    assert.equal(overGrpc.reason, overRest.reason);
    assert.equal(overGrpc.code, overRest.code);
  });

  it("reports a call that got no answer as UNAVAILABLE without a reason", async () => {
    const nowhere = createRestClient({ baseUrl: "http://127.0.0.1:9" });
    const error = await refusal(nowhere.login({ username: "alice", password: PASSWORD }));
    assert.equal(error.code, Code.Unavailable);
    assert.equal(error.reason, undefined);
  });
});
