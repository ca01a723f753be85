// @authd/client/node: authd from a Node service: typed calls over gRPC, and
// verifying authd's tokens in-process (keys from the JWKS, revocations from
// the feed) with middleware for Express and Fastify.
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { Interceptor } from "@connectrpc/connect";
import { createAuthdClient, type AuthdClient } from "../client.js";

export * from "../index.js";
export {
  createVerifier,
  VerifierConnectError,
  Verifier,
  VerifyError,
  type StalePolicy,
  type VerifierLogger,
  type VerifierOptions,
  type VerifierState,
  type VerifyReason,
} from "./verifier.js";
export { CLOCK_LEEWAY_SECONDS, MAX_TOKEN_BYTES, type Claims, type Jwk, type TokenReason } from "./token.js";
export {
  authenticate,
  fastifyRequireToken,
  requireToken,
  type AuthenticatedRequest,
  type FastifyReplyLike,
  type Refusal,
  type RequireTokenOptions,
} from "./middleware.js";

/** How {@link createNodeClient} reaches authd. */
export interface NodeClientOptions {
  /** authd's gRPC endpoint, e.g. `http://authd:50051`. */
  readonly baseUrl: string;
  readonly interceptors?: Interceptor[];
}

/** authd's services over gRPC (HTTP/2). */
export function createNodeClient(options: NodeClientOptions): AuthdClient {
  return createAuthdClient(
    createGrpcTransport({ baseUrl: options.baseUrl, interceptors: options.interceptors ?? [] }),
  );
}
