// RFC 6238 as authd and every authenticator app read it (HMAC-SHA-1, 30 s
// steps, 6 digits), so that the tests compute codes from the secret authd
// gave, as a person's phone would.
import { createHmac } from "node:crypto";

const STEP_MS = 30_000;

/** The step (RFC 6238's T) of `ms`. */
export function stepAt(ms = Date.now()) {
  return Math.floor(ms / STEP_MS);
}

/** The code of `step` for a base32 secret (RFC 4648, no padding). */
export function totpCode(secret, step) {
  let bits = "";
  for (const char of secret.replace(/=+$/, "")) {
    const value = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".indexOf(char.toUpperCase());
    if (value < 0) throw new Error(`not base32: ${char}`);
    bits += value.toString(2).padStart(5, "0");
  }
  const key = Buffer.from((bits.match(/.{8}/g) ?? []).map((byte) => parseInt(byte, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac("sha1", key).update(counter).digest();
  const offset = mac[mac.length - 1] & 0xf;
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).padStart(6, "0");
}

/**
 * Codes for one account, each of a step not used before: authd accepts a
 * step once, and one step either side of the current one. The earliest
 * step still safe to send is taken (the previous step only while more than
 * five seconds of the current one are left), and when the next step has
 * been used too, this waits for the clock to reach the next step.
 */
export function totpCodes(secret) {
  let lastStep = -Infinity;
  return {
    async next() {
      for (;;) {
        const now = Date.now();
        const current = stepAt(now);
        const leftInStep = (current + 1) * STEP_MS - now;
        const step = Math.max(leftInStep > 5_000 ? current - 1 : current, lastStep + 1);
        if (step <= current + 1) {
          lastStep = step;
          return totpCode(secret, step);
        }
        await new Promise((resolve) => setTimeout(resolve, leftInStep + 50));
      }
    },
    /** Six digits no step around now has, for a wrong code. */
    wrong() {
      const current = stepAt();
      const near = new Set([-2, -1, 0, 1, 2].map((offset) => totpCode(secret, current + offset)));
      for (let guess = 0; ; guess += 1) {
        const code = String(guess).padStart(6, "0");
        if (!near.has(code)) return code;
      }
    },
  };
}
