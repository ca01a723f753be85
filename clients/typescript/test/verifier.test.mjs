// The Node verifier against a real authd: authd's rules checked locally,
// logouts learned from the revocation feed within its latency, rotated keys
// fetched on first sight, a restarted authd (CURSOR_EXPIRED) followed from a
// new snapshot, and the stale policies once authd is gone.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { bearer, createNodeClient, createVerifier, VerifyError } from "@authd/client/node";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { cuttableProxy, eventually, FEED_TOKEN, PASSWORD, TestAuthd, uniqueName } from "./authd.mjs";

// Fast checkpoints and key refreshes, so that staleness and rotation show
// within a test's patience.
const FAST = ["--revocation-checkpoint-interval", "200ms", "--key-refresh-interval", "500ms"];

async function refusedWith(promise) {
  const error = await promise.then(
    () => assert.fail("the token was accepted"),
    (thrown) => thrown,
  );
  assert.ok(error instanceof VerifyError, `a VerifyError, not ${error}`);
  return error.reason;
}

// Collects what the verifier logs, to see what it went through.
function recordingLogger() {
  const lines = [];
  const record = (level) => (message, fields) => lines.push(`${level} ${message} ${JSON.stringify(fields ?? {})}`);
  return { lines, info: record("info"), warn: record("warn"), error: record("error") };
}

describe("the verifier", () => {
  let authd;
  let client;
  let verifier;
  const logger = recordingLogger();

  before(async () => {
    authd = await TestAuthd.start({ args: FAST });
    client = createNodeClient({ baseUrl: authd.url });
    verifier = await createVerifier({
      url: authd.url,
      feedToken: FEED_TOKEN,
      stalenessLimit: 2_000,
      // Shorter than the default 5 s, so that the rotation below need not
      // wait for the spacing since the first fetch.
      keyRefreshSpacing: 1_000,
      logger,
    });
  });

  after(async () => {
    verifier.close();
    await authd.stop();
  });

  async function login() {
    const username = uniqueName();
    await client.auth.register({ username, password: PASSWORD });
    return client.auth.login({ username, password: PASSWORD });
  }

  it("starts connected, in sync, holding authd's keys", () => {
    const state = verifier.state();
    assert.equal(state.connected, true);
    assert.equal(state.stale, false);
    assert.ok(state.cursor.length > 0);
    assert.ok(state.keyIds.length >= 1);
  });

  it("accepts a fresh token and returns its claims", async () => {
    const session = await login();
    const claims = await verifier.verify(session.accessToken);
    assert.equal(claims.sub, session.user.id);
    assert.equal(claims.username, session.user.username);
    assert.equal(claims.sid, session.sessionId);
    assert.equal(claims.iss, "authd");
  });

  it("refuses tampered, malformed and missing tokens with authd's reasons", async () => {
    const { accessToken } = await login();
    const [header, payload, signature] = accessToken.split(".");
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString());
    const edited = Buffer.from(JSON.stringify({ ...claims, username: "mallory" })).toString("base64url");
    assert.equal(await refusedWith(verifier.verify(`${header}.${edited}.${signature}`)), "TOKEN_INVALID_SIGNATURE");

    const alg = (value) =>
      Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(header, "base64url")), alg: value })).toString("base64url");
    assert.equal(await refusedWith(verifier.verify(`${alg("none")}.${payload}.`)), "TOKEN_MALFORMED");
    assert.equal(await refusedWith(verifier.verify(`${alg("HS256")}.${payload}.${signature}`)), "TOKEN_INVALID_SIGNATURE");
    const untyped = Buffer.from(JSON.stringify({ alg: "EdDSA", kid: "x" })).toString("base64url");
    assert.equal(await refusedWith(verifier.verify(`${untyped}.${payload}.${signature}`)), "TOKEN_INVALID_CLAIMS");

    // The last character of the signature carries unused bits: setting one
    // must not make a second valid spelling.
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const respelled = signature.slice(0, -1) + alphabet[alphabet.indexOf(signature.at(-1)) ^ 1];
    assert.equal(await refusedWith(verifier.verify(`${header}.${payload}.${respelled}`)), "TOKEN_MALFORMED");

    assert.equal(await refusedWith(verifier.verify("not a token")), "TOKEN_MALFORMED");
    assert.equal(await refusedWith(verifier.verify("")), "MISSING_TOKEN");
  });

  it("refuses a token of another audience or issuer", async () => {
    const { accessToken } = await login();
    const other = await createVerifier({ url: authd.url, feedToken: FEED_TOKEN, audience: "billing" });
    try {
      assert.equal(await refusedWith(other.verify(accessToken)), "TOKEN_INVALID_CLAIMS");
    } finally {
      other.close();
    }
  });

  it("refuses a logged-out token within the feed's latency", async () => {
    const session = await login();
    await verifier.verify(session.accessToken);
    await client.auth.logout({}, bearer(session.accessToken));
    const started = Date.now();
    const reason = await eventually(
      () => verifier.verify(session.accessToken).then(() => undefined, (error) => error.reason),
      { timeoutMs: 2_000, what: "the logout reaching the verifier" },
    );
    assert.equal(reason, "TOKEN_REVOKED");
    assert.ok(Date.now() - started < 2_000);
  });

  it("refuses every earlier token after LogoutAll, and a disabled account's", async () => {
    const session = await login();
    const second = await client.auth.login({ username: session.user.username, password: PASSWORD });
    await client.auth.logoutAll({}, bearer(second.accessToken));
    await eventually(() =>
      verifier.verify(session.accessToken).then(() => undefined, (error) => error.reason),
    ).then((reason) => assert.equal(reason, "TOKEN_REVOKED"));

    const disabled = await login();
    await authd.admin("users", "disable", disabled.user.username);
    const reason = await eventually(
      () => verifier.verify(disabled.accessToken).then(() => undefined, (error) => error.reason),
      { timeoutMs: 5_000, what: "the disabled account reaching the verifier" },
    );
    assert.equal(reason, "ACCOUNT_DISABLED");
  });

  it("accepts tokens signed by a rotated key without being restarted", async () => {
    const before = verifier.state().keyIds;
    await authd.admin("--key-refresh-interval", "500ms", "keys", "rotate");
    // The new key signs from twice the command's refresh interval on, and
    // authd takes it up within its own (500 ms).
    const session = await eventually(
      async () => {
        const candidate = await login();
        const kid = JSON.parse(Buffer.from(candidate.accessToken.split(".")[0], "base64url")).kid;
        return before.includes(kid) ? undefined : candidate;
      },
      { timeoutMs: 5_000, everyMs: 200, what: "a token signed by the new key" },
    );
    const claims = await verifier.verify(session.accessToken);
    assert.equal(claims.username, session.user.username);
    assert.ok(verifier.state().keyIds.length > before.length);
  });

  it("refuses a token naming a key authd never had, fetching the keys once for all callers", async () => {
    const { accessToken } = await login();
    const [header, payload, signature] = accessToken.split(".");
    const forged = Buffer.from(
      JSON.stringify({ ...JSON.parse(Buffer.from(header, "base64url")), kid: "made-up" }),
    ).toString("base64url");
    const token = `${forged}.${payload}.${signature}`;
    const burst = (counted) =>
      Promise.all(Array.from({ length: 20 }, () => counted.verify(token).catch((error) => error.reason)));

    let fetches = 0;
    const transport = createGrpcTransport({
      baseUrl: authd.url,
      interceptors: [(next) => (request) => {
        fetches += request.method.name === "GetJwks" ? 1 : 0;
        return next(request);
      }],
    });
    const eager = await createVerifier({ url: authd.url, feedToken: FEED_TOKEN, transport, keyRefreshSpacing: 0 });
    const patient = await createVerifier({ url: authd.url, feedToken: FEED_TOKEN, transport });
    try {
      fetches = 0;
      assert.deepEqual(new Set(await burst(eager)), new Set(["TOKEN_INVALID_SIGNATURE"]));
      assert.equal(fetches, 1, "twenty concurrent checks, one fetch");
      fetches = 0;
      assert.deepEqual(new Set(await burst(patient)), new Set(["TOKEN_INVALID_SIGNATURE"]));
      assert.equal(fetches, 0, "none within the spacing (5 s) of the last fetch");
    } finally {
      eager.close();
      patient.close();
    }
  });
});

