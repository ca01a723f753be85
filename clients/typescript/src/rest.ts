// authd's REST gateway (README.md, "REST"), for what only an HTTP answer can
// do: set and clear the HttpOnly cookies of a browser's session. Works in
// browsers and in Node (global fetch); refusals are AuthdErrors, read from
// the problem+json body.
import { AuthdError, Code, problemError, type Problem } from "./errors.js";

/** An account as authd names it. */
export interface User {
  readonly id: string;
  readonly username: string;
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

/** Whom a token belongs to (`POST /verify`, `GET /user/me`). */
export interface TokenInfo {
  readonly user: User;
  readonly issuedAt: Date;
  readonly expiresAt: Date;
  readonly tokenId: string;
  /** Empty for tokens issued before authd had sessions. */
  readonly sessionId: string;
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
  /** `POST /user/register`: a new account and its first session; sets both cookies. */
  register(credentials: { username: string; password: string }, options?: RestCallOptions): Promise<SessionTokens>;
  /** `POST /login`: a new session; sets both cookies. */
  login(credentials: { username: string; password: string }, options?: RestCallOptions): Promise<SessionTokens>;
  /**
   * `POST /token/refresh`: new tokens for the session of `refreshToken`, or,
   * without one, of the browser's refresh cookie; renews both cookies.
   */
  refresh(refreshToken?: string, options?: RestCallOptions): Promise<SessionTokens>;
  /** `POST /logout`: ends the caller's session; clears both cookies. */
  logout(options?: RestCallOptions): Promise<void>;
  /** `POST /logout/all`: ends every session of the caller; clears both cookies. */
  logoutAll(options?: RestCallOptions): Promise<void>;
  /** `POST /user/password`: every session ends and a new one starts (body and cookies as login). */
  changePassword(
    passwords: { currentPassword: string; newPassword: string },
    options?: RestCallOptions,
  ): Promise<SessionTokens>;
  /** `DELETE /user/me`: the account is gone; clears both cookies. */
  deleteAccount(password: string, options?: RestCallOptions): Promise<void>;
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
    method: "GET" | "POST" | "DELETE",
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
    register: ({ username, password }, callOptions) =>
      call("POST", "/user/register", { username, password }, callOptions).then(sessionTokens),
    login: ({ username, password }, callOptions) =>
      call("POST", "/login", { username, password }, callOptions).then(sessionTokens),
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
    changePassword: ({ currentPassword, newPassword }, callOptions) =>
      call(
        "POST",
        "/user/password",
        { current_password: currentPassword, new_password: newPassword },
        callOptions,
      ).then(sessionTokens),
    deleteAccount: async (password, callOptions) => {
      await call("DELETE", "/user/me", { password }, callOptions);
    },
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
interface TokenBody {
  access_token: string;
  token_type: string;
  expires_in: number;
  user: User;
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
}

interface VerifyJson {
  user: User;
  issued_at: string;
  expires_at: string;
  token_id: string;
  session_id: string;
}

function sessionTokens(body: unknown): SessionTokens {
  const json = body as TokenBody;
  return {
    accessToken: json.access_token,
    tokenType: json.token_type,
    expiresIn: json.expires_in,
    user: { id: json.user.id, username: json.user.username },
    refreshToken: json.refresh_token,
    refreshExpiresIn: json.refresh_expires_in,
    sessionId: json.session_id,
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
  };
}

function tokenInfo(body: unknown): TokenInfo {
  const json = body as VerifyJson;
  return {
    user: { id: json.user.id, username: json.user.username },
    issuedAt: new Date(json.issued_at),
    expiresAt: new Date(json.expires_at),
    tokenId: json.token_id,
    sessionId: json.session_id,
  };
}
