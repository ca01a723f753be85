// authd's token rules (crates/authd-token), for Node: one algorithm (EdDSA
// with Ed25519), `typ` at+jwt, the key by `kid` from authd's own key set,
// then `exp` and `nbf` with 10 s of leeway, then issuer and audience, in
// that order, so each refusal carries the reason authd would give.
//
// Node's own crypto checks the signature: with one algorithm to accept,
// a JOSE library would add only choices to refuse.
import { createPublicKey, verify as verifySignature, type KeyObject } from "node:crypto";

/** The claims of an authd access token. */
export interface Claims {
  /** Who issued it (`--issuer`). */
  readonly iss: string;
  /** The user id. */
  readonly sub: string;
  /** For whom (`--audience`). */
  readonly aud: string;
  /** Expiry, Unix seconds. */
  readonly exp: number;
  /** Not before, Unix seconds. */
  readonly nbf: number;
  /** Issued at, Unix seconds. */
  readonly iat: number;
  /** The token's unique id. */
  readonly jti: string;
  /** The user's name when the token was issued. */
  readonly username: string;
  /** The session the token belongs to; absent from tokens issued before authd had sessions. */
  readonly sid?: string;
}

/** Why a token is refused: the reasons authd sends. */
export type TokenReason =
  | "MISSING_TOKEN"
  | "TOKEN_MALFORMED"
  | "TOKEN_INVALID_SIGNATURE"
  | "TOKEN_INVALID_CLAIMS"
  | "TOKEN_EXPIRED"
  | "TOKEN_NOT_YET_VALID"
  | "TOKEN_REVOKED"
  | "ACCOUNT_DISABLED";

/** Tolerated clock difference between machines, for `exp` and `nbf` (seconds). */
export const CLOCK_LEEWAY_SECONDS = 10;
/** Larger tokens are refused before any parsing. */
export const MAX_TOKEN_BYTES = 8 * 1024;
const MAX_HEADER_BYTES = 512;
const SIGNATURE_BYTES = 64;

/**
 * A token check's outcome short of claims: a reason, or `UNKNOWN_KEY` when
 * the token names a key not held (fetch the keys and check again).
 */
export class Rejection {
  constructor(readonly reason: TokenReason | "UNKNOWN_KEY") {}
}

/** A public key in JWK form (RFC 8037), as authd publishes it. */
export interface Jwk {
  readonly kty: string;
  readonly crv: string;
  readonly x: string;
  readonly kid: string;
  readonly alg: string;
  readonly use: string;
}

/** Public keys by key id, imported once, not per token. */
export class KeySet {
  private constructor(private readonly byKid: ReadonlyMap<string, KeyObject>) {}

  /**
   * From authd's JWKS. Throws for a key that is no Ed25519 key for EdDSA
   * signatures: authd publishes no other kind.
   */
  static fromJwks(jwks: readonly Jwk[]): KeySet {
    const byKid = new Map<string, KeyObject>();
    for (const jwk of jwks) {
      const raw = canonicalBase64url(jwk.x);
      if (
        jwk.kty !== "OKP" ||
        jwk.crv !== "Ed25519" ||
        jwk.alg !== "EdDSA" ||
        jwk.use !== "sig" ||
        raw?.length !== 32
      ) {
        throw new Error(`key ${jwk.kid} is not an Ed25519 public key`);
      }
      byKid.set(jwk.kid, createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: jwk.x }, format: "jwk" }));
    }
    return new KeySet(byKid);
  }

  get(kid: string): KeyObject | undefined {
    return this.byKid.get(kid);
  }

  get kids(): string[] {
    return [...this.byKid.keys()];
  }
}

/** Whom tokens must be issued by and for. */
export interface TokenSettings {
  readonly issuer: string;
  /** Issuers also accepted: authd's `--previous-issuer`, after its issuer changed. */
  readonly previousIssuers: readonly string[];
  readonly audience: string;
}