describe("the verifier when authd restarts or goes away", () => {
  it("resumes from its cursor after a lost connection, missing nothing said meanwhile", async () => {
    const authd = await TestAuthd.start({ args: FAST });
    const proxy = await cuttableProxy(authd.address);
    const logger = recordingLogger();
    const verifier = await createVerifier({ url: proxy.url, feedToken: FEED_TOKEN, stalenessLimit: 2_000, logger });
    try {
      const client = createNodeClient({ baseUrl: authd.url });
      const session = await client.auth.register({ username: uniqueName("resume"), password: PASSWORD });
      await verifier.verify(session.accessToken);

      proxy.cut();
      await eventually(() => (verifier.state().connected ? undefined : true), { what: "the verifier disconnected" });
      await client.auth.logout({}, bearer(session.accessToken));
      // authd has said it; the verifier, cut off, has not heard it.
      assert.equal((await verifier.verify(session.accessToken)).sub, session.user.id);
      proxy.unblock();

      const reason = await eventually(
        () => verifier.verify(session.accessToken).then(() => undefined, (error) => error.reason),
        { timeoutMs: 7_000, what: "the logout heard after reconnecting" },
      );
      assert.equal(reason, "TOKEN_REVOKED");
      const snapshots = logger.lines.filter((line) => line.includes("snapshot taken up"));
      assert.equal(snapshots.length, 1, `resumed, not a second snapshot:\n${logger.lines.join("\n")}`);
      assert.ok(logger.lines.some((line) => line.includes("connected") && line.includes('"resuming":true')));
    } finally {
      verifier.close();
      await proxy.close();
      await authd.stop();
    }
  });

  it("takes a new snapshot when authd cannot resume its cursor (CURSOR_EXPIRED)", async () => {
    const authd = await TestAuthd.start({ args: FAST });
    const logger = recordingLogger();
    const verifier = await createVerifier({ url: authd.url, feedToken: FEED_TOKEN, stalenessLimit: 2_000, logger });
    try {
      const client = createNodeClient({ baseUrl: authd.url });
      const username = uniqueName("restart");
      const session = await client.auth.register({ username, password: PASSWORD });
      const cursor = verifier.state().cursor;

      // The same port and database, a new run: the cursor is another run's.
      await authd.kill("SIGTERM");
      await authd.spawnOn(authd.address);
      await eventually(
        () => (logger.lines.some((line) => line.includes("taking a new snapshot")) ? true : undefined),
        { timeoutMs: 10_000, what: "a new snapshot after the restart" },
      );
      await eventually(() => (verifier.state().connected && verifier.state().cursor !== cursor ? true : undefined), {
        timeoutMs: 5_000,
        what: "the verifier following the new run",
      });

      // Logouts on the new run reach the verifier.
      await client.auth.logout({}, bearer(session.accessToken));
      const reason = await eventually(
        () => verifier.verify(session.accessToken).then(() => undefined, (error) => error.reason),
        { what: "a logout on the restarted authd reaching the verifier" },
      );
      assert.equal(reason, "TOKEN_REVOKED");
    } finally {
      verifier.close();
      await authd.stop();
    }
  });

  it("applies its stale policy once the feed is silent longer than the limit", async () => {
    const authd = await TestAuthd.start({ args: FAST });
    const client = createNodeClient({ baseUrl: authd.url });
    const session = await client.auth.register({ username: uniqueName("stale"), password: PASSWORD });
    const options = { url: authd.url, feedToken: FEED_TOKEN, stalenessLimit: 1_000 };
    const verifiers = {
      failClosed: await createVerifier({ ...options, stalePolicy: "failClosed" }),
      fallBackToAuthd: await createVerifier({ ...options, stalePolicy: "fallBackToAuthd" }),
      failOpen: await createVerifier({ ...options, stalePolicy: "failOpen" }),
    };
    try {
      for (const verifier of Object.values(verifiers)) {
        await verifier.verify(session.accessToken);
      }
      await authd.kill("SIGKILL");
      const all = Object.values(verifiers);
      await eventually(() => (all.every((verifier) => verifier.state().stale) ? true : undefined), {
        timeoutMs: 3_000,
        what: "the verifiers turning stale",
      });
      assert.equal(await refusedWith(verifiers.failClosed.verify(session.accessToken)), "VERIFIER_STALE");
      assert.equal(await refusedWith(verifiers.fallBackToAuthd.verify(session.accessToken)), "AUTHD_UNAVAILABLE");
      assert.equal((await verifiers.failOpen.verify(session.accessToken)).sub, session.user.id);
      // A token refused locally is refused whatever the policy.
      assert.equal(await refusedWith(verifiers.failOpen.verify("a.b.c")), "TOKEN_MALFORMED");
      assert.ok(!new VerifyError("VERIFIER_STALE").isRejection);
    } finally {
      Object.values(verifiers).forEach((verifier) => verifier.close());
      await authd.stop();
    }
  });

  it("does not start with a wrong feed credential, and says why", async () => {
    const authd = await TestAuthd.start();
    try {
      await assert.rejects(
        createVerifier({ url: authd.url, feedToken: "wrong", connectTimeout: 5_000 }),
        (error) => error.lastError?.reason === "FEED_CREDENTIAL_INVALID",
      );
    } finally {
      await authd.stop();
    }
  });
});

