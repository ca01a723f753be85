// Typed calls for every RPC of auth.v1.AuthService and
// auth.v1.RevocationService, over any Connect transport (grpc-web in
// browsers, gRPC in Node), each refusal thrown as an AuthdError.
import type { DescService } from "@bufbuild/protobuf";
import { createClient, type CallOptions, type Client, type Transport } from "@connectrpc/connect";
import { AuthService, RevocationService } from "./gen/auth/v1/auth_pb.js";
import { AuthdError } from "./errors.js";

/** Both of authd's services, on one transport. */
export interface AuthdClient {
  /**
   * Register, Login, CompleteLogin, Refresh, Logout, LogoutAll,
   * ChangePassword, DeleteAccount, ListSessions, RevokeSession, Verify,
   * GetJwks, StartTotpEnrollment, ConfirmTotpEnrollment, GetMfaStatus,
   * DisableTotp, RegenerateRecoveryCodes, Reauthenticate, the passkey
   * calls, SetEmail, VerifyEmail, ResendEmailVerification,
   * RequestPasswordReset, ResetPassword, StartPasskeyPasswordReset.
   */
  readonly auth: Client<typeof AuthService>;
  /** WatchRevocations (needs the feed credential: {@link bearer} of a `--revocation-feed-token`). */
  readonly revocations: Client<typeof RevocationService>;
}

/**
 * authd's services over `transport`. Every method is Connect's own, typed
 * from the proto, except that what it throws (or, for a stream, what ends
 * the iteration) is an {@link AuthdError}.
 */
export function createAuthdClient(transport: Transport): AuthdClient {
  return {
    auth: throwingAuthdErrors(AuthService, createClient(AuthService, transport)),
    revocations: throwingAuthdErrors(RevocationService, createClient(RevocationService, transport)),
  };
}

/** Call options that send `token` as `authorization: Bearer <token>`. */
export function bearer(token: string, options: CallOptions = {}): CallOptions {
  const headers = new Headers(options.headers);
  headers.set("authorization", `Bearer ${token}`);
  return { ...options, headers };
}

// Wraps each method of a Connect client so that errors leave it as
// AuthdErrors. authd's services have unary and server-streaming methods only.
function throwingAuthdErrors<S extends DescService>(service: S, client: Client<S>): Client<S> {
  const wrapped: Record<string, unknown> = {};
  const methods = client as Record<string, (...args: unknown[]) => unknown>;
  for (const method of service.methods) {
    const call = methods[method.localName];
    if (call === undefined) {
      continue;
    }
    wrapped[method.localName] =
      method.methodKind === "server_streaming"
        ? (...args: unknown[]) => streamWithAuthdErrors(call(...args) as AsyncIterable<unknown>)
        : async (...args: unknown[]) => {
            try {
              return await call(...args);
            } catch (error) {
              throw AuthdError.from(error);
            }
          };
  }
  return wrapped as Client<S>;
}

async function* streamWithAuthdErrors<T>(stream: AsyncIterable<T>): AsyncIterable<T> {
  try {
    yield* stream;
  } catch (error) {
    throw AuthdError.from(error);
  }
}
