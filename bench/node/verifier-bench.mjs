// The bench's Node cases (bench/src/node.rs runs this, BENCHMARKS.md says
// what they mean): checks per second of @authd/client's Node verifier for a
// token seen before and for every token new, beside jose's jwtVerify alone
// with a local key set and beside Node's Ed25519 signature check alone; and
// how soon after a Logout returns the verifier refuses the token.
//
// `node verifier-bench.mjs PARAMETERS.json`; the parameters are written by
// the bench (see `Parameters` in bench/src/node.rs), the results printed as
// one JSON object on stdout.
import { createPublicKey, verify as verifySignature } from "node:crypto";
import { readFile } from "node:fs/promises";
import { performance } from "node:perf_hooks";
import { createLocalJWKSet, jwtVerify } from "jose";

// The package as built in clients/typescript (`npm run build`), its own
// dependencies resolved from there.
const { bearer, createNodeClient, createVerifier } = await import(
  new URL("../../clients/typescript/dist/node/index.js", import.meta.url).href
);

const parameters = JSON.parse(await readFile(process.argv[2], "utf8"));
const { url, feedToken, issuer, audience, durationMs, warmupMs, turns, seen, fresh, logouts } = parameters;

// Between batches of checks, and between polls for a refusal: lets the
// feed's messages in (they are I/O, which awaiting settled promises never
// reaches) without the millisecond a timer would round up to.
const turnOfTheLoop = () => new Promise((resolve) => setImmediate(resolve));
const BATCH = 256;

/** Checks per second of `check` over `tokens` in turn, for `ms` after a warm-up. */
async function repeatedRate(check, tokens, ms) {
  await checksFor(check, tokens, warmupMs);
  return checksFor(check, tokens, ms);
}

async function checksFor(check, tokens, ms) {
  const started = performance.now();
  const end = started + ms;
  let checks = 0;
  while (performance.now() < end) {
    for (let n = 0; n < BATCH; n += 1) {
      await check(tokens[checks % tokens.length]);
      checks += 1;
    }
    await turnOfTheLoop();
  }
  return { checks, seconds: (performance.now() - started) / 1000 };
}

/** Each of `tokens` checked once, in order. */
async function onceEach(check, tokens) {
  const started = performance.now();
  for (let n = 0; n < tokens.length; n += 1) {
    await check(tokens[n]);
    if (n % BATCH === BATCH - 1) {
      await turnOfTheLoop();
    }
  }
  return { checks: tokens.length, seconds: (performance.now() - started) / 1000 };
}

/** The round of median rate among `rounds`. */
function median(rounds) {
  const sorted = [...rounds].sort((a, b) => a.checks / a.seconds - b.checks / b.seconds);
  return sorted[Math.floor(sorted.length / 2)];
}

const verifier = await createVerifier({ url, feedToken, issuer, audience });
const jwksResponse = await fetch(`${url}/.well-known/jwks.json`);
if (!jwksResponse.ok) {
  throw new Error(`GET /.well-known/jwks.json: ${jwksResponse.status}`);
}
const jwks = await jwksResponse.json();
const keys = createLocalJWKSet(jwks);
// jose checks what authd's rules ask of a token, short of revocations.
const joseOptions = { issuer, audience, algorithms: ["EdDSA"], typ: "at+jwt" };

const withVerifier = (token) => verifier.verify(token);
const withJose = (token) => jwtVerify(token, keys, joseOptions);

// The signature check alone, as the verifier makes it (node:crypto, the key
// imported once), on the token seen before: what no verifier can go below.
const [encodedHeader, encodedPayload, encodedSignature] = seen.split(".");
const { kid } = JSON.parse(Buffer.from(encodedHeader, "base64url").toString());
const jwk = jwks.keys.find((key) => key.kid === kid);
const publicKey = createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x }, format: "jwk" });
const signingInput = Buffer.from(`${encodedHeader}.${encodedPayload}`);
const signature = Buffer.from(encodedSignature, "base64url");
const signatureOnly = async () => {
  if (!verifySignature(null, signingInput, publicKey, signature)) {
    throw new Error("the token seen before has a bad signature");
  }
};

try {
  // The same token over and over, the three in turns so that the
  // machine's drift falls on all alike.
  const verifierSeen = [];
  const joseSeen = [];
  const signatureSeen = [];
  for (let turn = 0; turn < turns; turn += 1) {
    verifierSeen.push(await repeatedRate(withVerifier, [seen], durationMs));
    joseSeen.push(await repeatedRate(withJose, [seen], durationMs));
    signatureSeen.push(await repeatedRate(signatureOnly, [seen], durationMs));
  }

  // Every token new: each half of the fresh tokens checked once, by one
  // of the two, after a warm-up on the token seen before.
  const half = Math.floor(fresh.length / 2);
  await checksFor(withVerifier, [seen], warmupMs);
  const verifierNew = await onceEach(withVerifier, fresh.slice(0, half));
  await checksFor(withJose, [seen], warmupMs);
  const joseNew = await onceEach(withJose, fresh.slice(half));

  // Logout to refusal: from the moment each Logout's answer is in to the
  // verifier's first TOKEN_REVOKED, polled on every turn of the loop.
  const client = createNodeClient({ baseUrl: url });
  const refusedAfterMicros = [];
  for (const token of logouts) {
    await verifier.verify(token);
    await client.auth.logout({}, bearer(token));
    const returned = performance.now();
    for (;;) {
      const refused = await verifier.verify(token).then(
        () => false,
        (error) => {
          if (error.reason !== "TOKEN_REVOKED") {
            throw error;
          }
          return true;
        },
      );
      if (refused) {
        break;
      }
      if (performance.now() - returned > 10_000) {
        throw new Error("the verifier still accepted a token 10 s after its logout");
      }
      await turnOfTheLoop();
    }
    refusedAfterMicros.push(Math.round((performance.now() - returned) * 1000));
  }

  process.stdout.write(
    `${JSON.stringify({
      node: process.version,
      verifierSeen: median(verifierSeen),
      joseSeen: median(joseSeen),
      signatureSeen: median(signatureSeen),
      verifierNew,
      joseNew,
      refusedAfterMicros,
    })}\n`,
  );
} finally {
  verifier.close();
}