/** Checks a compact JWT at `now` (Unix seconds); its claims, or why not. */
export function checkToken(token: string, keys: KeySet, settings: TokenSettings, now: number): Claims | Rejection {
  if (token === "") {
    return new Rejection("MISSING_TOKEN");
  }
  if (Buffer.byteLength(token) > MAX_TOKEN_BYTES) {
    return new Rejection("TOKEN_MALFORMED");
  }
  const parts = token.split(".");
  if (parts.length !== 3) {
    return new Rejection("TOKEN_MALFORMED");
  }
  const [encodedHeader, encodedPayload, encodedSignature] = parts as [string, string, string];

  const headerBytes = canonicalBase64url(encodedHeader);
  if (headerBytes === undefined || headerBytes.length > MAX_HEADER_BYTES) {
    return new Rejection("TOKEN_MALFORMED");
  }
  const header = parseJson(headerBytes);
  if (!isObject(header) || typeof header.alg !== "string") {
    return new Rejection("TOKEN_MALFORMED");
  }
  const { alg, typ, kid } = header;
  // authd understands no JWS extensions, so any `crit` (even null) is refused.
  if ("crit" in header || !optionalString(typ) || !optionalString(kid)) {
    return new Rejection("TOKEN_MALFORMED");
  }
  if (typ === undefined || !isAccessTokenType(typ)) {
    return new Rejection("TOKEN_INVALID_CLAIMS");
  }
  // An unsigned token is not one at all; another algorithm is a signature
  // authd does not accept.
  if (alg === "none") {
    return new Rejection("TOKEN_MALFORMED");
  }
  if (alg !== "EdDSA" || kid === undefined) {
    return new Rejection("TOKEN_INVALID_SIGNATURE");
  }
  const key = keys.get(kid);
  if (key === undefined) {
    return new Rejection("UNKNOWN_KEY");
  }
  // Only the canonical encoding counts, so a signature cannot be re-spelled
  // into a second valid token.
  const signature = canonicalBase64url(encodedSignature);
  if (signature === undefined) {
    return new Rejection("TOKEN_MALFORMED");
  }
  const signed = Buffer.from(`${encodedHeader}.${encodedPayload}`);
  if (signature.length !== SIGNATURE_BYTES || !verifySignature(null, signed, key, signature)) {
    return new Rejection("TOKEN_INVALID_SIGNATURE");
  }

  const payload = canonicalBase64url(encodedPayload);
  const claims = payload === undefined ? undefined : parseJson(payload);
  if (claims === undefined) {
    return new Rejection("TOKEN_MALFORMED");
  }
  // Well-formed JSON but not authd's claims (one missing, say).
  if (!areClaims(claims)) {
    return new Rejection("TOKEN_INVALID_CLAIMS");
  }
  if (claims.exp < now - CLOCK_LEEWAY_SECONDS) {
    return new Rejection("TOKEN_EXPIRED");
  }
  if (claims.nbf > now + CLOCK_LEEWAY_SECONDS) {
    return new Rejection("TOKEN_NOT_YET_VALID");
  }
  const issuerAccepted = claims.iss === settings.issuer || settings.previousIssuers.includes(claims.iss);
  if (!issuerAccepted || claims.aud !== settings.audience) {
    return new Rejection("TOKEN_INVALID_CLAIMS");
  }
  return claims;
}

/** The token of an `Authorization` header: `Bearer <token>`, the scheme case-insensitive (RFC 7235). */
export function bearerToken(values: readonly string[]): string | Rejection {
  const [value, ...more] = values;
  if (value === undefined) {
    return new Rejection("MISSING_TOKEN");
  }
  // More than one is ambiguous.
  if (more.length > 0) {
    return new Rejection("TOKEN_MALFORMED");
  }
  const match = /^bearer +(\S+)$/i.exec(value.trim());
  return match?.[1] ?? new Rejection("TOKEN_MALFORMED");
}

// `at+jwt`, also as a full media type, case-insensitively (RFC 9068 4).
function isAccessTokenType(typ: string): boolean {
  const lower = typ.toLowerCase();
  return lower === "at+jwt" || lower === "application/at+jwt";
}

function canonicalBase64url(encoded: string): Buffer | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(encoded)) {
    return undefined;
  }
  const decoded = Buffer.from(encoded, "base64url");
  return decoded.toString("base64url") === encoded ? decoded : undefined;
}

function parseJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function optionalString(value: unknown): value is string | undefined {
  return value === undefined || typeof value === "string";
}

function areClaims(value: unknown): value is Claims {
  if (!isObject(value)) {
    return false;
  }
  const strings = ["iss", "sub", "aud", "jti", "username"].every((name) => typeof value[name] === "string");
  const seconds = ["exp", "nbf", "iat"].every((name) => Number.isSafeInteger(value[name]));
  const sid = value.sid === undefined || value.sid === null || typeof value.sid === "string";
  return strings && seconds && sid;
}
