// Expiry as authd has it: a token is refused once its `exp` is more than
// the 10 s clock leeway past. Its own file, with its own authd issuing
// one-second tokens, so its waits overlap the other files' tests, and its
// two tests run at once.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createSession } from "@authd/client/browser";
import { AuthdError, createNodeClient, createVerifier, CLOCK_LEEWAY_SECONDS } from "@authd/client/node";
import { cookieJar, eventually, FEED_TOKEN, PASSWORD, TestAuthd, uniqueName } from "./authd.mjs";

const EXPIRED_WITHIN_MS = (CLOCK_LEEWAY_SECONDS + 5) * 1000;

describe("expired tokens", { concurrency: true, timeout: 60_000 }, () => {
  let authd;
  let verifier;

  before(async () => {
    authd = await TestAuthd.start({ args: ["--token-lifetime", "1s"] });
    verifier = await createVerifier({ url: authd.url, feedToken: FEED_TOKEN });
  });

  after(async () => {
    verifier.close();
    await authd.stop();
  });

  it("are accepted by the verifier through the clock leeway, then refused as TOKEN_EXPIRED", async () => {
    const client = createNodeClient({ baseUrl: authd.url });
    const { accessToken } = await client.auth.register({ username: uniqueName("expiring"), password: PASSWORD });
    const { exp } = await verifier.verify(accessToken);
    const reason = await eventually(
      () => verifier.verify(accessToken).then(() => undefined, (error) => error.reason),
      { timeoutMs: EXPIRED_WITHIN_MS, everyMs: 250, what: "the token expiring" },
    );
    assert.equal(reason, "TOKEN_EXPIRED");
    assert.ok(Date.now() / 1000 >= exp + CLOCK_LEEWAY_SECONDS, "not refused before the leeway ran out");
  });

  it("are renewed by the session helper when authd answers TOKEN_EXPIRED, and the call made again", async () => {
    // A renewal margin past the leeway: the helper's timer never beats
    // authd to it, as when a laptop sleeps through it.
    const jar = cookieJar();
    const session = createSession({ baseUrl: authd.url, fetch: jar.fetch, renewBefore: -60_000 });
    try {
      const started = await session.register(uniqueName("sleeper"), PASSWORD);
      // What authd answered each attempt, seen inside the helper's interceptor.
      const seen = [];
      const spy = createNodeClient({
        baseUrl: authd.url,
        interceptors: [
          session.interceptor,
          (next) => async (request) => {
            try {
              return await next(request);
            } catch (error) {
              seen.push(AuthdError.from(error).reason);
              throw error;
            }
          },
        ],
      });
      await eventually(
        () => verifier.verify(started.accessToken).then(() => undefined, (error) => error.reason),
        { timeoutMs: EXPIRED_WITHIN_MS, everyMs: 250, what: "the session's token expiring" },
      );
      const { sessions } = await spy.auth.listSessions({});
      assert.deepEqual(sessions.map((each) => each.id), [started.sessionId]);
      assert.deepEqual(seen, ["TOKEN_EXPIRED"], "one attempt refused, then one with the renewed token");
      assert.notEqual(session.current.accessToken, started.accessToken);
      assert.equal(session.current.sessionId, started.sessionId);
    } finally {
      session.close();
    }
  });
});
