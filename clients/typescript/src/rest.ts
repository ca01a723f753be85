// authd's REST gateway (README.md, "REST"), for what only an HTTP answer can
// do: set and clear the HttpOnly cookies of a browser's session. Works in
// browsers and in Node (global fetch); refusals are AuthdErrors, read from
// the problem+json body.
import { AuthdError, Code, problemError, type Problem } from "./errors.js";

/** An account as authd names it. */
export interface User {
  readonly id: string;
  readonly username: string;
  /**
   * The account's email address as given; undefined when it has none, and
   * in answers from the token alone ({@link TokenInfo}: `verify`, `me`).
   */
  readonly email: string | undefined;
  /**
   * Whether the link mailed to `email` came back ({@link RestClient.verifyEmail});
   * false without an address, undefined in answers from the token alone.
   */
  readonly emailVerified: boolean | undefined;
}

/** A session's tokens, as Register, Login, Refresh and ChangePassword answer. */
export interface SessionTokens {
  readonly accessToken: string;
  /** Always `Bearer`. */
  readonly tokenType: string;
  /** Seconds until the access token expires. */
  readonly expiresIn: number;
  readonly user: User;
  /** Also in the HttpOnly refresh cookie; a browser should leave it there. */
  readonly refreshToken: string;
  /** Seconds until the session can no longer be refreshed. */
  readonly refreshExpiresIn: number;
  readonly sessionId: string;
}

/**
 * A Login that needs a second factor: no session yet, and no cookie. Pass
 * the ticket to `completeLogin` with a code.
 */
export interface MfaRequiredAnswer {
  readonly mfaRequired: MfaChallenge;
}

/** What a Login that needs a second factor answers (the proto's `MfaRequired`). */
export interface MfaChallenge {
  /** Opaque and single use, for `completeLogin` only: not a bearer token. */
  readonly ticket: string;
  /** What the account can prove itself with: `totp`, `recovery_code`, `passkey`. */
  readonly methods: readonly string[];
  /** Seconds until the ticket expires. */
  readonly expiresIn: number;
  /**
   * With `passkey`: the WebAuthn request options for the account's passkeys,
   * for `PublicKeyCredential.parseRequestOptionsFromJSON`; their challenge is
   * bound to the ticket.
   */
  readonly passkeyOptionsJson: string | undefined;
}

/** Whether a Login answered {@link MfaRequiredAnswer} rather than with a session. */
export function isMfaRequired<T extends object>(answer: T | MfaRequiredAnswer): answer is MfaRequiredAnswer {
  return "mfaRequired" in answer;
}

/**
 * A second factor: the 6 digits the authenticator app shows now, one of
 * the recovery codes shown at enrollment (each works once), or a passkey's
 * assertion (`JSON.stringify(credential.toJSON())`) for the ticket's
 * `passkeyOptionsJson` or the session's challenge
 * (`POST /user/reauthenticate/passkey`).
 */
export type SecondFactor =
  | { readonly totpCode: string }
  | { readonly recoveryCode: string }
  | { readonly passkeyCredentialJson: string };

/** A Login completed with a second factor, or a password reset: a new session. */
export interface CompletedLogin extends SessionTokens {
  /** When the proof was a recovery code: how many unused ones are left. */
  readonly recoveryCodesLeft: number | undefined;
}

/** A new TOTP secret, pending until confirmed with a code. */
export interface TotpEnrollment {
  /** Base32 without padding, for typing into an authenticator app. */
  readonly secret: string;
  /** `otpauth://totp/ISSUER:USERNAME?secret=...`, what the QR code holds. */
  readonly otpauthUri: string;
  /** The QR code, an SVG document (show it as an image, not as markup). */
  readonly qrSvg: string;
}

/** The caller's second factors (`GET /user/mfa`). */
export interface MfaStatus {
  readonly totpEnabled: boolean;
  /** Unused recovery codes. */
  readonly recoveryCodesLeft: number;
  /** An enrollment started and not yet confirmed. */
  readonly totpPending: boolean;
}

/** A new access token for the caller's session, with a fresh `auth_time` (`POST /user/reauthenticate`). */
export interface Reauthenticated {
  readonly accessToken: string;
  /** Always `Bearer`. */
  readonly tokenType: string;
  /** Seconds until the access token expires. */
  readonly expiresIn: number;
  readonly user: User;
  readonly sessionId: string;
}

