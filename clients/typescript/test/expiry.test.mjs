// Expiry as authd has it: a token is refused once its `exp` is more than
// the 10 s clock leeway past. Its own file, with its own authd issuing
// one-second tokens, so its wait overlaps the other files' tests.
import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { createNodeClient, createVerifier, CLOCK_LEEWAY_SECONDS } from "@authd/client/node";
import { eventually, FEED_TOKEN, PASSWORD, TestAuthd, uniqueName } from "./authd.mjs";

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

it("accepts a token through the clock leeway past its expiry, then refuses it as TOKEN_EXPIRED", { timeout: 30_000 }, async () => {
  const client = createNodeClient({ baseUrl: authd.url });
  const { accessToken } = await client.auth.register({ username: uniqueName("expiring"), password: PASSWORD });
  const { exp } = await verifier.verify(accessToken);
  const reason = await eventually(
    () => verifier.verify(accessToken).then(() => undefined, (error) => error.reason),
    { timeoutMs: (CLOCK_LEEWAY_SECONDS + 5) * 1000, everyMs: 250, what: "the token expiring" },
  );
  assert.equal(reason, "TOKEN_EXPIRED");
  assert.ok(Date.now() / 1000 >= exp + CLOCK_LEEWAY_SECONDS, "not refused before the leeway ran out");
});
