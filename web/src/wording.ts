// What the page says for each of authd's reasons (README.md's error table),
// in words for the person at the page. Both surfaces carry the same reasons,
// so one refusal reads the same whether it came over REST or grpc-web; the
// page shows the reason itself beside these words, for developers.
import { Code, type AuthdError } from "@authd/client/browser";

// Revoked tokens, ended sessions and reused refresh tokens all mean the same
// thing to the person: their session is over.
const SESSION_ENDED = "This session has ended.";

// The lengths are authd's own (src/domain/credentials.rs); they are not
// configurable.
const WORDING: Readonly<Record<string, string>> = {
  INVALID_USERNAME: "Use 3 to 32 letters, digits, '.', '_' or '-', starting with a letter or digit.",
  PASSWORD_REQUIRED: "Enter the password.",
  PASSWORD_TOO_SHORT: "Use at least 8 characters.",
  PASSWORD_TOO_LONG: "Use at most 128 characters.",
  PASSWORD_TOO_COMMON: "This password is one of the most common ones: choose another.",
  USERNAME_TAKEN: "This username is taken: choose another.",
  INVALID_CREDENTIALS: "Wrong username or password.",
  MISSING_TOKEN: "Paste an access token to check.",
  TOKEN_MALFORMED: "This is not an access token.",
  TOKEN_INVALID_SIGNATURE: "This token was not signed by this authd.",
  TOKEN_INVALID_CLAIMS: "This token was not issued by this authd.",
  TOKEN_EXPIRED: "This token has expired.",
  TOKEN_NOT_YET_VALID: "This token is not valid yet.",
  TOKEN_REVOKED: SESSION_ENDED,
  REFRESH_TOKEN_INVALID: "Not signed in.",
  REFRESH_TOKEN_REUSED: SESSION_ENDED,
  SESSION_ENDED,
  SESSION_NOT_FOUND: "That session had already ended.",
  ACCOUNT_DISABLED: "This account is disabled.",
  RATE_LIMITED: "Too many attempts: wait a moment, then try again.",
  SERVER_BUSY: "authd is busy: try again in a moment.",
  SERVICE_UNAVAILABLE: "authd cannot reach its database: try again in a moment.",
  DEADLINE_EXCEEDED: "authd took too long to answer: try again.",
  INTERNAL: "Something went wrong inside authd.",
  CROSS_ORIGIN_REQUEST: "authd refused a request from this page's origin.",
  MFA_CODE_INVALID:
    "That code is wrong or was used already: enter the code your authenticator app shows now, or an unused recovery code.",
  MFA_TICKET_INVALID: "That sign-in took too long or had too many wrong codes: sign in again.",
  TOTP_ALREADY_ENABLED: "Two-factor authentication is on already.",
  TOTP_NOT_ENABLED: "Two-factor authentication is off already.",
  TOTP_ENROLLMENT_NOT_STARTED: "Set up the authenticator app first.",
  REAUTHENTICATION_REQUIRED:
    "This needs proof that it is still you: enter a code from your authenticator app, or sign out and sign in again.",
  INVALID_PASSKEY_NAME: "Use at most 64 characters, without line breaks or other control characters.",
  PASSKEY_CEREMONY_INVALID: "That took too long or was finished already: try again.",
  PASSKEY_VERIFICATION_FAILED: "authd could not verify this passkey: it is not registered here, or not for this site.",
  USER_VERIFICATION_REQUIRED:
    "Your device did not check it is you (PIN, fingerprint or face): a passkey signs in only with that check.",
  PASSKEY_ALREADY_REGISTERED: "This passkey is registered already.",
  PASSKEY_NOT_FOUND: "That passkey was removed already.",
  PASSWORD_ALREADY_SET: 'This account has a password already: change it under "Change password".',
  PASSWORD_NOT_SET: 'This account has no password: it signs in with a passkey. "Set a password" gives it one.',
  LAST_SIGN_IN_METHOD: "This is the account's only passkey and it has no password: removing it would lock you out.",
  INVALID_EMAIL: "Enter one plain address, like name@example.com.",
  EMAIL_TAKEN: "Another account has verified this address already: use another one.",
  EMAIL_TOKEN_INVALID: "This link no longer works: it has expired, was used already, or a newer mail replaced it.",
  EMAIL_NOT_SET: "This account has no email address: set one first.",
  EMAIL_ALREADY_VERIFIED: "This address is verified already.",
  MAIL_NOT_CONFIGURED:
    "This authd sends no mail (no mail server is set up), so it cannot verify email addresses or mail password reset links.",
  FIELD_REQUIRED: "Fill in this field.",
  INVALID_USERNAME_OR_EMAIL: "Enter a username, or an email address of at most 254 characters.",
  PASSWORD_RESET_TOKEN_INVALID:
    "This link no longer works: it has expired, was used already, or a newer request replaced it.",
  MFA_REQUIRED:
    "This account has a second factor: enter a code from your authenticator app or a recovery code, or use a passkey.",
};

// What the browser's WebAuthn calls refuse with (DOMException names), in
// the same words: these refusals never reach authd.
const BROWSER_WORDING: Readonly<Record<string, string>> = {
  NotAllowedError: "No passkey was used: the request was cancelled, timed out, or this device has none for this site.",
  InvalidStateError: "This device holds a passkey for this account already.",
  SecurityError: "The browser refused: this page's address is not one authd's passkeys are for.",
  NotSupportedError: "This browser or device cannot make a passkey authd accepts.",
};

/**
 * The words for a refusal of `navigator.credentials`; `fallback` (the
 * browser's own message) for any other.
 */
export function browserWording(name: string, fallback: string): string {
  return BROWSER_WORDING[name] ?? fallback;
}

/**
 * The words for a reason; `fallback` (authd's own message) for a reason
 * this page does not know, or for a failure that carries none.
 */
export function wording(reason: string | undefined, fallback: string): string {
  return (reason && WORDING[reason]) || fallback;
}

/** The words for a refused call as a whole. */
export function describe(error: AuthdError): string {
  // No reason and UNAVAILABLE: the call got no answer from authd at all.
  if (error.reason === undefined && error.code === Code.Unavailable) {
    return "authd did not answer: check the connection, then try again.";
  }
  return wording(error.reason, error.message);
}