/** Whom a token belongs to (`POST /verify`, `GET /user/me`). */
export interface TokenInfo {
  readonly user: User;
  readonly issuedAt: Date;
  readonly expiresAt: Date;
  readonly tokenId: string;
  /** Empty for tokens issued before authd had sessions. */
  readonly sessionId: string;
  /**
   * How the user authenticated (RFC 8176): `pwd`; `pwd`, `otp`, `mfa` with
   * TOTP; `pwd`, `rc`, `mfa` with a recovery code; `hwk` (or `swk`),
   * `user`, `mfa` with a passkey. Empty for tokens issued before authd
   * recorded it.
   */
  readonly amr: readonly string[];
  /** When the user last authenticated; undefined for tokens issued before authd recorded it. */
  readonly authTime: Date | undefined;
  /** 1 for one factor, 2 for two; 0 for tokens issued before authd recorded it. */
  readonly assuranceLevel: number;
}

/** One of the caller's live sessions. */
export interface SessionInfo {
  readonly id: string;
  readonly createdAt: Date;
  readonly lastUsedAt: Date;
  readonly expiresAt: Date;
  /** Whether the caller's token belongs to this session. */
  readonly current: boolean;
  readonly clientAddress: string;
  readonly userAgent: string;
  /** How the session's user last authenticated, as {@link TokenInfo.amr}. */
  readonly amr: readonly string[];
  /** 1 for one factor, 2 for two. */
  readonly assuranceLevel: number;
}

/**
 * A started passkey ceremony (`POST /user/passkeys/registration`, `POST
 * /login/passkey/start`, `POST /user/register/passkey/start`): the WebAuthn options for the browser, and the id
 * to finish it with.
 */
export interface PasskeyCeremony {
  /** Single use; expires in minutes. */
  readonly ceremonyId: string;
  /**
   * The `publicKey` options as JSON, for
   * `PublicKeyCredential.parseCreationOptionsFromJSON` (registration) or
   * `parseRequestOptionsFromJSON` (sign-in).
   */
  readonly optionsJson: string;
}

/** One of the caller's passkeys (the proto's `Passkey`). */
export interface PasskeyInfo {
  /** For {@link RestClient.renamePasskey} and {@link RestClient.removePasskey}. */
  readonly id: string;
  readonly name: string;
  readonly createdAt: Date;
  /** Undefined until the passkey first signs in. */
  readonly lastUsedAt: Date | undefined;
  /** Whether the authenticator says the passkey is backed up (synced). */
  readonly backedUp: boolean;
}

/** An Ed25519 public key (RFC 8037), as in `/.well-known/jwks.json`. */
export interface PublicJwk {
  readonly kty: string;
  readonly crv: string;
  readonly x: string;
  readonly kid: string;
  readonly alg: string;
  readonly use: string;
}

/** How {@link createRestClient} reaches authd. */
export interface RestClientOptions {
  /** authd's origin, e.g. `https://auth.example.com`; `""` for the page's own origin. */
  readonly baseUrl: string;
  /** `fetch` to use (default: the global one). */
  readonly fetch?: typeof fetch;
  /**
   * Whether the browser sends and stores cookies (default `same-origin`;
   * `include` for an authd on another origin, which must list the page's
   * origin in `--cors-allowed-origins`).
   */
  readonly credentials?: RequestCredentials;
}

/** Per call: whose token, and a signal to cancel it. */
export interface RestCallOptions {
  /** Sent as `Authorization: Bearer`; without one, authd reads the access cookie. */
  readonly accessToken?: string;
  readonly signal?: AbortSignal;
}