describe("the verifier during an issuer change", () => {
  it("accepts tokens of a previous issuer it is told of, and refuses them without", async () => {
    const [previous, current] = ["https://old.example", "https://auth.example.com"];
    const first = await TestAuthd.start({ args: ["--issuer", previous] });
    let second;
    const verifiers = [];
    try {
      const earlier = await createNodeClient({ baseUrl: first.url }).auth.register({
        username: uniqueName("issuer"),
        password: PASSWORD,
      });
      // The same database and keys, under the new issuer.
      await first.kill("SIGTERM");
      second = await TestAuthd.start({ beside: first, args: ["--issuer", current, "--previous-issuer", previous] });
      const later = await createNodeClient({ baseUrl: second.url }).auth.login({
        username: earlier.user.username,
        password: PASSWORD,
      });
      const options = { url: second.url, feedToken: FEED_TOKEN, issuer: current };
      const changing = await createVerifier({ ...options, previousIssuers: [previous] });
      verifiers.push(changing);
      const strict = await createVerifier(options);
      verifiers.push(strict);

      assert.equal((await changing.verify(earlier.accessToken)).iss, previous);
      assert.equal((await changing.verify(later.accessToken)).iss, current);
      assert.equal((await strict.verify(later.accessToken)).iss, current);
      assert.equal(await refusedWith(strict.verify(earlier.accessToken)), "TOKEN_INVALID_CLAIMS");
    } finally {
      verifiers.forEach((verifier) => verifier.close());
      await second?.stop();
      await first.stop();
    }
  });
});
