// Requiring a token on HTTP routes, answered as authd answers (and as
// authd-client's axum extractor does): the token's fault is 401 with an RFC
// 6750 challenge and an RFC 9457 problem+json body carrying authd's reason;
// a verifier unable to tell (AUTHD_UNAVAILABLE, VERIFIER_STALE) is 503 with
// `Retry-After: 1`, so the client retries instead of logging in again.
//
// The token is read as authd reads it: `Authorization: Bearer`, else an
// optional cookie; a bad header is refused, never passed over for the
// cookie, and two Authorization headers are ambiguous.
import type { IncomingMessage, ServerResponse } from "node:http";
import { bearerToken, Rejection, type Claims } from "./token.js";
import { VerifyError, type Verifier } from "./verifier.js";

// Express's requests and `res.locals` carry the claims under `authd`, so
// that handlers behind requireToken can write `req.authd.sub`. Through
// Express's global namespace rather than a `declare module` of its types,
// so that a project without @types/express still compiles.
declare global {
  namespace Express {
    interface Request {
      /** The verified token's claims: set by {@link requireToken}, so present only on routes behind it. */
      authd: Claims;
    }
    interface Locals {
      /** The verified token's claims: set by {@link requireToken}, so present only on routes behind it. */
      authd: Claims;
    }
  }
}

/** Where {@link requireToken} reads the token. */
export interface RequireTokenOptions {
  /**
   * A cookie to read the token from when a request has no `Authorization`
   * header (default: none). Cookies come with cross-site requests: protect
   * state-changing routes against CSRF before turning this on.
   */
  readonly cookie?: string;
}

/** A request that passed: its claims are at `req.authd` (and `res.locals.authd` in Express). */
export type AuthenticatedRequest<R extends IncomingMessage = IncomingMessage> = R & { authd: Claims };

/** How a refused request is answered. */
export interface Refusal {
  readonly status: 401 | 503;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/**
 * Checks a request's token: its claims, or the answer to give. The
 * building block of {@link requireToken} and {@link fastifyRequireToken},
 * for other frameworks.
 */
export async function authenticate(
  verifier: Verifier,
  request: IncomingMessage,
  options: RequireTokenOptions = {},
): Promise<{ claims: Claims } | { refusal: Refusal }> {
  try {
    return { claims: await verifier.verify(requestToken(request, options.cookie)) };
  } catch (error) {
    if (error instanceof VerifyError) {
      return { refusal: refusal(error) };
    }
    throw error;
  }
}

/**
 * Express (or plain `node:http`) middleware: a request with a good token
 * goes on with its claims at `req.authd` and `res.locals.authd`; any other
 * is answered 401 or 503 here.
 *
 * ```ts
 * app.get("/me", requireToken(verifier), (req, res) => res.json({ user: req.authd.username }));
 * ```
 */
export function requireToken(
  verifier: Verifier,
  options: RequireTokenOptions = {},
): (
  req: IncomingMessage,
  res: ServerResponse & { locals?: Record<string, unknown> },
  next: (error?: unknown) => void,
) => void {
  return (req, res, next) => {
    authenticate(verifier, req, options).then((outcome) => {
      if ("claims" in outcome) {
        (req as AuthenticatedRequest).authd = outcome.claims;
        if (res.locals) {
          res.locals.authd = outcome.claims;
        }
        next();
      } else {
        res.writeHead(outcome.refusal.status, outcome.refusal.headers).end(outcome.refusal.body);
      }
    }, next);
  };
}

/** The part of Fastify's reply {@link fastifyRequireToken} uses. */
export interface FastifyReplyLike {
  code(status: number): this;
  headers(values: Record<string, string>): this;
  send(body: Buffer): unknown;
}

/**
 * A Fastify `onRequest` (or `preHandler`) hook doing what
 * {@link requireToken} does: `app.addHook("onRequest", fastifyRequireToken(verifier))`,
 * claims at `request.authd`.
 */
export function fastifyRequireToken(
  verifier: Verifier,
  options: RequireTokenOptions = {},
): (request: { raw: IncomingMessage; authd?: Claims }, reply: FastifyReplyLike) => Promise<void> {
  return async (request, reply) => {
    const outcome = await authenticate(verifier, request.raw, options);
    if ("claims" in outcome) {
      request.authd = outcome.claims;
    } else {
      // Bytes, so that Fastify sends the content type as given, without a
      // charset of its own.
      await reply
        .code(outcome.refusal.status)
        .headers(outcome.refusal.headers)
        .send(Buffer.from(outcome.refusal.body));
    }
  };
}

// The token of a request, or "" when it carries none (which the verifier
// refuses with MISSING_TOKEN); a bad header throws its refusal.
function requestToken(request: IncomingMessage, cookieName: string | undefined): string {
  // Node keeps only the first of repeated Authorization headers in
  // `headers`; `headersDistinct` has them all.
  const values = request.headersDistinct.authorization ?? [];
  if (values.length > 0) {
    const token = bearerToken(values);
    if (token instanceof Rejection) {
      throw new VerifyError(token.reason === "UNKNOWN_KEY" ? "TOKEN_MALFORMED" : token.reason);
    }
    return token;
  }
  return cookieName === undefined ? "" : (cookie(request, cookieName) ?? "");
}

function cookie(request: IncomingMessage, name: string): string | undefined {
  for (const header of request.headersDistinct.cookie ?? []) {
    for (const pair of header.split(";")) {
      const [key, ...value] = pair.trim().split("=");
      if (key === name) {
        return value.join("=").replace(/^"|"$/g, "");
      }
    }
  }
  return undefined;
}

function refusal(error: VerifyError): Refusal {
  const status = error.isRejection ? 401 : 503;
  const headers: Record<string, string> = { "content-type": "application/problem+json" };
  if (!error.isRejection) {
    headers["retry-after"] = "1";
  } else if (error.reason === "MISSING_TOKEN") {
    headers["www-authenticate"] = 'Bearer realm="authd"';
  } else {
    headers["www-authenticate"] = `Bearer realm="authd", error="invalid_token", error_description="${error.message}"`;
  }
  const body = JSON.stringify({
    type: "about:blank",
    title: status === 401 ? "Unauthorized" : "Service Unavailable",
    status,
    detail: error.message,
    reason: error.reason,
  });
  return { status, headers, body };
}