/** The REST gateway's calls; see {@link createRestClient}. */
export interface RestClient {
  /**
   * `POST /user/register`: a new account and its first session; sets both
   * cookies. `email` (optional) is stored unverified, and a verification
   * mail goes to it when authd sends mail (INVALID_EMAIL for an address
   * authd's rules refuse).
   */
  register(
    credentials: { username: string; password: string; email?: string },
    options?: RestCallOptions,
  ): Promise<SessionTokens>;
  /**
   * `POST /user/register/passkey/start`: starts signing up an account whose
   * only credential is a passkey (USERNAME_TAKEN as `register` says it).
   * Pass `optionsJson` to `navigator.credentials.create`, then the
   * credential to {@link registerWithPasskey}.
   */
  startPasskeySignup(username: string, options?: RestCallOptions): Promise<PasskeyCeremony>;
  /**
   * `POST /user/register/passkey`: the new account, without a password, and
   * its first session, multi-factor on its own; sets both cookies. `name`
   * is the passkey's (`Passkey` when left out).
   */
  registerWithPasskey(
    finish: { ceremonyId: string; credentialJson: string; name?: string },
    options?: RestCallOptions,
  ): Promise<SessionTokens>;
  /**
   * `POST /login`: a new session, setting both cookies; or, for an account
   * with a second factor, {@link MfaRequiredAnswer} and no cookie (see
   * {@link isMfaRequired}).
   */
  login(
    credentials: { username: string; password: string },
    options?: RestCallOptions,
  ): Promise<SessionTokens | MfaRequiredAnswer>;
  /** `POST /login/mfa`: finishes a Login that answered `mfaRequired`; sets both cookies. */
  completeLogin(ticket: string, second: SecondFactor, options?: RestCallOptions): Promise<CompletedLogin>;
  /**
   * `POST /token/refresh`: new tokens for the session of `refreshToken`, or,
   * without one, of the browser's refresh cookie; renews both cookies.
   */
  refresh(refreshToken?: string, options?: RestCallOptions): Promise<SessionTokens>;
  /** `POST /logout`: ends the caller's session; clears both cookies. */
  logout(options?: RestCallOptions): Promise<void>;
  /** `POST /logout/all`: ends every session of the caller; clears both cookies. */
  logoutAll(options?: RestCallOptions): Promise<void>;
  /**
   * `POST /user/password`: every session ends and a new one starts (body
   * and cookies as login). An account with a second factor needs `second`
   * too, unless the token comes from a recent authentication with it
   * (else REAUTHENTICATION_REQUIRED).
   */
  changePassword(
    passwords: { currentPassword: string; newPassword: string; second?: SecondFactor },
    options?: RestCallOptions,
  ): Promise<SessionTokens>;
  /**
   * `PUT /user/password`: gives an account that signs in with passkeys only
   * a password (needs a recent authentication: REAUTHENTICATION_REQUIRED;
   * PASSWORD_ALREADY_SET for an account with one). Sessions stay.
   */
  setPassword(newPassword: string, options?: RestCallOptions): Promise<void>;
  /** `DELETE /user/me`: the account is gone; clears both cookies. `second` as for `changePassword`. */
  deleteAccount(password: string, options?: RestCallOptions & { second?: SecondFactor }): Promise<void>;
  /**
   * `POST /user/mfa/totp`: a new TOTP secret, pending until confirmed
   * (needs a recent authentication: REAUTHENTICATION_REQUIRED).
   */
  startTotpEnrollment(options?: RestCallOptions): Promise<TotpEnrollment>;
  /**
   * `POST /user/mfa/totp/confirm`: TOTP is on; answers the ten recovery
   * codes, shown this once. Every other session of the account ends.
   */
  confirmTotpEnrollment(code: string, options?: RestCallOptions): Promise<string[]>;
  /** `GET /user/mfa`: the caller's second factors. */
  mfaStatus(options?: RestCallOptions): Promise<MfaStatus>;
  /**
   * `DELETE /user/mfa/totp`: TOTP and the recovery codes are gone. Needs
   * `second`, unless the token comes from a recent authentication with it.
   * Every other session of the account ends.
   */
  disableTotp(second?: SecondFactor, options?: RestCallOptions): Promise<void>;
  /** `POST /user/mfa/recovery-codes`: a new set, shown this once; `second` as for `disableTotp`. */
  regenerateRecoveryCodes(second?: SecondFactor, options?: RestCallOptions): Promise<string[]>;
  /**
   * `POST /user/reauthenticate`: the password (and `second`, for an account
   * with one) again; the same session gets a new access token with a fresh
   * `auth_time`, also set as the access cookie.
   */
  reauthenticate(password: string, second?: SecondFactor, options?: RestCallOptions): Promise<Reauthenticated>;
  /**
   * `POST /user/reauthenticate/passkey`: a passkey challenge for the
   * caller's session (single use; a new one replaces it). Its assertion is
   * `{ passkeyCredentialJson }`, the `second` of a step-up call
   * (PASSKEY_NOT_FOUND when the account has no passkey). Answers the
   * request options JSON for `navigator.credentials.get`.
   */
  startPasskeyReauthentication(options?: RestCallOptions): Promise<string>;
  /**
   * `POST /user/passkeys/registration`: starts adding a passkey (needs a
   * recent authentication: REAUTHENTICATION_REQUIRED). Pass `optionsJson`
   * to `navigator.credentials.create`, then the credential to
   * {@link finishPasskeyRegistration}.
   */
  startPasskeyRegistration(options?: RestCallOptions): Promise<PasskeyCeremony>;
  /**
   * `POST /user/passkeys`: the new passkey, from `credential.toJSON()`
   * (stringified) of what `navigator.credentials.create` gave; `name` is
   * `Passkey` when left out.
   */
  finishPasskeyRegistration(
    finish: { ceremonyId: string; credentialJson: string; name?: string },
    options?: RestCallOptions,
  ): Promise<PasskeyInfo>;
  /** `GET /user/passkeys`: the caller's passkeys, oldest first. */
  listPasskeys(options?: RestCallOptions): Promise<PasskeyInfo[]>;
  /** `PATCH /user/passkeys/{id}`: renames one of the caller's passkeys. */
  renamePasskey(passkeyId: string, name: string, options?: RestCallOptions): Promise<void>;
  /** `DELETE /user/passkeys/{id}`: removes one of the caller's passkeys; `second` as for `disableTotp`. */
  removePasskey(passkeyId: string, second?: SecondFactor, options?: RestCallOptions): Promise<void>;
  /**
   * `POST /login/passkey/start`: starts a passkey sign-in for `username`'s
   * passkeys, or, without one, for whichever passkey the browser offers
   * (autofill). Pass `optionsJson` to `navigator.credentials.get`, then the
   * assertion to {@link finishPasskeyLogin}.
   */
  startPasskeyLogin(username?: string, options?: RestCallOptions): Promise<PasskeyCeremony>;
  /**
   * `POST /login/passkey`: a new session from `credential.toJSON()`
   * (stringified) of what `navigator.credentials.get` gave, multi-factor on
   * its own; sets both cookies.
   */
  finishPasskeyLogin(
    finish: { ceremonyId: string; credentialJson: string },
    options?: RestCallOptions,
  ): Promise<SessionTokens>;
  /**
   * `PUT /user/email`: sets or replaces the caller's address, unverified
   * until the link mailed to it comes back to {@link verifyEmail}; an
   * earlier link stops working. Step-up protected: `second` as for
   * `disableTotp` (else REAUTHENTICATION_REQUIRED when the token's
   * authentication is too old or lacks the account's second factor).
   * Answers the account with its new address. Refusals: INVALID_EMAIL (on
   * `email`), MAIL_NOT_CONFIGURED, RATE_LIMITED.
   */
  setEmail(email: string, second?: SecondFactor, options?: RestCallOptions): Promise<User>;
  /**
   * `POST /user/email/verify`: the token of a verification mail's link (its
   * `#/verify-email?token=` fragment; no bearer: the token is the proof)
   * marks the address it was mailed to verified, and answers the account.
   * Refusals: EMAIL_TOKEN_INVALID (malformed, unknown, expired, used, or
   * voided by a newer mail), EMAIL_TAKEN (another account verified the
   * address first), MAIL_NOT_CONFIGURED.
   */
  verifyEmail(token: string, options?: Omit<RestCallOptions, "accessToken">): Promise<User>;
  /**
   * `POST /user/email/verification`: mails a new link to the caller's
   * unverified address; the previous one stops working. Refusals:
   * EMAIL_NOT_SET, EMAIL_ALREADY_VERIFIED, MAIL_NOT_CONFIGURED, RATE_LIMITED.
   */
  resendEmailVerification(options?: RestCallOptions): Promise<void>;
  /**
   * `POST /user/password/reset`: mails a reset link to the account's
   * verified address, if `usernameOrEmail` names an account that has one (a
   * username, or a verified address). No bearer. Resolves the same way
   * whatever the name, so that nobody learns which accounts exist: whether a
   * mail went out is for the mailbox to say. The link is
   * `{--public-url}/#/reset-password?token=authd_pr_...`; a newer request
   * voids it. Refusals: FIELD_REQUIRED or INVALID_USERNAME_OR_EMAIL (empty,
   * over 254 characters), MAIL_NOT_CONFIGURED, RATE_LIMITED (per client
   * address, as login).
   */
  requestPasswordReset(usernameOrEmail: string, options?: Omit<RestCallOptions, "accessToken">): Promise<void>;
  /**
   * `POST /user/password/reset/confirm`: the reset link's token and the new
   * password (and `second` for an account with a second factor) replace the
   * password; every session of the account ends and a new one starts (body
   * and cookies as {@link completeLogin}). No bearer: the token is the
   * proof. Refusals: PASSWORD_RESET_TOKEN_INVALID (on `token`: malformed,
   * unknown, expired, used, or voided by a newer request), MFA_REQUIRED
   * (FAILED_PRECONDITION, 403: the account has a second factor and `second`
   * is missing; the token stays usable), MFA_CODE_INVALID, the password
   * rules' reasons on `new_password` (PASSWORD_TOO_SHORT,
   * PASSWORD_TOO_COMMON, ...), MAIL_NOT_CONFIGURED.
   */
  resetPassword(
    token: string,
    newPassword: string,
    second?: SecondFactor,
    options?: Omit<RestCallOptions, "accessToken">,
  ): Promise<CompletedLogin>;
  /**
   * `POST /user/password/reset/passkey`: a passkey challenge bound to the
   * reset token, for an account whose second factor is a passkey. Answers
   * the request options JSON for `navigator.credentials.get`; its assertion
   * is the `{ passkeyCredentialJson }` of {@link resetPassword}. Refusals:
   * PASSWORD_RESET_TOKEN_INVALID, PASSKEY_NOT_FOUND (404: the account has
   * no passkey), MAIL_NOT_CONFIGURED.
   */
  startPasskeyPasswordReset(token: string, options?: Omit<RestCallOptions, "accessToken">): Promise<string>;
  /** `GET /user/sessions`: the caller's live sessions, newest first. */
  listSessions(options?: RestCallOptions): Promise<SessionInfo[]>;
  /** `DELETE /user/sessions/{id}`: ends one of the caller's sessions. */
  revokeSession(sessionId: string, options?: RestCallOptions): Promise<void>;
  /** `POST /verify`: whom any access token belongs to. */
  verify(accessToken: string, options?: Omit<RestCallOptions, "accessToken">): Promise<TokenInfo>;
  /** `GET /user/me`: whom the caller is logged in as. */
  me(options?: RestCallOptions): Promise<TokenInfo>;
  /** `GET /.well-known/jwks.json`: the keys tokens are signed with. */
  jwks(options?: Omit<RestCallOptions, "accessToken">): Promise<PublicJwk[]>;
}

