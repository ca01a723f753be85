// The page's client for the authd that served it: one function per call,
// one error type for every refusal.
//
// Calls that start, renew or end a session in this browser go through the
// REST gateway, because only an HTTP response can set or clear the HttpOnly
// refresh cookie: register, log in, refresh, change password, log out,
// delete the account. The calls that only need the access token (Verify,
// ListSessions, RevokeSession) use grpc-web through Connect.
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { AuthService } from "./gen/auth/v1/auth_pb";
import { ErrorInfoSchema } from "./gen/google/rpc/error_details_pb";

/** An account as authd names it. */
export interface User {
  id: string;
  username: string;
}

/** What the page keeps of a session: the refresh token stays in its cookie. */
export interface Tokens {
  accessToken: string;
  user: User;
}

/** One of the caller's live sessions. */
export interface SessionInfo {
  id: string;
  createdAt: Date;
  lastUsedAt: Date;
  expiresAt: Date;
  /** Whether the token the list was asked with belongs to this session. */
  current: boolean;
  clientAddress: string;
  userAgent: string;
}

/** Whom a token belongs to. */
export interface TokenInfo {
  user: User;
  expiresAt: Date;
}

/** One field of a request that authd refused, named as in the request. */
export interface FieldError {
  /** `username`, `password`, `current_password`, `new_password`. */
  field: string;
  reason: string;
  /** authd's own words, in English. */
  detail: string;
}

/**
 * A call authd refused, or one that never got an answer. `reason` is
 * authd's stable reason, the same on both surfaces, and what the page words
 * its message after; `status` is what the surface itself answered (a gRPC
 * code name, or an HTTP status line), for developers only.
 */
export class AuthdError extends Error {
  constructor(
    readonly status: string,
    readonly reason: string | undefined,
    message: string,
    /** UNAUTHENTICATED over gRPC, 401 over HTTP. */
    readonly unauthenticated: boolean,
    /** Every invalid field of the request, when authd named them. */
    readonly fieldErrors: readonly FieldError[] = [],
  ) {
    super(message);
    this.name = "AuthdError";
  }
}

const grpc = createClient(
  AuthService,
  createGrpcWebTransport({
    // authd serves the page and the API on one port, so no CORS is involved.
    baseUrl: window.location.origin,
    useBinaryFormat: true,
  }),
);

/** Creates an account and starts a session; sets both cookies. */
export function register(username: string, password: string): Promise<Tokens> {
  return post("/user/register", { body: { username, password } }).then(tokens);
}

/** Starts a session; sets both cookies. */
export function logIn(username: string, password: string): Promise<Tokens> {
  return post("/login", { body: { username, password } }).then(tokens);
}

/** Renews the session of this browser's refresh cookie, and the cookies. */
export function refresh(): Promise<Tokens> {
  return post("/token/refresh", {}).then(tokens);
}

/**
 * Changes the password: every session of the account ends, and the answer
 * (and the cookies) carry a new one.
 */
export function changePassword(
  accessToken: string,
  currentPassword: string,
  newPassword: string,
): Promise<Tokens> {
  return post("/user/password", {
    accessToken,
    body: { current_password: currentPassword, new_password: newPassword },
  }).then(tokens);
}

/** Ends the session the token belongs to, and clears both cookies. */
export async function logOut(accessToken: string): Promise<void> {
  await post("/logout", { accessToken });
}

/** Deletes the account the token belongs to, and clears both cookies. */
export async function deleteAccount(accessToken: string, password: string): Promise<void> {
  await rest("DELETE", "/user/me", { accessToken, body: { password } });
}

/** Whom any access token belongs to. */
export async function verify(accessToken: string): Promise<TokenInfo> {
  const { user, expiresAt } = await grpcCall(() => grpc.verify({ accessToken }));
  return { user: required(user), expiresAt: date(expiresAt) };
}

