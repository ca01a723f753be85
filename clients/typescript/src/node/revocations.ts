// The revocation list a verifier consults on every check, as authd-token's
// RevocationList: revoked token ids, per-user cutoffs, ended sessions and
// disabled accounts. It only grows while following the feed; a snapshot
// builds a fresh one, which replaces it whole.
import type { Revocation } from "../gen/auth/v1/auth_pb.js";
import type { Claims, TokenReason } from "./token.js";

export class RevocationList {
  private readonly expiryByTokenId = new Map<string, number>();
  private readonly cutoffByUser = new Map<string, number>();
  private readonly untilBySession = new Map<string, number>();
  private readonly disabledUsers = new Set<string>();

  /** Takes up one revocation from the feed. */
  apply(revocation: Revocation): void {
    const { kind } = revocation;
    switch (kind.case) {
      case "token":
        this.expiryByTokenId.set(kind.value.tokenId, Number(kind.value.expiresAt));
        break;
      case "userCutoff": {
        const held = this.cutoffByUser.get(kind.value.userId) ?? -Infinity;
        this.cutoffByUser.set(kind.value.userId, Math.max(held, Number(kind.value.revokedThrough)));
        break;
      }
      case "session": {
        const held = this.untilBySession.get(kind.value.sessionId.toLowerCase()) ?? -Infinity;
        this.untilBySession.set(kind.value.sessionId.toLowerCase(), Math.max(held, Number(kind.value.forgetAfter)));
        break;
      }
      case "account":
        if (kind.value.disabled) {
          this.disabledUsers.add(kind.value.userId);
        } else {
          this.disabledUsers.delete(kind.value.userId);
        }
        break;
      default:
        // A kind this client does not know yet: authd is newer. Ignored,
        // as authd-client ignores it.
        break;
    }
  }

  /** Why a token with these claims is refused, if it is. */
  rejection(claims: Claims): TokenReason | undefined {
    if (this.disabledUsers.has(claims.sub)) {
      return "ACCOUNT_DISABLED";
    }
    const cutoff = this.cutoffByUser.get(claims.sub);
    const revoked =
      this.expiryByTokenId.has(claims.jti) ||
      (claims.sid !== undefined && claims.sid !== null && this.untilBySession.has(claims.sid.toLowerCase())) ||
      (cutoff !== undefined && claims.iat <= cutoff);
    return revoked ? "TOKEN_REVOKED" : undefined;
  }

  /**
   * Forgets tokens that expired before `before` (Unix seconds) and sessions
   * none of whose tokens can be valid after it; how many were forgotten.
   */
  pruneExpiredBefore(before: number): number {
    let forgotten = 0;
    for (const map of [this.expiryByTokenId, this.untilBySession]) {
      for (const [id, until] of map) {
        if (until < before) {
          map.delete(id);
          forgotten += 1;
        }
      }
    }
    return forgotten;
  }

  get size(): number {
    return this.expiryByTokenId.size + this.cutoffByUser.size + this.untilBySession.size + this.disabledUsers.size;
  }
}
