// The browser session helper against a real authd, run in Node with a
// cookie jar standing in for the browser's (the demo page's Chromium test
// runs it in a real browser): resuming through the refresh cookie, renewal
// before expiry and on TOKEN_EXPIRED, a session ended elsewhere, tabs told
// of each other's renewals and sign-outs.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { AuthdError, Code, createSession } from "@authd/client/browser";
import { createNodeClient, bearer } from "@authd/client/node";
import { cookieJar, eventually, PASSWORD, TestAuthd, uniqueName } from "./authd.mjs";

let authd;
const sessions = [];

before(async () => {
  authd = await TestAuthd.start({ args: ["--token-lifetime", "3s"] });
});

after(async () => {
  sessions.forEach((session) => session.close());
  await authd.stop();
});

function open(jar, options = {}) {
  const session = createSession({ baseUrl: authd.url, fetch: jar.fetch, name: jar.name, ...options });
  sessions.push(session);
  return session;
}

function newJar() {
  return { ...cookieJar(), name: uniqueName("tabs") };
}

describe("the session helper", () => {
  it("finds no session on a first visit, and says so without an error", async () => {
    const session = open(newJar());
    assert.equal(await session.resume(), undefined);
    assert.equal(session.current, undefined);
    await assert.rejects(session.accessToken(), (error) => error.reason === "MISSING_TOKEN");
  });

  it("keeps the access token in memory and survives a reload through the refresh cookie", async () => {
    const jar = newJar();
    const first = open(jar);
    const username = uniqueName("reload");
    const registered = await first.register(username, PASSWORD);
    assert.equal(registered.user.username, username);
    assert.ok(jar.cookies.has("authd_refresh"), "the refresh token is in its cookie");
    first.close();

    // A reload: a new page, the same cookies, nothing else.
    const reloaded = open(jar);
    const resumed = await reloaded.resume();
    assert.equal(resumed.user.username, username);
    assert.equal(resumed.sessionId, registered.sessionId);
    assert.notEqual(resumed.accessToken, registered.accessToken);
  });

  it("renews the access token before it expires", async () => {
    const session = open(newJar());
    const started = await session.register(uniqueName("renew"), PASSWORD);
    const renewed = await eventually(
      () => (session.current?.accessToken !== started.accessToken ? session.current : undefined),
      { timeoutMs: 4_000, what: "a renewal before the 3 s token expired" },
    );
    assert.equal(renewed.sessionId, started.sessionId);
    assert.ok(renewed.expiresAt > started.expiresAt);
  });

  it("renews once and calls again when authd answers TOKEN_EXPIRED", async () => {
    const session = open(newJar(), { renewBefore: 0 });
    const started = await session.register(uniqueName("expired"), PASSWORD);
    const tokens = [];
    const answer = await session.withToken(async (token) => {
      tokens.push(token);
      if (tokens.length === 1) {
        throw new AuthdError({ code: Code.Unauthenticated, reason: "TOKEN_EXPIRED", message: "expired" });
      }
      return "second call";
    });
    assert.equal(answer, "second call");
    assert.equal(tokens[0], started.accessToken);
    assert.notEqual(tokens[1], started.accessToken);
  });

  it("sends its token through a Connect interceptor", async () => {
    const session = open(newJar());
    const started = await session.register(uniqueName("intercepted"), PASSWORD);
    const client = createNodeClient({ baseUrl: authd.url, interceptors: [session.interceptor] });
    const { sessions: listed } = await client.auth.listSessions({});
    assert.deepEqual(listed.map((each) => each.id), [started.sessionId]);
  });

  it("signs out when authd says the session ended elsewhere, and tells its listeners why", async () => {
    const session = open(newJar());
    const started = await session.register(uniqueName("ended"), PASSWORD);
    const ends = [];
    session.subscribe((state, why) => ends.push({ state, reason: why?.reason }));
    await createNodeClient({ baseUrl: authd.url }).auth.logoutAll({}, bearer(started.accessToken));
    const client = createNodeClient({ baseUrl: authd.url, interceptors: [session.interceptor] });
    await assert.rejects(client.auth.listSessions({}), (error) => error.reason === "TOKEN_REVOKED");
    assert.equal(session.current, undefined);
    assert.deepEqual(ends, [{ state: undefined, reason: "TOKEN_REVOKED" }]);
    // The refresh cookie's session is over too.
    await assert.rejects(session.resume(), (error) => error.reason === "SESSION_ENDED");
  });

  it("tells the other tabs of a renewal and of a sign-out", async () => {
    const jar = newJar();
    const first = open(jar);
    const second = open(jar);
    const started = await first.register(uniqueName("tabs"), PASSWORD);
    await eventually(() => (second.current?.accessToken === started.accessToken ? true : undefined), {
      what: "the second tab taking up the first tab's session",
    });
    const renewed = await second.refresh();
    await eventually(() => (first.current?.accessToken === renewed.accessToken ? true : undefined), {
      what: "the first tab taking up the second tab's renewal",
    });
    await first.logOut();
    await eventually(() => (second.current === undefined ? true : undefined), {
      what: "the second tab signed out with the first",
    });
    assert.equal(jar.cookies.has("authd_refresh"), false, "logging out cleared the refresh cookie");
  });
});
