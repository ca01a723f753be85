// A browser's session with authd, kept as authd's cookies intend:
//
// - The access token lives in memory only (this object), never in web
//   storage; the refresh token lives only in the HttpOnly `authd_refresh`
//   cookie (Path=/token), which no script reads. A reload survives through
//   that cookie: `resume()` asks `POST /token/refresh` for a new access token.
// - The token is renewed a margin before it expires, and again when authd
//   answers TOKEN_EXPIRED (a sleeping laptop misses timers).
// - One refresh at a time across the origin's tabs: each refresh runs under
//   a Web Lock, and a tab that renewed tells the others over a
//   BroadcastChannel, so a tab that waited for the lock takes the new token
//   instead of refreshing again (each refresh rotates the refresh cookie).
//   Signing out in one tab signs out the others.
import type { Interceptor } from "@connectrpc/connect";
import { AuthdError, Code, SESSION_KEEPING_REASONS } from "../errors.js";
import {
  createRestClient,
  isMfaRequired,
  type MfaRequiredAnswer,
  type PasskeyCeremony,
  type RestClient,
  type SecondFactor,
  type SessionTokens,
  type User,
} from "../rest.js";

/** What a {@link BrowserSession} holds while signed in. */
export interface SessionState {
  /**
   * The account as authd answered the sign-in or the latest renewal: an
   * address set or verified since shows from the next renewal.
   */
  readonly user: User;
  readonly sessionId: string;
  readonly accessToken: string;
  /** When the access token expires, in milliseconds since the epoch (this browser's clock). */
  readonly expiresAt: number;
  /** How long the access token was valid for when it came, in milliseconds. */
  readonly lifetime: number;
}

/** How {@link createSession} reaches authd and when it renews. */
export interface SessionOptions {
  /** authd's origin (default: the page's own). */
  readonly baseUrl?: string;
  /** `include` when authd is on another origin (default `same-origin`). */
  readonly credentials?: RequestCredentials;
  readonly fetch?: typeof fetch;
  /**
   * How long before the access token expires to renew it, in milliseconds
   * (default: a minute, or a third of the token's lifetime if that is less).
   */
  readonly renewBefore?: number;
  /** The Web Lock and BroadcastChannel name, shared by the origin's tabs (default `authd-session`). */
  readonly name?: string;
}

/**
 * What {@link BrowserSession.completeLogin} and {@link BrowserSession.resetPassword}
 * answer: the new session, and what the proof left.
 */
export interface CompletedSession extends SessionState {
  /** When the proof was a recovery code: how many unused ones are left. */
  readonly recoveryCodesLeft: number | undefined;
}

/** Called with the new state (undefined: signed out) and, when authd ended it, why. */
export type SessionListener = (state: SessionState | undefined, ended?: AuthdError) => void;

/** Messages between the tabs of one origin. */
type TabMessage = { type: "renewed"; state: SessionState } | { type: "ended" };

