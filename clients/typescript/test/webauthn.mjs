// A software passkey for the tests, with node:crypto only: it answers
// authd's WebAuthn options as a browser with a platform authenticator would
// (an ES256 key, "none" attestation, a discoverable credential) and writes
// what `credential.toJSON()` writes. Not an authenticator anyone should
// use: the key lives in memory, unprotected.
import { createHash, generateKeyPairSync, randomBytes, sign } from "node:crypto";

const FLAG_USER_PRESENT = 0x01;
const FLAG_USER_VERIFIED = 0x04;
const FLAG_ATTESTED_DATA = 0x40;

export class SoftPasskey {
  /** A passkey of a browser on `origin` (e.g. `http://localhost:PORT`). */
  constructor(origin) {
    this.origin = origin;
    this.credentialId = randomBytes(16);
    this.keys = generateKeyPairSync("ec", { namedCurve: "P-256" });
    this.counter = 0;
    this.userHandle = undefined;
  }

  /** The credential id, base64url, as `credential.id` names it. */
  get id() {
    return base64url(this.credentialId);
  }

  /**
   * `credential.toJSON()` of `navigator.credentials.create` with
   * `optionsJson`, stringified; `userVerified` as for {@link assert}.
   */
  register(optionsJson, { userVerified = true } = {}) {
    const options = JSON.parse(optionsJson);
    this.rpId = options.rp.id;
    this.userHandle = options.user.id;
    const jwk = this.keys.publicKey.export({ format: "jwk" });
    // COSE_Key (RFC 9053): EC2, ES256, P-256, x, y.
    const coseKey = cbor(
      new Map([
        [1, 2],
        [3, -7],
        [-1, 1],
        [-2, fromBase64url(jwk.x)],
        [-3, fromBase64url(jwk.y)],
      ]),
    );
    const idLength = Buffer.alloc(2);
    idLength.writeUInt16BE(this.credentialId.length);
    const authenticatorData = Buffer.concat([
      this.authenticatorDataHead(FLAG_USER_PRESENT | (userVerified ? FLAG_USER_VERIFIED : 0) | FLAG_ATTESTED_DATA),
      Buffer.alloc(16),
      idLength,
      this.credentialId,
      coseKey,
    ]);
    const attestationObject = cbor(
      new Map([
        ["fmt", "none"],
        ["attStmt", new Map()],
        ["authData", authenticatorData],
      ]),
    );
    return JSON.stringify({
      id: this.id,
      rawId: this.id,
      type: "public-key",
      authenticatorAttachment: "platform",
      clientExtensionResults: {},
      response: {
        clientDataJSON: base64url(this.clientData("webauthn.create", options.challenge)),
        attestationObject: base64url(attestationObject),
        transports: ["internal"],
      },
    });
  }

  /**
   * `credential.toJSON()` of `navigator.credentials.get` with
   * `optionsJson`, stringified; `userVerified: false` leaves the UV flag
   * clear, as an authenticator that did not verify the user would.
   */
  assert(optionsJson, { userVerified = true } = {}) {
    const options = JSON.parse(optionsJson);
    const clientData = this.clientData("webauthn.get", options.challenge);
    const flags = FLAG_USER_PRESENT | (userVerified ? FLAG_USER_VERIFIED : 0);
    const authenticatorData = this.authenticatorDataHead(flags);
    const signature = sign(
      "sha256",
      Buffer.concat([authenticatorData, sha256(clientData)]),
      this.keys.privateKey,
    );
    return JSON.stringify({
      id: this.id,
      rawId: this.id,
      type: "public-key",
      authenticatorAttachment: "platform",
      clientExtensionResults: {},
      response: {
        clientDataJSON: base64url(clientData),
        authenticatorData: base64url(authenticatorData),
        signature: base64url(signature),
        userHandle: this.userHandle,
      },
    });
  }

  clientData(type, challenge) {
    return Buffer.from(JSON.stringify({ type, challenge, origin: this.origin, crossOrigin: false }));
  }

  // rpIdHash, flags and the signature counter, which counts each use.
  authenticatorDataHead(flags) {
    this.counter += 1;
    const counter = Buffer.alloc(4);
    counter.writeUInt32BE(this.counter);
    return Buffer.concat([sha256(Buffer.from(this.rpId)), Buffer.from([flags]), counter]);
  }
}

function sha256(bytes) {
  return createHash("sha256").update(bytes).digest();
}

function base64url(bytes) {
  return Buffer.from(bytes).toString("base64url");
}

function fromBase64url(text) {
  return Buffer.from(text, "base64url");
}

// The CBOR (RFC 8949) an authenticator writes: integers, byte and text
// strings, and maps with definite lengths.
function cbor(value) {
  if (typeof value === "number") {
    return value >= 0 ? head(0, value) : head(1, -1 - value);
  }
  if (Buffer.isBuffer(value)) {
    return Buffer.concat([head(2, value.length), value]);
  }
  if (typeof value === "string") {
    const bytes = Buffer.from(value);
    return Buffer.concat([head(3, bytes.length), bytes]);
  }
  if (value instanceof Map) {
    return Buffer.concat([head(5, value.size), ...[...value].flatMap(([key, item]) => [cbor(key), cbor(item)])]);
  }
  throw new Error(`no CBOR for ${value}`);
}

function head(major, length) {
  if (length < 24) {
    return Buffer.from([(major << 5) | length]);
  }
  if (length < 0x100) {
    return Buffer.from([(major << 5) | 24, length]);
  }
  const bytes = Buffer.alloc(3);
  bytes[0] = (major << 5) | 25;
  bytes.writeUInt16BE(length, 1);
  return bytes;
}
