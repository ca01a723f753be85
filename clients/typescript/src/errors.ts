// One error type for every refusal, whichever surface answered: authd puts
// a google.rpc.ErrorInfo (domain "authd") on every gRPC error and a `reason`
// in every problem+json body, and both carry the same reasons (README.md,
// "The API"). Clients branch on `reason`, never on a message.
import { Code, ConnectError } from "@connectrpc/connect";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  RetryInfoSchema,
} from "./gen/google/rpc/error_details_pb.js";

export { Code };

/** The `google.rpc.ErrorInfo.domain` of authd's errors. */
export const ERROR_DOMAIN = "authd";

/** One invalid field of a request (`google.rpc.BadRequest`, or a REST `errors[]` entry). */
export interface FieldViolation {
  /** As named in the request: `username`, `password`, `current_password`, `new_password`, `email`, `token`. */
  readonly field: string;
  /** A reason of its own, e.g. `PASSWORD_TOO_SHORT`. */
  readonly reason: string;
  /** authd's words, in English, for developers. */
  readonly description: string;
}

/** What {@link AuthdError}'s constructor takes. */
export interface AuthdErrorInit {
  code: Code;
  reason?: string | undefined;
  message: string;
  retryAfter?: number | undefined;
  fieldViolations?: readonly FieldViolation[] | undefined;
  metadata?: Readonly<Record<string, string>> | undefined;
  httpStatus?: number | undefined;
  cause?: unknown;
}

/**
 * A call authd refused, or one that got no answer.
 *
 * - `reason`: authd's stable reason (`INVALID_CREDENTIALS`, `TOKEN_EXPIRED`,
 *   ...), the same over gRPC, grpc-web and REST; undefined when no answer
 *   from authd carried one (the network failed, a proxy answered).
 * - `code`: the gRPC status code (Connect's `Code`, numbered as gRPC's);
 *   for REST, the code authd sends for the same reason over gRPC.
 * - `retryAfter`: milliseconds to wait before trying again, when authd says
 *   (`google.rpc.RetryInfo`, or REST's `Retry-After`).
 * - `fieldViolations`: every invalid field of the request.
 * - `metadata`: the ErrorInfo's metadata; over REST, what the problem
 *   carries of it (`max_age` with REAUTHENTICATION_REQUIRED).
 * - `httpStatus`: the HTTP status, for REST calls.
 */
export class AuthdError extends Error {
  override readonly name = "AuthdError";
  readonly code: Code;
  readonly reason: string | undefined;
  readonly retryAfter: number | undefined;
  readonly fieldViolations: readonly FieldViolation[];
  readonly metadata: Readonly<Record<string, string>>;
  readonly httpStatus: number | undefined;

  constructor(init: AuthdErrorInit) {
    super(init.message, { cause: init.cause });
    this.code = init.code;
    this.reason = init.reason;
    this.retryAfter = init.retryAfter;
    this.fieldViolations = init.fieldViolations ?? [];
    this.metadata = init.metadata ?? {};
    this.httpStatus = init.httpStatus;
  }

  /** The gRPC name of `code`: `UNAUTHENTICATED`, `INVALID_ARGUMENT`, ... */
  get codeName(): string {
    return GRPC_CODE_NAMES[this.code] ?? `CODE_${this.code}`;
  }

  /** What the surface itself answered, for developers: `401 Unauthorized` or `UNAUTHENTICATED`. */
  get status(): string {
    return this.httpStatus === undefined
      ? this.codeName
      : `${this.httpStatus} ${HTTP_STATUS_TEXT[this.httpStatus] ?? ""}`.trim();
  }

  /**
   * An AuthdError for anything a call threw: itself if it is one, the
   * details of a `ConnectError`, else an `UNKNOWN` error around it.
   */
  static from(thrown: unknown): AuthdError {
    if (thrown instanceof AuthdError) {
      return thrown;
    }
    const error = ConnectError.from(thrown);
    // An interceptor's AuthdError (the session helper's), which Connect
    // wraps on its way out of the transport.
    if (error.cause instanceof AuthdError) {
      return error.cause;
    }
    const info = error.findDetails(ErrorInfoSchema).find((each) => each.domain === ERROR_DOMAIN);
    const [retry] = error.findDetails(RetryInfoSchema);
    const delay = retry?.retryDelay;
    const fieldViolations = error
      .findDetails(BadRequestSchema)
      .flatMap((bad) => bad.fieldViolations)
      .map(({ field, reason, description }) => ({ field, reason, description }));
    return new AuthdError({
      code: error.code,
      reason: info?.reason,
      message: error.rawMessage,
      retryAfter:
        delay === undefined ? undefined : Number(delay.seconds) * 1000 + Math.round(delay.nanos / 1e6),
      fieldViolations,
      metadata: info ? { ...info.metadata } : {},
      cause: error,
    });
  }
}

