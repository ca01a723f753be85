// @authd/client: what browsers and Node share. Browser transports and the
// session helper are in "@authd/client/browser"; the gRPC transport and the
// token verifier in "@authd/client/node".
export { createAuthdClient, bearer, type AuthdClient } from "./client.js";
export {
  AuthdError,
  Code,
  ERROR_DOMAIN,
  SESSION_KEEPING_REASONS,
  TOKEN_REASONS,
  type AuthdErrorInit,
  type FieldViolation,
  type Problem,
} from "./errors.js";
export {
  createRestClient,
  isMfaRequired,
  type CompletedLogin,
  type MfaChallenge,
  type MfaRequiredAnswer,
  type MfaStatus,
  type PasskeyCeremony,
  type PasskeyInfo,
  type PublicJwk,
  type Reauthenticated,
  type RestCallOptions,
  type RestClient,
  type RestClientOptions,
  type SecondFactor,
  type SessionInfo,
  type SessionTokens,
  type TokenInfo,
  type TotpEnrollment,
  type User,
} from "./rest.js";
// The messages and service descriptors generated from proto/auth/v1/auth.proto.
export * from "./gen/auth/v1/auth_pb.js";
// Timestamps in answers (Session.createdAt, VerifyResponse.expiresAt) to Dates.
export { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