/** The live sessions of the token's account, newest first. */
export async function listSessions(accessToken: string): Promise<SessionInfo[]> {
  const { sessions } = await grpcCall(() => grpc.listSessions({}, bearer(accessToken)));
  return sessions.map((session) => ({
    id: session.id,
    createdAt: date(session.createdAt),
    lastUsedAt: date(session.lastUsedAt),
    expiresAt: date(session.expiresAt),
    current: session.current,
    clientAddress: session.clientAddress,
    userAgent: session.userAgent,
  }));
}

/** Ends one of the token's account's sessions. */
export async function revokeSession(accessToken: string, sessionId: string): Promise<void> {
  await grpcCall(() => grpc.revokeSession({ sessionId }, bearer(accessToken)));
}

function bearer(accessToken: string): { headers: Record<string, string> } {
  return { headers: { authorization: `Bearer ${accessToken}` } };
}

/** The REST gateway's answer to a new session (`TokenBody` in its OpenAPI). */
interface TokenBody {
  access_token: string;
  user: User;
}

function tokens(body: unknown): Tokens {
  const { access_token, user } = body as TokenBody;
  return { accessToken: access_token, user: { id: user.id, username: user.username } };
}

/**
 * An RFC 9457 problem as the REST gateway sends it; a 400 names every
 * invalid field in `errors`.
 */
interface Problem {
  title?: string;
  status?: number;
  detail?: string;
  reason?: string;
  errors?: FieldError[];
}

function post(
  path: string,
  options: { accessToken?: string; body?: object },
): Promise<unknown> {
  return rest("POST", path, options);
}

async function rest(
  method: "POST" | "DELETE",
  path: string,
  { accessToken, body }: { accessToken?: string; body?: object },
): Promise<unknown> {
  const headers = new Headers();
  if (accessToken !== undefined) {
    // Sent even though the access cookie goes along: the header wins over
    // the cookie, so the call acts for the session this page shows.
    headers.set("authorization", `Bearer ${accessToken}`);
  }
  if (body !== undefined) {
    headers.set("content-type", "application/json");
  }
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      // The default, stated: the cookies are sent and stored only for
      // authd's own origin.
      credentials: "same-origin",
    });
  } catch (error) {
    throw new AuthdError(
      `NO ANSWER (${String(error)})`,
      undefined,
      "authd did not answer: check the connection, then try again.",
      false,
    );
  }
  if (response.ok) {
    return response.json();
  }
  const problem: Problem = response.headers
    .get("content-type")
    ?.startsWith("application/problem+json")
    ? await response.json()
    : {};
  throw new AuthdError(
    `${response.status} ${problem.title ?? response.statusText}`.trim(),
    problem.reason,
    problem.detail ?? `${method} ${path} failed`,
    response.status === 401,
    problem.errors,
  );
}

// gRPC's names for its status codes, indexed by code. Connect numbers its
// codes the same way but names them differently (e.g. `Canceled`).
const GRPC_CODE_NAMES = [
  "OK",
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
];
const UNAUTHENTICATED = GRPC_CODE_NAMES.indexOf("UNAUTHENTICATED");

async function grpcCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (thrown) {
    const error = ConnectError.from(thrown);
    // authd puts an ErrorInfo on every error; a failure before reaching it
    // (e.g. the network) has none. No call the page makes over grpc-web has
    // a field authd checks, so there is no google.rpc.BadRequest to read.
    const [info] = error.findDetails(ErrorInfoSchema);
    throw new AuthdError(
      GRPC_CODE_NAMES[error.code] ?? `code ${error.code}`,
      info?.reason,
      error.rawMessage,
      error.code === UNAUTHENTICATED,
    );
  }
}

function date(timestamp: Timestamp | undefined): Date {
  return timestampDate(required(timestamp));
}

// Message fields are optional in proto3; authd always sets these.
function required<T>(field: T | undefined): T {
  if (field === undefined) {
    throw new Error("authd left out a field it always sends");
  }
  return field;
}