/** A browser's session; see {@link createSession}. */
export class BrowserSession {
  private state: SessionState | undefined;
  private readonly rest: RestClient;
  private readonly listeners = new Set<SessionListener>();
  private readonly channel: BroadcastChannel | undefined;
  private inFlight: Promise<SessionState> | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly options: SessionOptions = {}) {
    this.rest = createRestClient({
      baseUrl: options.baseUrl ?? "",
      credentials: options.credentials ?? "same-origin",
      ...(options.fetch ? { fetch: options.fetch } : {}),
    });
    if (typeof BroadcastChannel !== "undefined") {
      this.channel = new BroadcastChannel(this.name);
      this.channel.onmessage = (event: MessageEvent<TabMessage>) => this.fromOtherTab(event.data);
    }
  }

  /** The session now; undefined while signed out. */
  get current(): SessionState | undefined {
    return this.state;
  }

  /** Calls `listener` on every change; returns what stops it. */
  subscribe(listener: SessionListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Picks up this browser's session after a load, through the refresh
   * cookie. Undefined when there is none (REFRESH_TOKEN_INVALID: a first
   * visit, or after signing out); other refusals (SESSION_ENDED: it was
   * ended elsewhere) are thrown.
   */
  async resume(): Promise<SessionState | undefined> {
    try {
      return await this.refresh();
    } catch (error) {
      if (error instanceof AuthdError && error.reason === "REFRESH_TOKEN_INVALID") {
        return undefined;
      }
      throw error;
    }
  }

  /**
   * Creates an account and signs in as it. `email` (optional) is stored
   * unverified, and authd mails it a verification link when it sends mail:
   * the state's `user` says the address and whether it is verified.
   */
  async register(username: string, password: string, email?: string): Promise<SessionState> {
    return this.started(
      await this.rest.register({ username, password, ...(email === undefined ? {} : { email }) }),
    );
  }

  /**
   * Starts signing up an account whose only credential is a passkey: pass
   * the ceremony's `optionsJson` to `navigator.credentials.create`, and the
   * credential to {@link registerWithPasskey}.
   */
  startPasskeySignup(username: string): Promise<PasskeyCeremony> {
    return this.rest.startPasskeySignup(username);
  }

  /**
   * Creates the account of a ceremony from {@link startPasskeySignup},
   * without a password, with the credential
   * (`JSON.stringify(credential.toJSON())`), and signs in as it: a session
   * multi-factor on its own.
   */
  async registerWithPasskey(ceremonyId: string, credentialJson: string, name?: string): Promise<SessionState> {
    return this.started(
      await this.rest.registerWithPasskey({ ceremonyId, credentialJson, ...(name === undefined ? {} : { name }) }),
    );
  }

  /**
   * Signs in; or, for an account with a second factor, answers
   * {@link MfaRequiredAnswer} (test with `isMfaRequired`) and is still signed
   * out: pass its ticket to {@link completeLogin} with a code.
   */
  async logIn(username: string, password: string): Promise<SessionState | MfaRequiredAnswer> {
    const answer = await this.rest.login({ username, password });
    return isMfaRequired(answer) ? answer : this.started(answer);
  }

  /**
   * Finishes a sign-in that answered `mfaRequired`, with a TOTP code or a
   * recovery code. A wrong code (MFA_CODE_INVALID) may be tried again with
   * the same ticket, a few times; MFA_TICKET_INVALID means signing in again.
   */
  async completeLogin(ticket: string, second: SecondFactor): Promise<CompletedSession> {
    const completed = await this.rest.completeLogin(ticket, second);
    return { ...this.started(completed), recoveryCodesLeft: completed.recoveryCodesLeft };
  }

  /**
   * Mails a reset link to the account's verified address, if
   * `usernameOrEmail` (a username, or a verified address) names an account
   * with one. Resolves the same way for any name, so a page should say that
   * a link was sent *if* the account has a verified address, never whether
   * it exists. The link opens `{--public-url}/#/reset-password?token=...`.
   */
  requestPasswordReset(usernameOrEmail: string): Promise<void> {
    return this.rest.requestPasswordReset(usernameOrEmail);
  }

  /**
   * A passkey challenge bound to a reset token, for an account whose second
   * factor is a passkey: pass the options JSON to `navigator.credentials.get`
   * and the assertion to {@link resetPassword} as `{ passkeyCredentialJson }`.
   * PASSKEY_NOT_FOUND when the account has no passkey.
   */
  startPasskeyPasswordReset(token: string): Promise<string> {
    return this.rest.startPasskeyPasswordReset(token);
  }

  /**
   * Sets a new password with the token of a reset mail's link (no sign-in
   * needed: the token is the proof) and signs in, as {@link completeLogin}
   * does: every other session of the account ends. An account with a second
   * factor needs `second` too: without it authd answers MFA_REQUIRED and
   * the token stays usable, so ask for a code (or a passkey's assertion for
   * `startPasskeyPasswordReset`'s options) and call again.
   * PASSWORD_RESET_TOKEN_INVALID means the link is expired, used or
   * replaced: request a new one.
   */
  async resetPassword(token: string, newPassword: string, second?: SecondFactor): Promise<CompletedSession> {
    const completed = await this.rest.resetPassword(token, newPassword, second);
    return { ...this.started(completed), recoveryCodesLeft: completed.recoveryCodesLeft };
  }

  /**
   * Starts a passkey sign-in for `username`'s passkeys, or, without one,
   * for whichever passkey the browser offers (autofill): pass the
   * ceremony's `optionsJson` to `navigator.credentials.get`, and the
   * assertion to {@link finishPasskeyLogin}.
   */
  startPasskeyLogin(username?: string): Promise<PasskeyCeremony> {
    return this.rest.startPasskeyLogin(username);
  }

  /**
   * Signs in with the assertion (`JSON.stringify(credential.toJSON())`) for
   * a ceremony from {@link startPasskeyLogin}: a new session, multi-factor
   * on its own.
   */
  async finishPasskeyLogin(ceremonyId: string, credentialJson: string): Promise<SessionState> {
    return this.started(await this.rest.finishPasskeyLogin({ ceremonyId, credentialJson }));
  }

  /**
   * Proves the person is still there (the password, and `second` for an
   * account with a second factor), for calls that refuse an older
   * authentication with REAUTHENTICATION_REQUIRED: the session gets a new
   * access token with a fresh `auth_time`, which the other tabs take too.
   */
  async reauthenticate(password: string, second?: SecondFactor): Promise<SessionState> {
    const renewed = await this.withToken((accessToken) =>
      this.rest.reauthenticate(password, second, { accessToken }),
    );
    return this.started(renewed);
  }

  /** Ends this session (and clears the cookies). */
  async logOut(): Promise<void> {
    await this.withToken((accessToken) => this.rest.logout({ accessToken }));
    this.end(undefined, true);
  }

  /** Ends every session of the account (and clears the cookies). */
  async logOutEverywhere(): Promise<void> {
    await this.withToken((accessToken) => this.rest.logoutAll({ accessToken }));
    this.end(undefined, true);
  }

  /**
   * Changes the password: every session ends, and this browser gets a new
   * one. An account with a second factor needs `second` too, unless this
   * session authenticated with it recently.
   */
  async changePassword(currentPassword: string, newPassword: string, second?: SecondFactor): Promise<SessionState> {
    const tokens = await this.withToken((accessToken) =>
      this.rest.changePassword({ currentPassword, newPassword, ...(second ? { second } : {}) }, { accessToken }),
    );
    return this.started(tokens);
  }

  /** Deletes the account (and clears the cookies); `second` as for {@link changePassword}. */
  async deleteAccount(password: string, second?: SecondFactor): Promise<void> {
    await this.withToken((accessToken) =>
      this.rest.deleteAccount(password, { accessToken, ...(second ? { second } : {}) }),
    );
    this.end(undefined, true);
  }

  /**
   * An access token good for a while yet: the one held, renewed first when
   * it is within the renewal margin. Throws MISSING_TOKEN while signed out.
   */
  async accessToken(): Promise<string> {
    const state = this.state;
    if (state === undefined) {
      throw signedOut();
    }
    return Date.now() < this.renewAt(state) ? state.accessToken : (await this.refresh()).accessToken;
  }

  /**
   * Runs `call` with the access token. If authd answers TOKEN_EXPIRED, the
   * token is renewed and the call made once more; if it refuses the token
   * otherwise (revoked, account disabled, ...), the session is over here
   * too. Either way the refusal is thrown.
   */
  async withToken<T>(call: (accessToken: string) => Promise<T>): Promise<T> {
    const token = await this.accessToken();
    try {
      return await call(token);
    } catch (thrown) {
      const error = AuthdError.from(thrown);
      if (error.reason === "TOKEN_EXPIRED") {
        const renewed = await this.refreshFrom(token);
        return this.settle(call(renewed.accessToken));
      }
      throw this.ended(error);
    }
  }

  /**
   * A Connect interceptor that sends the session's access token with every
   * call of a client built on it, renewing as {@link withToken} does.
   */
  readonly interceptor: Interceptor = (next) => async (request) => {
    const send = (token: string) => {
      request.header.set("authorization", `Bearer ${token}`);
      return next(request);
    };
    return this.withToken(send);
  };

  /**
   * Renews the access token through the refresh cookie, once for all
   * callers in this tab and under a lock shared with the origin's other
   * tabs. Refusals that end the session (SESSION_ENDED,
   * REFRESH_TOKEN_REUSED, ...) sign out and are thrown.
   */
  refresh(): Promise<SessionState> {
    return this.refreshFrom(this.state?.accessToken);
  }

  /** Stops the renewal timer and leaves the tab channel. */
  close(): void {
    clearTimeout(this.timer);
    this.channel?.close();
  }

  private get name(): string {
    return this.options.name ?? "authd-session";
  }

  // `held` is the token the caller found wanting: if another tab (or an
  // earlier caller here) replaced it by the time the lock is ours, and the
  // new one is not itself due, that one is the answer.
  private refreshFrom(held: string | undefined): Promise<SessionState> {
    this.inFlight ??= this.underLock(async () => {
      const state = this.state;
      if (state !== undefined && state.accessToken !== held && Date.now() < this.renewAt(state)) {
        return state;
      }
      let tokens: SessionTokens;
      try {
        tokens = await this.rest.refresh();
      } catch (error) {
        throw this.ended(AuthdError.from(error));
      }
      return this.started(tokens);
    }).finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private underLock<T>(task: () => Promise<T>): Promise<T> {
    const locks = typeof navigator === "undefined" ? undefined : navigator.locks;
    return locks ? locks.request(`${this.name}-refresh`, task) : task();
  }

  private async settle<T>(call: Promise<T>): Promise<T> {
    try {
      return await call;
    } catch (error) {
      throw this.ended(AuthdError.from(error));
    }
  }

  // Takes up a new access token (of a new session, or of this one) and
  // hands it to the other tabs.
  private started(tokens: Pick<SessionTokens, "user" | "sessionId" | "accessToken" | "expiresIn">): SessionState {
    const state: SessionState = {
      user: tokens.user,
      sessionId: tokens.sessionId,
      accessToken: tokens.accessToken,
      expiresAt: Date.now() + tokens.expiresIn * 1000,
      lifetime: tokens.expiresIn * 1000,
    };
    this.set(state);
    this.channel?.postMessage({ type: "renewed", state } satisfies TabMessage);
    return state;
  }

  // A refusal that means the session is over (the token refused, the
  // refresh cookie refused) signs out; a wrong password, or a call asking
  // for a fresher authentication, does not. Returns the error, to be thrown.
  private ended(error: AuthdError): AuthdError {
    const over =
      (error.code === Code.Unauthenticated && !SESSION_KEEPING_REASONS.has(error.reason ?? "")) ||
      error.reason === "ACCOUNT_DISABLED";
    if (over && this.state !== undefined) {
      this.end(error, false);
    }
    return error;
  }

  private end(why: AuthdError | undefined, tellOtherTabs: boolean): void {
    this.set(undefined, why);
    if (tellOtherTabs) {
      this.channel?.postMessage({ type: "ended" } satisfies TabMessage);
    }
  }

  private fromOtherTab(message: TabMessage): void {
    if (message.type === "renewed") {
      this.set(message.state);
    } else if (this.state !== undefined) {
      this.set(undefined);
    }
  }

  private set(state: SessionState | undefined, why?: AuthdError): void {
    this.state = state;
    clearTimeout(this.timer);
    if (state !== undefined) {
      // Tabs holding the same token come due together; a little jitter lets
      // the first one's renewal reach the others before their own timers
      // fire, so they take it up instead of queueing for the lock.
      const jitter = Math.random() * 0.1 * this.margin(state);
      const delay = Math.max(0, this.renewAt(state) - jitter - Date.now());
      this.timer = setTimeout(() => this.renewInBackground(state), delay);
    }
    for (const listener of this.listeners) {
      listener(state, why);
    }
  }

  // A failed renewal that did not end the session (authd unreachable, say)
  // is tried again a little later, while the token may still be good.
  private renewInBackground(state: SessionState): void {
    this.refreshFrom(state.accessToken).catch(() => {
      if (this.state === state) {
        this.timer = setTimeout(() => this.renewInBackground(state), RETRY_RENEWAL_MS);
      }
    });
  }

  private renewAt(state: SessionState): number {
    return state.expiresAt - this.margin(state);
  }

  // How long before expiry to renew: a minute, or a third of the lifetime
  // as received, unless the options say.
  private margin(state: SessionState): number {
    return this.options.renewBefore ?? Math.min(60_000, state.lifetime / 3);
  }
}

const RETRY_RENEWAL_MS = 5_000;

function signedOut(): AuthdError {
  return new AuthdError({ code: Code.Unauthenticated, reason: "MISSING_TOKEN", message: "not signed in" });
}

/** A browser's session with authd; call `resume()` on load. */
export function createSession(options?: SessionOptions): BrowserSession {
  return new BrowserSession(options);
}