/** authd's REST gateway at `baseUrl`. */
export function createRestClient(options: RestClientOptions): RestClient {
  const baseUrl = options.baseUrl.replace(/\/+$/, "");
  const credentials = options.credentials ?? "same-origin";

  async function call(
    method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE",
    path: string,
    body: object | undefined,
    { accessToken, signal }: RestCallOptions = {},
  ): Promise<unknown> {
    const doFetch = options.fetch ?? globalThis.fetch;
    const headers = new Headers();
    if (accessToken !== undefined) {
      // authd reads the header before the access cookie, so the call acts
      // for the token given, whatever cookie the browser holds.
      headers.set("authorization", `Bearer ${accessToken}`);
    }
    if (body !== undefined) {
      headers.set("content-type", "application/json");
    }
    let response: Response;
    try {
      response = await doFetch(`${baseUrl}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials,
        signal,
      });
    } catch (error) {
      throw new AuthdError({
        code: signal?.aborted ? Code.Canceled : Code.Unavailable,
        message: `${method} ${path}: no answer from authd (${String(error)})`,
        cause: error,
      });
    }
    if (response.ok) {
      return response.json();
    }
    const problem: Problem = response.headers.get("content-type")?.startsWith("application/problem+json")
      ? ((await response.json()) as Problem)
      : {};
    throw problemError(
      response.status,
      problem,
      response.headers.get("retry-after"),
      `${method} ${path} answered ${response.status}`,
    );
  }

  return {
    register: ({ username, password, email }, callOptions) =>
      call(
        "POST",
        "/user/register",
        { username, password, ...(email === undefined ? {} : { email }) },
        callOptions,
      ).then(sessionTokens),
    startPasskeySignup: (username, callOptions) =>
      call("POST", "/user/register/passkey/start", { username }, callOptions).then(passkeyCeremony),
    registerWithPasskey: ({ ceremonyId, credentialJson, name }, callOptions) =>
      call(
        "POST",
        "/user/register/passkey",
        { ceremony_id: ceremonyId, credential_json: credentialJson, ...(name === undefined ? {} : { name }) },
        callOptions,
      ).then(sessionTokens),
    login: ({ username, password }, callOptions) =>
      call("POST", "/login", { username, password }, callOptions).then(loginAnswer),
    completeLogin: (ticket, second, callOptions) =>
      call("POST", "/login/mfa", { ticket, ...secondFactorBody(second) }, callOptions).then(completedLogin),
    refresh: (refreshToken, callOptions) =>
      call(
        "POST",
        "/token/refresh",
        refreshToken === undefined ? undefined : { refresh_token: refreshToken },
        callOptions,
      ).then(sessionTokens),
    logout: async (callOptions) => {
      await call("POST", "/logout", undefined, callOptions);
    },
    logoutAll: async (callOptions) => {
      await call("POST", "/logout/all", undefined, callOptions);
    },
    changePassword: ({ currentPassword, newPassword, second }, callOptions) =>
      call(
        "POST",
        "/user/password",
        { current_password: currentPassword, new_password: newPassword, ...secondFactorBody(second) },
        callOptions,
      ).then(sessionTokens),
    setPassword: async (newPassword, callOptions) => {
      await call("PUT", "/user/password", { new_password: newPassword }, callOptions);
    },
    deleteAccount: async (password, callOptions) => {
      await call("DELETE", "/user/me", { password, ...secondFactorBody(callOptions?.second) }, callOptions);
    },
    startTotpEnrollment: (callOptions) =>
      call("POST", "/user/mfa/totp", undefined, callOptions).then((body) => {
        const json = body as { secret: string; otpauth_uri: string; qr_svg: string };
        return { secret: json.secret, otpauthUri: json.otpauth_uri, qrSvg: json.qr_svg };
      }),
    confirmTotpEnrollment: (code, callOptions) =>
      call("POST", "/user/mfa/totp/confirm", { code }, callOptions).then(recoveryCodes),
    mfaStatus: (callOptions) =>
      call("GET", "/user/mfa", undefined, callOptions).then((body) => {
        const json = body as { totp_enabled: boolean; recovery_codes_left: number; totp_pending: boolean };
        return {
          totpEnabled: json.totp_enabled,
          recoveryCodesLeft: json.recovery_codes_left,
          totpPending: json.totp_pending,
        };
      }),
    disableTotp: async (second, callOptions) => {
      await call("DELETE", "/user/mfa/totp", optionalSecondFactorBody(second), callOptions);
    },
    regenerateRecoveryCodes: (second, callOptions) =>
      call("POST", "/user/mfa/recovery-codes", optionalSecondFactorBody(second), callOptions).then(
        recoveryCodes,
      ),
    reauthenticate: (password, second, callOptions) =>
      call("POST", "/user/reauthenticate", { password, ...secondFactorBody(second) }, callOptions).then(
        (body) => {
          const json = body as Omit<TokenBody, "refresh_token" | "refresh_expires_in">;
          return {
            accessToken: json.access_token,
            tokenType: json.token_type,
            expiresIn: json.expires_in,
            user: user(json.user),
            sessionId: json.session_id,
          };
        },
      ),
    startPasskeyReauthentication: (callOptions) =>
      call("POST", "/user/reauthenticate/passkey", undefined, callOptions).then(
        (body) => (body as { options_json: string }).options_json,
      ),
    startPasskeyRegistration: (callOptions) =>
      call("POST", "/user/passkeys/registration", undefined, callOptions).then(passkeyCeremony),
    finishPasskeyRegistration: ({ ceremonyId, credentialJson, name }, callOptions) =>
      call(
        "POST",
        "/user/passkeys",
        { ceremony_id: ceremonyId, credential_json: credentialJson, ...(name === undefined ? {} : { name }) },
        callOptions,
      ).then((body) => passkeyInfo(body as PasskeyJson)),
    listPasskeys: (callOptions) =>
      call("GET", "/user/passkeys", undefined, callOptions).then((body) =>
        (body as { passkeys: PasskeyJson[] }).passkeys.map(passkeyInfo),
      ),
    renamePasskey: async (passkeyId, name, callOptions) => {
      await call("PATCH", `/user/passkeys/${encodeURIComponent(passkeyId)}`, { name }, callOptions);
    },
    removePasskey: async (passkeyId, second, callOptions) => {
      await call(
        "DELETE",
        `/user/passkeys/${encodeURIComponent(passkeyId)}`,
        optionalSecondFactorBody(second),
        callOptions,
      );
    },
    startPasskeyLogin: (username, callOptions) =>
      call("POST", "/login/passkey/start", username ? { username } : {}, callOptions).then(passkeyCeremony),
    finishPasskeyLogin: ({ ceremonyId, credentialJson }, callOptions) =>
      call(
        "POST",
        "/login/passkey",
        { ceremony_id: ceremonyId, credential_json: credentialJson },
        callOptions,
      ).then(sessionTokens),
    setEmail: (email, second, callOptions) =>
      call("PUT", "/user/email", { email, ...secondFactorBody(second) }, callOptions).then(answeredUser),
    verifyEmail: (token, callOptions) =>
      call("POST", "/user/email/verify", { token }, callOptions).then(answeredUser),
    resendEmailVerification: async (callOptions) => {
      await call("POST", "/user/email/verification", undefined, callOptions);
    },
    requestPasswordReset: async (usernameOrEmail, callOptions) => {
      await call("POST", "/user/password/reset", { username_or_email: usernameOrEmail }, callOptions);
    },
    resetPassword: (token, newPassword, second, callOptions) =>
      call(
        "POST",
        "/user/password/reset/confirm",
        { token, new_password: newPassword, ...secondFactorBody(second) },
        callOptions,
      ).then(completedLogin),
    startPasskeyPasswordReset: (token, callOptions) =>
      call("POST", "/user/password/reset/passkey", { token }, callOptions).then(
        (body) => (body as { passkey_options_json: string }).passkey_options_json,
      ),
    listSessions: (callOptions) =>
      call("GET", "/user/sessions", undefined, callOptions).then((body) =>
        (body as { sessions: SessionJson[] }).sessions.map(sessionInfo),
      ),
    revokeSession: async (sessionId, callOptions) => {
      await call("DELETE", `/user/sessions/${encodeURIComponent(sessionId)}`, undefined, callOptions);
    },
    verify: (accessToken, callOptions) =>
      call("POST", "/verify", { access_token: accessToken }, callOptions).then(tokenInfo),
    me: (callOptions) => call("GET", "/user/me", undefined, callOptions).then(tokenInfo),
    jwks: (callOptions) =>
      call("GET", "/.well-known/jwks.json", undefined, callOptions).then(
        (body) => (body as { keys: PublicJwk[] }).keys,
      ),
  };
}

// The REST gateway's JSON, snake_case as in its OpenAPI document.
interface UserJson {
  id: string;
  username: string;
  // Absent when the account has none, and where the answer comes from the
  // token alone (`/verify`, `/user/me`), which leaves out email_verified too.
  email?: string;
  email_verified?: boolean;
}

interface TokenBody {
  access_token: string;
  token_type: string;
  expires_in: number;
  user: UserJson;
  refresh_token: string;
  refresh_expires_in: number;
  session_id: string;
}

interface SessionJson {
  id: string;
  created_at: string;
  last_used_at: string;
  expires_at: string;
  current: boolean;
  client_address: string;
  user_agent: string;
  amr?: string[];
  assurance_level?: number;
}

interface VerifyJson {
  user: UserJson;
  issued_at: string;
  expires_at: string;
  token_id: string;
  session_id: string;
  amr?: string[];
  auth_time?: string;
  assurance_level?: number;
}

interface PasskeyJson {
  id: string;
  name: string;
  created_at: string;
  last_used_at?: string;
  backed_up: boolean;
}

interface MfaRequiredJson {
  mfa_required: { ticket: string; methods: string[]; expires_in: number; passkey_options_json?: string };
}

function loginAnswer(body: unknown): SessionTokens | MfaRequiredAnswer {
  if (typeof body === "object" && body !== null && "mfa_required" in body) {
    const { ticket, methods, expires_in, passkey_options_json } = (body as MfaRequiredJson).mfa_required;
    return { mfaRequired: { ticket, methods, expiresIn: expires_in, passkeyOptionsJson: passkey_options_json } };
  }
  return sessionTokens(body);
}

// The proto's oneof, as the REST bodies name its fields.
function secondFactorBody(
  second: SecondFactor | undefined,
): { totp_code?: string; recovery_code?: string; passkey_credential_json?: string } {
  if (second === undefined) {
    return {};
  }
  if ("totpCode" in second) {
    return { totp_code: second.totpCode };
  }
  if ("recoveryCode" in second) {
    return { recovery_code: second.recoveryCode };
  }
  return { passkey_credential_json: second.passkeyCredentialJson };
}

// DisableTotp and RegenerateRecoveryCodes take no body when the token's own
// authentication is proof enough.
function optionalSecondFactorBody(second: SecondFactor | undefined): object | undefined {
  return second === undefined ? undefined : secondFactorBody(second);
}

function recoveryCodes(body: unknown): string[] {
  return (body as { recovery_codes: string[] }).recovery_codes;
}

function user(json: UserJson): User {
  return { id: json.id, username: json.username, email: json.email, emailVerified: json.email_verified };
}

// SetEmail's and VerifyEmail's answer: `{"user"}`.
function answeredUser(body: unknown): User {
  return user((body as { user: UserJson }).user);
}

function sessionTokens(body: unknown): SessionTokens {
  const json = body as TokenBody;
  return {
    accessToken: json.access_token,
    tokenType: json.token_type,
    expiresIn: json.expires_in,
    user: user(json.user),
    refreshToken: json.refresh_token,
    refreshExpiresIn: json.refresh_expires_in,
    sessionId: json.session_id,
  };
}

// CompleteLogin's and ResetPassword's answer: a session, and what a
// recovery code left.
function completedLogin(body: unknown): CompletedLogin {
  return {
    ...sessionTokens(body),
    recoveryCodesLeft: (body as { recovery_codes_left?: number }).recovery_codes_left,
  };
}

function passkeyCeremony(body: unknown): PasskeyCeremony {
  const json = body as { ceremony_id: string; options_json: string };
  return { ceremonyId: json.ceremony_id, optionsJson: json.options_json };
}

function passkeyInfo(json: PasskeyJson): PasskeyInfo {
  return {
    id: json.id,
    name: json.name,
    createdAt: new Date(json.created_at),
    lastUsedAt: json.last_used_at === undefined ? undefined : new Date(json.last_used_at),
    backedUp: json.backed_up,
  };
}

function sessionInfo(json: SessionJson): SessionInfo {
  return {
    id: json.id,
    createdAt: new Date(json.created_at),
    lastUsedAt: new Date(json.last_used_at),
    expiresAt: new Date(json.expires_at),
    current: json.current,
    clientAddress: json.client_address,
    userAgent: json.user_agent,
    amr: json.amr ?? [],
    assuranceLevel: json.assurance_level ?? 0,
  };
}

function tokenInfo(body: unknown): TokenInfo {
  const json = body as VerifyJson;
  return {
    user: user(json.user),
    issuedAt: new Date(json.issued_at),
    expiresAt: new Date(json.expires_at),
    tokenId: json.token_id,
    sessionId: json.session_id,
    amr: json.amr ?? [],
    authTime: json.auth_time === undefined ? undefined : new Date(json.auth_time),
    assuranceLevel: json.assurance_level ?? 0,
  };
}
