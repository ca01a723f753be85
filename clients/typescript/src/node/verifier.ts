// Verifying authd's access tokens inside a Node service, as
// crates/authd-client does for Rust services:
//
// - Keys come from GetJwks. A token naming a key not held makes the
//   verifier fetch them again: once for all concurrent callers (one promise
//   they all await), at most once per `keyRefreshSpacing`, keeping the keys
//   held when authd cannot be reached. A check of a known key never waits.
// - Revocations come from WatchRevocations, in the manner of a Kubernetes
//   informer: a snapshot, then every change from the snapshot's cursor; on
//   a dropped connection, resume from the last cursor taken up (backing off
//   from 100 ms to 5 s, with jitter); on CURSOR_EXPIRED, a new snapshot. A
//   snapshot is gathered aside and replaces the list whole once complete.
// - Silence is failure: authd sends a checkpoint every few seconds, so no
//   message for `stalenessLimit` drops the watch (a half-open connection
//   cannot hide a logout) and makes the verifier stale; its `stalePolicy`
//   then decides about tokens that pass the local checks.
import type { Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { createAuthdClient, bearer, type AuthdClient } from "../client.js";
import { AuthdError, Code, TOKEN_REASONS } from "../errors.js";
import type { Revocation } from "../gen/auth/v1/auth_pb.js";
import { RevocationList } from "./revocations.js";
import { checkToken, CLOCK_LEEWAY_SECONDS, KeySet, Rejection, type Claims, type TokenReason } from "./token.js";

/**
 * What {@link Verifier.verify} does with a token that passes every local
 * check while the verifier is stale (a logout may have happened that it has
 * not heard of):
 *
 * - `fallBackToAuthd` (default): asks authd's `Verify`, and refuses with
 *   `AUTHD_UNAVAILABLE` when authd cannot answer;
 * - `failClosed`: refuses with `VERIFIER_STALE`;
 * - `failOpen`: accepts. Dangerous: while authd is unreachable, logged-out
 *   tokens keep working until they expire.
 */
export type StalePolicy = "fallBackToAuthd" | "failClosed" | "failOpen";

/** Where a {@link Verifier} reaches authd, and what it accepts. Times are in milliseconds. */
export interface VerifierOptions {
  /** authd's gRPC endpoint, e.g. `http://authd:50051`. */
  readonly url: string;
  /** One of authd's `--revocation-feed-token` values. */
  readonly feedToken: string;
  /** The `iss` tokens must carry: authd's `--issuer` (default `authd`). */
  readonly issuer?: string;
  /**
   * Issuers also accepted besides `issuer`: authd's `--previous-issuer`,
   * after its issuer changed (say, to its `--public-url`), for as long as
   * the tokens issued before live (default: none).
   */
  readonly previousIssuers?: readonly string[];
  /** The `aud` tokens must carry: authd's `--audience` (default `authd`). */
  readonly audience?: string;
  /**
   * How long the feed may stay silent before the verifier is stale (default
   * 15 s: three of authd's 5 s checkpoints). Keep it above authd's
   * `--revocation-checkpoint-interval`.
   */
  readonly stalenessLimit?: number;
  /** Default `fallBackToAuthd`. */
  readonly stalePolicy?: StalePolicy;
  /** The least time between two key fetches prompted by unknown key ids (default 5 s). */
  readonly keyRefreshSpacing?: number;
  /** How often the keys are fetched even when no token asks (default 5 min). */
  readonly keyMaxAge?: number;
  /** How long {@link createVerifier} may take to get the keys and the first snapshot (default 10 s). */
  readonly connectTimeout?: number;
  /** How long one GetJwks or fallback Verify may take (default 2 s). */
  readonly requestTimeout?: number;
  /** The gRPC transport to reach authd with (default: `createGrpcTransport({ baseUrl: url })`). */
  readonly transport?: Transport;
  /** Where connects, disconnects, stale spells and recoveries are told (default: nowhere). */
  readonly logger?: VerifierLogger;
}

/** The subset of `console` a verifier logs to. */
export interface VerifierLogger {
  info(message: string, fields?: object): void;
  warn(message: string, fields?: object): void;
  error(message: string, fields?: object): void;
}

/** Why {@link Verifier.verify} refused a token. */
export type VerifyReason = TokenReason | "AUTHD_UNAVAILABLE" | "VERIFIER_STALE";

/**
 * A refused token, with the reason authd would give; or `AUTHD_UNAVAILABLE`
 * / `VERIFIER_STALE`, which are not the token's fault (answer 503, and the
 * client should retry, not log in again).
 */
export class VerifyError extends Error {
  override readonly name = "VerifyError";

  constructor(readonly reason: VerifyReason) {
    super(DESCRIPTIONS[reason]);
  }

  /** Whether the token itself was refused (rather than the verifier being unable to tell). */
  get isRejection(): boolean {
    return this.reason !== "AUTHD_UNAVAILABLE" && this.reason !== "VERIFIER_STALE";
  }
}

const DESCRIPTIONS: Readonly<Record<VerifyReason, string>> = {
  MISSING_TOKEN: "missing bearer token",
  TOKEN_MALFORMED: "malformed access token",
  TOKEN_INVALID_SIGNATURE: "access token signature is invalid",
  TOKEN_INVALID_CLAIMS: "access token was not issued for this service",
  TOKEN_EXPIRED: "access token has expired",
  TOKEN_NOT_YET_VALID: "access token is not valid yet",
  TOKEN_REVOKED: "access token has been revoked",
  ACCOUNT_DISABLED: "the account is disabled",
  AUTHD_UNAVAILABLE: "authd is unavailable to confirm the token",
  VERIFIER_STALE: "the token cannot be checked for revocation now",
};

/** How a {@link Verifier} is doing, for health checks and dashboards. */
export interface VerifierState {
  /** Whether a watch is open and has delivered a message. */
  readonly connected: boolean;
  /** Whether the feed has been silent longer than the staleness limit. */
  readonly stale: boolean;
  /** The cursor of the last message taken up. */
  readonly cursor: string;
  /** Milliseconds since the last message was taken up; undefined before the first snapshot. */
  readonly lag: number | undefined;
  /** The key ids held. */
  readonly keyIds: readonly string[];
}

/** Why {@link createVerifier} failed: authd refused the feed credential, or did not answer in time. */
export class VerifierConnectError extends Error {
  override readonly name = "VerifierConnectError";

  constructor(
    message: string,
    /** authd's refusal, or the last error seen. */
    readonly lastError: AuthdError | undefined,
  ) {
    super(message, { cause: lastError });
  }
}

const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 5_000;
const PRUNE_INTERVAL_MS = 60_000;

/**
 * Fetches authd's keys, starts following its revocation feed, and resolves
 * once the first snapshot is in. Rejects with {@link VerifierConnectError} when authd
 * refuses the feed credential (`FEED_CREDENTIAL_INVALID`,
 * `REVOCATION_FEED_DISABLED`) or keys and snapshot do not arrive within
 * `connectTimeout`.
 */
export async function createVerifier(options: VerifierOptions): Promise<Verifier> {
  const transport = options.transport ?? createGrpcTransport({ baseUrl: options.url });
  const verifier = new Verifier(options, createAuthdClient(transport));
  try {
    await verifier.started();
  } catch (error) {
    verifier.close();
    throw error;
  }
  return verifier;
}

/** Verifies authd access tokens in-process; made by {@link createVerifier}. */
export class Verifier {
  private keys: KeySet | undefined;
  private revocations = new RevocationList();
  private keyGeneration = 0;
  private lastKeyFetch = 0;
  private keyFetch: Promise<void> | undefined;
  private lastSync: number | undefined;
  private connected = false;
  private staleReported = false;
  private cursor = "";
  private closed = false;
  private readonly stopping = new AbortController();
  private readonly upkeepTimer: ReturnType<typeof setInterval>;
  private lastPrune = Date.now();
  private readonly settings: Required<
    Omit<VerifierOptions, "transport" | "logger" | "url" | "feedToken">
  >;
  private firstSnapshot!: {
    resolve: () => void;
    reject: (error: VerifierConnectError) => void;
    lastError?: AuthdError;
  };

  /** Use {@link createVerifier}. */
  constructor(
    private readonly options: VerifierOptions,
    private readonly client: AuthdClient,
  ) {
    this.settings = {
      issuer: options.issuer ?? "authd",
      previousIssuers: [...(options.previousIssuers ?? [])],
      audience: options.audience ?? "authd",
      stalenessLimit: options.stalenessLimit ?? 15_000,
      stalePolicy: options.stalePolicy ?? "fallBackToAuthd",
      keyRefreshSpacing: options.keyRefreshSpacing ?? 5_000,
      keyMaxAge: options.keyMaxAge ?? 300_000,
      connectTimeout: options.connectTimeout ?? 10_000,
      requestTimeout: options.requestTimeout ?? 2_000,
    };
    const tick = Math.min(1_000, Math.max(50, this.settings.stalenessLimit / 4));
    this.upkeepTimer = setInterval(() => this.upkeep(), tick);
    this.upkeepTimer.unref();
  }

  /**
   * Checks an access token (without `Bearer `) and returns its claims, or
   * throws a {@link VerifyError}. An in-memory check, except for a token
   * naming a key not held (the keys are fetched again first) and a token
   * that passes while the verifier is stale (the stale policy decides).
   */
  async verify(token: string): Promise<Claims> {
    const claims = await this.verifyLocally(token);
    if (!this.isStale()) {
      return claims;
    }
    switch (this.settings.stalePolicy) {
      case "failOpen":
        return claims;
      case "failClosed":
        throw new VerifyError("VERIFIER_STALE");
      case "fallBackToAuthd":
        await this.confirmWithAuthd(token);
        return claims;
    }
  }

  /** How the verifier is doing. */
  state(): VerifierState {
    return {
      connected: this.connected,
      stale: this.isStale(),
      cursor: this.cursor,
      lag: this.lastSync === undefined ? undefined : Date.now() - this.lastSync,
      keyIds: this.keys?.kids ?? [],
    };
  }

  /** Stops following the feed; checks made after it are stale. */
  close(): void {
    this.closed = true;
    clearInterval(this.upkeepTimer);
    this.stopping.abort();
  }

  /** @internal Resolves once keys and the first snapshot are in. */
  started(): Promise<void> {
    const deadline = Date.now() + this.settings.connectTimeout;
    const ready = new Promise<void>((resolve, reject) => {
      this.firstSnapshot = { resolve, reject };
    });
    const timer = setTimeout(() => {
      const { lastError } = this.firstSnapshot;
      const last = lastError ? `; last error: ${lastError.codeName}: ${lastError.message}` : "";
      this.firstSnapshot.reject(new VerifierConnectError(`timed out connecting to authd${last}`, lastError));
    }, this.settings.connectTimeout);
    void this.fetchKeysUntil(deadline).then(
      () => void this.follow(),
      (error: VerifierConnectError) => this.firstSnapshot.reject(error),
    );
    return ready.finally(() => clearTimeout(timer));
  }

  private isStale(): boolean {
    return this.lastSync === undefined || Date.now() - this.lastSync > this.settings.stalenessLimit;
  }

  private async verifyLocally(token: string): Promise<Claims> {
    const generation = this.keyGeneration;
    let checked = this.check(token);
    if (checked instanceof Rejection && checked.reason === "UNKNOWN_KEY") {
      await this.refreshAfterUnknownKey(generation);
      checked = this.check(token);
    }
    if (checked instanceof Rejection) {
      // A key still unknown after the keys were fetched again is a
      // signature nobody can check.
      throw new VerifyError(checked.reason === "UNKNOWN_KEY" ? "TOKEN_INVALID_SIGNATURE" : checked.reason);
    }
    return checked;
  }

  private check(token: string): Claims | Rejection {
    if (this.keys === undefined) {
      return new Rejection("UNKNOWN_KEY");
    }
    const now = Math.floor(Date.now() / 1000);
    const checked = checkToken(token, this.keys, this.settings, now);
    if (checked instanceof Rejection) {
      return checked;
    }
    const revoked = this.revocations.rejection(checked);
    return revoked === undefined ? checked : new Rejection(revoked);
  }

  // Single-flight: callers that find a fetch under way wait for it and
  // check again; a fetch is made only if no other was since the caller's
  // check, and not within the spacing of the last one.
  private async refreshAfterUnknownKey(seen: number): Promise<void> {
    if (this.keyFetch !== undefined) {
      return this.keyFetch;
    }
    if (this.keyGeneration !== seen || Date.now() - this.lastKeyFetch < this.settings.keyRefreshSpacing) {
      return;
    }
    return this.fetchKeys();
  }

  private fetchKeys(): Promise<void> {
    this.keyFetch ??= (async () => {
      this.lastKeyFetch = Date.now();
      try {
        this.keys = await this.loadKeys();
        this.keyGeneration += 1;
      } catch (error) {
        this.options.logger?.warn("cannot fetch authd's keys; keeping those held", { error: String(error) });
      }
    })().finally(() => {
      this.keyFetch = undefined;
    });
    return this.keyFetch;
  }

  private async loadKeys(): Promise<KeySet> {
    const { keys } = await this.client.auth.getJwks({}, { timeoutMs: this.settings.requestTimeout });
    return KeySet.fromJwks(keys);
  }

  private async fetchKeysUntil(deadline: number): Promise<void> {
    for (let attempt = 0; ; attempt += 1) {
      this.lastKeyFetch = Date.now();
      try {
        this.keys = await this.loadKeys();
        return;
      } catch (thrown) {
        if (!(thrown instanceof AuthdError)) {
          throw new VerifierConnectError(`authd published an unusable key: ${String(thrown)}`, undefined);
        }
        const wait = backoff(attempt);
        if (Date.now() + wait >= deadline || this.closed) {
          const why = `${thrown.codeName}: ${thrown.message}`;
          throw new VerifierConnectError(`timed out fetching authd's keys: ${why}`, thrown);
        }
        await sleep(wait);
      }
    }
  }

  private async confirmWithAuthd(token: string): Promise<void> {
    try {
      await this.client.auth.verify({ accessToken: token }, { timeoutMs: this.settings.requestTimeout });
    } catch (error) {
      const reason = error instanceof AuthdError ? error.reason : undefined;
      throw new VerifyError(
        reason !== undefined && TOKEN_REASONS.has(reason) ? (reason as TokenReason) : "AUTHD_UNAVAILABLE",
      );
    }
  }

  // Follows the feed until closed.
  private async follow(): Promise<void> {
    let attempt = 0;
    let linkUp = false;
    while (!this.closed) {
      const ended = await this.watchOnce(() => {
        attempt = 0;
        if (!linkUp) {
          linkUp = true;
          this.options.logger?.info("authd revocation feed connected", { resuming: this.cursor !== "" });
        }
      });
      this.connected = false;
      if (this.closed) {
        return;
      }
      if (ended === "cursor expired" && this.cursor !== "") {
        this.options.logger?.info("authd cannot resume the revocation feed; taking a new snapshot");
        this.cursor = "";
        continue;
      }
      const error =
        ended === "cursor expired"
          ? new AuthdError({ code: Code.FailedPrecondition, message: "authd refused a watch from a snapshot" })
          : ended;
      const refused = error.code === Code.PermissionDenied || error.code === Code.Unauthenticated;
      if (this.lastSync === undefined) {
        this.firstSnapshot.lastError = error;
        if (refused) {
          this.firstSnapshot.reject(
            new VerifierConnectError(
              `authd refused the revocation feed: ${error.reason ?? error.codeName}: ${error.message}`,
              error,
            ),
          );
          this.close();
          return;
        }
      }
      const wait = backoff(attempt);
      attempt += 1;
      if (refused) {
        this.options.logger?.error("authd refused the revocation feed credential", { reason: error.reason });
      } else if (linkUp) {
        this.options.logger?.warn("authd revocation feed disconnected", { code: error.codeName, retryIn: wait });
      }
      linkUp = false;
      await sleep(wait, this.stopping.signal);
    }
  }

  // One WatchRevocations call from the cursor held (none: from a snapshot),
  // until it ends: "cursor expired", or the error that ended it.
  private async watchOnce(onMessage: () => void): Promise<"cursor expired" | AuthdError> {
    const watch = new AbortController();
    const stop = () => watch.abort();
    this.stopping.signal.addEventListener("abort", stop);
    let silent = false;
    let silence: ReturnType<typeof setTimeout> | undefined;
    const listen = () => {
      clearTimeout(silence);
      silence = setTimeout(() => {
        silent = true;
        watch.abort();
      }, this.settings.stalenessLimit);
    };
    // A snapshot is gathered aside and replaces the list only once
    // complete: until then the list held, however old, is the better answer.
    let snapshot: Revocation[] | undefined = this.cursor === "" ? [] : undefined;
    try {
      listen();
      const stream = this.client.revocations.watchRevocations(
        { cursor: this.cursor },
        bearer(this.options.feedToken, { signal: watch.signal }),
      );
      for await (const message of stream) {
        listen();
        this.connected = true;
        onMessage();
        if (snapshot !== undefined) {
          snapshot.push(...message.revocations);
          if (!message.snapshotComplete) {
            continue;
          }
          const list = new RevocationList();
          for (const revocation of snapshot) {
            list.apply(revocation);
          }
          this.revocations = list;
          this.options.logger?.info("authd revocation snapshot taken up", { revocations: snapshot.length });
          snapshot = undefined;
        } else {
          for (const revocation of message.revocations) {
            this.revocations.apply(revocation);
          }
        }
        this.cursor = message.cursor;
        this.synced();
      }
      return new AuthdError({ code: Code.Unavailable, message: "the feed ended" });
    } catch (thrown) {
      if (silent) {
        return new AuthdError({ code: Code.Unavailable, message: "no checkpoint within the staleness limit" });
      }
      const error = AuthdError.from(thrown);
      const expired =
        (error.code === Code.FailedPrecondition && error.reason === "CURSOR_EXPIRED") ||
        (error.code === Code.InvalidArgument && error.reason === "CURSOR_INVALID");
      return expired ? "cursor expired" : error;
    } finally {
      clearTimeout(silence);
      this.stopping.signal.removeEventListener("abort", stop);
    }
  }

  private synced(): void {
    this.lastSync = Date.now();
    if (this.staleReported) {
      this.staleReported = false;
      this.options.logger?.info("authd verifier fresh again", { cursor: this.cursor });
    }
    this.firstSnapshot.resolve();
  }

  // Logs stale spells, forgets revocations no token can use, and fetches
  // the keys every keyMaxAge.
  private upkeep(): void {
    if (this.lastSync !== undefined && this.isStale() && !this.staleReported) {
      this.staleReported = true;
      this.options.logger?.warn("authd verifier stale: revocations may be missed", {
        sinceLastSync: Date.now() - this.lastSync,
        limit: this.settings.stalenessLimit,
      });
    }
    if (Date.now() - this.lastPrune >= PRUNE_INTERVAL_MS) {
      this.lastPrune = Date.now();
      this.revocations.pruneExpiredBefore(Math.floor(Date.now() / 1000) - CLOCK_LEEWAY_SECONDS);
    }
    if (this.keyFetch === undefined && Date.now() - this.lastKeyFetch >= this.settings.keyMaxAge) {
      void this.fetchKeys();
    }
  }
}

/**
 * The wait before reconnection attempt `attempt` (0 first): doubling from
 * 100 ms to 5 s, and between half and all of that at random, so the
 * verifiers of a restarted authd do not all come back in the same instant.
 */
export function backoff(attempt: number): number {
  const ceiling = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** Math.min(attempt, 16));
  return ceiling * (0.5 + Math.random() / 2);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}
