// requireToken in a real Express app, and fastifyRequireToken in a real
// Fastify app, over real HTTP: claims to the handler, refusals answered as
// authd answers (401, RFC 6750 challenge, problem+json with authd's
// reason), and a logout refused on the next request.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import express from "express";
import Fastify from "fastify";
import { bearer, createNodeClient, createVerifier, fastifyRequireToken, requireToken } from "@authd/client/node";
import { eventually, FEED_TOKEN, PASSWORD, TestAuthd, uniqueName } from "./authd.mjs";

let authd;
let verifier;
let server;
let origin;

before(async () => {
  authd = await TestAuthd.start({ args: ["--revocation-checkpoint-interval", "200ms"] });
  verifier = await createVerifier({ url: authd.url, feedToken: FEED_TOKEN });
  const app = express();
  app.get("/me", requireToken(verifier), (req, res) => {
    res.json({ user: req.authd.username, sameAsLocals: res.locals.authd === req.authd });
  });
  app.get("/cookie", requireToken(verifier, { cookie: "authd_token" }), (req, res) => {
    res.json({ user: req.authd.username });
  });
  server = app.listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  origin = `http://127.0.0.1:${server.address().port}`;
});

after(async () => {
  await new Promise((resolve) => server.close(resolve));
  verifier.close();
  await authd.stop();
});

async function get(path, headers = {}) {
  const response = await fetch(`${origin}${path}`, { headers });
  const body = await response.json();
  return { status: response.status, headers: response.headers, body };
}

async function session() {
  const client = createNodeClient({ baseUrl: authd.url });
  const username = uniqueName("express");
  return { client, ...(await client.auth.register({ username, password: PASSWORD })) };
}

describe("requireToken in Express", () => {
  it("lets a good token through with its claims", async () => {
    const { accessToken, user } = await session();
    const answer = await get("/me", { authorization: `Bearer ${accessToken}` });
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.body, { user: user.username, sameAsLocals: true });
  });

  it("answers a request without a token 401 with a bare Bearer challenge", async () => {
    const answer = await get("/me");
    assert.equal(answer.status, 401);
    assert.equal(answer.headers.get("www-authenticate"), 'Bearer realm="authd"');
    assert.equal(answer.headers.get("content-type"), "application/problem+json");
    assert.equal(answer.body.reason, "MISSING_TOKEN");
    assert.equal(answer.body.status, 401);
  });

  it("answers a bad token 401 with invalid_token and authd's reason", async () => {
    for (const [authorization, reason] of [
      ["Bearer not.a.token", "TOKEN_MALFORMED"],
      ["Basic YWxpY2U6cHc=", "TOKEN_MALFORMED"],
    ]) {
      const answer = await get("/me", { authorization });
      assert.equal(answer.status, 401);
      assert.match(answer.headers.get("www-authenticate"), /^Bearer realm="authd", error="invalid_token", error_description="/);
      assert.equal(answer.body.reason, reason);
    }
  });

  it("refuses a logged-out token on the next requests", async () => {
    const { client, accessToken } = await session();
    assert.equal((await get("/me", { authorization: `Bearer ${accessToken}` })).status, 200);
    await client.auth.logout({}, bearer(accessToken));
    const answer = await eventually(async () => {
      const got = await get("/me", { authorization: `Bearer ${accessToken}` });
      return got.status === 401 ? got : undefined;
    }, { what: "the logout refused by the middleware" });
    assert.equal(answer.body.reason, "TOKEN_REVOKED");
  });

  it("reads the cookie only where configured, and never past a bad header", async () => {
    const { accessToken, user } = await session();
    const cookie = `theme=dark; authd_token=${accessToken}`;
    assert.equal((await get("/cookie", { cookie })).body.user, user.username);
    assert.equal((await get("/me", { cookie })).body.reason, "MISSING_TOKEN");
    const both = await get("/cookie", { cookie, authorization: "Bearer nonsense" });
    assert.equal(both.status, 401);
    assert.equal(both.body.reason, "TOKEN_MALFORMED");
  });
});

describe("fastifyRequireToken in Fastify", () => {
  let app;
  let fastifyOrigin;

  before(async () => {
    app = Fastify();
    app.addHook("onRequest", fastifyRequireToken(verifier));
    app.get("/me", async (request) => ({ user: request.authd.username }));
    fastifyOrigin = await app.listen({ port: 0, host: "127.0.0.1" });
  });

  after(() => app.close());

  it("lets a good token through with its claims, and refuses a missing or revoked one as authd does", async () => {
    const { client, accessToken, user } = await session();
    const call = (headers) =>
      fetch(`${fastifyOrigin}/me`, { headers }).then(async (response) => ({
        status: response.status,
        headers: response.headers,
        body: await response.json(),
      }));
    assert.deepEqual((await call({ authorization: `Bearer ${accessToken}` })).body, { user: user.username });

    const missing = await call({});
    assert.equal(missing.status, 401);
    assert.equal(missing.headers.get("www-authenticate"), 'Bearer realm="authd"');
    assert.equal(missing.headers.get("content-type"), "application/problem+json");
    assert.equal(missing.body.reason, "MISSING_TOKEN");

    await client.auth.logout({}, bearer(accessToken));
    const revoked = await eventually(async () => {
      const got = await call({ authorization: `Bearer ${accessToken}` });
      return got.status === 401 ? got : undefined;
    }, { what: "the logout refused by the hook" });
    assert.equal(revoked.body.reason, "TOKEN_REVOKED");
  });
});