/** The reasons that say an access token is no good (README.md's error table). */
export const TOKEN_REASONS: ReadonlySet<string> = new Set([
  "MISSING_TOKEN",
  "TOKEN_MALFORMED",
  "TOKEN_INVALID_SIGNATURE",
  "TOKEN_INVALID_CLAIMS",
  "TOKEN_EXPIRED",
  "TOKEN_NOT_YET_VALID",
  "TOKEN_REVOKED",
  "ACCOUNT_DISABLED",
]);

/**
 * Refusals that leave the caller's session as it was, though gRPC calls
 * them UNAUTHENTICATED: a wrong password, a call that needs a fresher
 * authentication (`metadata.max_age` says how fresh, in seconds; see
 * `Reauthenticate`), a Login's second-factor ticket that is no longer good,
 * a passkey credential that does not check out or whose authenticator did
 * not verify the user (refused when a signed-in user adds one).
 */
export const SESSION_KEEPING_REASONS: ReadonlySet<string> = new Set([
  "INVALID_CREDENTIALS",
  "REAUTHENTICATION_REQUIRED",
  "MFA_TICKET_INVALID",
  "PASSKEY_VERIFICATION_FAILED",
  "USER_VERIFICATION_REQUIRED",
]);

/** An RFC 9457 problem as authd's REST gateway sends it. */
export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  reason?: string;
  errors?: { field: string; reason: string; detail: string }[];
  /** With `REAUTHENTICATION_REQUIRED`: how recent, in seconds, the authentication must be. */
  max_age?: number;
}

/**
 * An AuthdError for a REST answer that is not a success: `problem` is its
 * body when it was `application/problem+json`.
 */
export function problemError(
  status: number,
  problem: Problem,
  retryAfterHeader: string | null,
  fallbackMessage: string,
): AuthdError {
  const seconds = retryAfterHeader === null ? NaN : Number(retryAfterHeader);
  return new AuthdError({
    code: codeForReason(problem.reason) ?? codeForHttpStatus(status),
    reason: problem.reason,
    message: problem.detail ?? fallbackMessage,
    retryAfter: Number.isFinite(seconds) ? seconds * 1000 : undefined,
    fieldViolations: (problem.errors ?? []).map(({ field, reason, detail }) => ({
      field,
      reason,
      description: detail,
    })),
    // As gRPC's ErrorInfo carries it, so that one check reads both surfaces.
    metadata: problem.max_age === undefined ? {} : { max_age: String(problem.max_age) },
    httpStatus: status,
  });
}

// REST reasons whose gRPC code differs from what their HTTP status alone
// would say (README.md's tables).
function codeForReason(reason: string | undefined): Code | undefined {
  switch (reason) {
    case "CURSOR_EXPIRED":
    case "TOTP_ALREADY_ENABLED":
    case "TOTP_NOT_ENABLED":
    case "TOTP_ENROLLMENT_NOT_STARTED":
    case "PASSKEY_CEREMONY_INVALID":
    case "PASSWORD_NOT_SET":
    case "PASSWORD_ALREADY_SET":
    case "LAST_SIGN_IN_METHOD":
    case "EMAIL_NOT_SET":
    case "EMAIL_ALREADY_VERIFIED":
    case "MAIL_NOT_CONFIGURED":
    // 403 over REST (the reset token alone does not permit the reset), a
    // failed precondition over gRPC.
    case "MFA_REQUIRED":
      return Code.FailedPrecondition;
    case "DEADLINE_EXCEEDED":
      return Code.DeadlineExceeded;
    case "BODY_TOO_LARGE":
      return Code.OutOfRange;
    default:
      return undefined;
  }
}

function codeForHttpStatus(status: number): Code {
  switch (status) {
    case 400:
    case 415:
      return Code.InvalidArgument;
    case 401:
      return Code.Unauthenticated;
    case 403:
      return Code.PermissionDenied;
    case 404:
      return Code.NotFound;
    case 409:
      return Code.AlreadyExists;
    case 413:
      return Code.OutOfRange;
    case 429:
      return Code.ResourceExhausted;
    case 500:
      return Code.Internal;
    case 501:
      return Code.Unimplemented;
    case 502:
    case 503:
      return Code.Unavailable;
    case 504:
      return Code.DeadlineExceeded;
    default:
      return Code.Unknown;
  }
}

// gRPC's names for its codes, by number; Connect numbers its codes the same
// but names them otherwise (`Canceled`).
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

// The statuses authd answers with (README.md, "REST").
const HTTP_STATUS_TEXT: Readonly<Record<number, string>> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  409: "Conflict",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  429: "Too Many Requests",
  500: "Internal Server Error",
  503: "Service Unavailable",
};
