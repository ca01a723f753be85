// The demo page: create an account, sign in (with a second factor when the
// account has one, or with a passkey, also through the username field's
// autofill), ask authd whom a token belongs to, list and end sessions, turn
// two-factor authentication on and off, add, rename and remove passkeys,
// give the account an email address and verify it from the mailed link
// (the page's `#/verify-email?token=` route), reset a forgotten password
// from a mailed link (`#/reset-password?token=`), change the password,
// delete the account, and sign out, against the authd
// that served the page, through @authd/client:
// its session helper for what starts, renews or ends this browser's session
// (REST, which sets and clears the HttpOnly cookies), its grpc-web client
// for the rest.
//
// Each part of the page says how its last call went next to the controls
// that made it, and marks the fields authd refused; only the parts that fit
// the state (signed in or not) are shown.
import {
  AuthdError,
  Code,
  createBrowserClient,
  createSession,
  isMfaRequired,
  timestampDate,
  type MfaChallenge,
  type Passkey,
  type SecondFactor,
  type Session,
  type SessionState,
  type Timestamp,
} from "@authd/client/browser";
import { browserWording, describe, wording } from "./wording";

// The access token lives in the session helper's memory only. The session
// survives a reload through the HttpOnly refresh cookie, which scripts
// cannot read: on load the page asks the helper to resume it, and the
// helper renews the token before it expires.
const authd = createSession();
// Calls made as the signed-in user carry the session's token (the helper's
// interceptor); "Check a token" sends the token it was given.
const asSignedIn = createBrowserClient({ interceptors: [authd.interceptor] });
const anyone = createBrowserClient();

/** One of the account's live sessions, as the page lists them. */
interface SessionInfo {
  id: string;
  createdAt: Date;
  lastUsedAt: Date;
  expiresAt: Date;
  /** Whether the token the list was asked with belongs to this session. */
  current: boolean;
  clientAddress: string;
  userAgent: string;
}

function byId<T extends HTMLElement>(id: string, type: { new (): T }): T {
  const element = document.getElementById(id);
  if (!(element instanceof type)) {
    throw new Error(`#${id} is missing or not a ${type.name}`);
  }
  return element;
}

/**
 * One part of the page: a section with an `.outcome` element, where it says
 * how its last call went, and the inputs authd may find fault with.
 */
class Panel {
  private readonly outcome: HTMLElement;

  constructor(
    readonly section: HTMLElement,
    /** Inputs by the name authd gives their field (`errors[].field`). */
    private readonly fields: Readonly<Record<string, HTMLInputElement>> = {},
    /**
     * Inputs that a refusal of the whole call is about, by its reason: a
     * wrong password is the password field's fault, though authd names no
     * field for it (at login it cannot say which of the two is wrong).
     */
    private readonly reasonFields: Readonly<Record<string, HTMLInputElement>> = {},
    /** Where its outcome goes when the call hid it (a form inside a part of the page). */
    readonly parent?: Panel,
  ) {
    const outcome = section.querySelector<HTMLElement>(".outcome");
    if (!outcome) {
      throw new Error(`#${section.id} has no .outcome`);
    }
    this.outcome = outcome;
  }

  get shown(): boolean {
    return shown(this.section);
  }

  clear(): void {
    delete this.outcome.dataset.outcome;
    delete this.outcome.dataset.reason;
    this.outcome.replaceChildren();
    for (const input of Object.values(this.fields)) {
      unmark(input);
    }
  }

  /** Shows a success; an empty message shows nothing. */
  succeed(message: string): void {
    if (message) {
      this.outcome.dataset.outcome = "success";
      this.outcome.textContent = message;
      this.outcome.scrollIntoView({ block: "nearest" });
    }
  }

  /**
   * Shows a refusal: on each field at fault when authd named them, with the
   * focus on the first (a screen reader then reads its message), else in the
   * outcome element, which is aria-live.
   */
  fail(error: AuthdError): void {
    const marked = this.markFields(error);
    const [first] = marked;
    if (first) {
      first.focus();
      // The focus scrolls the field into view; its message is just below.
      first.nextElementSibling?.scrollIntoView({ block: "nearest" });
      return;
    }
    this.outcome.dataset.outcome = "error";
    if (error.reason) {
      this.outcome.dataset.reason = error.reason;
    }
    this.outcome.replaceChildren(
      ...explained(describe(error), error.reason, `${error.status}: ${error.message}`),
    );
    this.outcome.scrollIntoView({ block: "nearest" });
  }

  // Marks every input of this panel that the refusal is about, in the order
  // authd named them, and returns them.
  private markFields(error: AuthdError): HTMLInputElement[] {
    const marked: HTMLInputElement[] = [];
    for (const { field, reason, description } of error.fieldViolations) {
      const input = this.fields[field];
      if (input && shown(input)) {
        mark(input, wording(reason, description), reason, description);
        marked.push(input);
      }
    }
    const input = error.reason ? this.reasonFields[error.reason] : undefined;
    // A field shown only with TOTP on (a code) is not at fault without it:
    // the outcome says what to do then.
    if (input && shown(input) && marked.length === 0) {
      mark(input, describe(error), error.reason ?? "", error.message);
      marked.push(input);
    }
    return marked;
  }
}

function shown(element: HTMLElement): boolean {
  return element.closest("[hidden]") === null;
}

// The words, then authd's reason in small print for developers; its title
// holds what authd said in its own words.
function explained(words: string, reason: string | undefined, title: string): Node[] {
  if (!reason) {
    return [document.createTextNode(words)];
  }
  const code = document.createElement("code");
  code.textContent = reason;
  code.title = title;
  return [document.createTextNode(`${words} `), code];
}

// The conventional way to tie a message to a field: aria-invalid, and the
// message as the field's description, read out with its label.
function mark(input: HTMLInputElement, words: string, reason: string, title: string): void {
  const note = document.createElement("p");
  note.id = `${input.id}-error`;
  note.className = "field-error";
  note.dataset.reason = reason;
  note.append(...explained(words, reason, title));
  input.after(note);
  input.setAttribute("aria-invalid", "true");
  input.setAttribute("aria-describedby", note.id);
}

function unmark(input: HTMLInputElement): void {
  document.getElementById(`${input.id}-error`)?.remove();
  input.removeAttribute("aria-invalid");
  input.removeAttribute("aria-describedby");
}

const page = byId("page", HTMLElement);
const sessionText = byId("session", HTMLParagraphElement);
const sessionFactorsText = byId("session-factors", HTMLParagraphElement);
const tokenOutput = byId("token", HTMLOutputElement);
const whoAmIButton = byId("who-am-i", HTMLButtonElement);
const logOutButton = byId("log-out", HTMLButtonElement);
const signInSection = byId("sign-in-panel", HTMLElement);
const signInForm = byId("sign-in", HTMLFormElement);
const signInUsername = byId("sign-in-username", HTMLInputElement);
const signInPassword = byId("sign-in-password", HTMLInputElement);
const passkeySignInButton = byId("passkey-sign-in", HTMLButtonElement);
const registerForm = byId("register", HTMLFormElement);
const registerUsername = byId("register-username", HTMLInputElement);
const registerPassword = byId("register-password", HTMLInputElement);
const registerEmail = byId("register-email", HTMLInputElement);
const passkeyRegisterButton = byId("passkey-register", HTMLButtonElement);
const listSessionsButton = byId("list-sessions", HTMLButtonElement);
const sessionList = byId("session-list", HTMLUListElement);
const changePasswordForm = byId("change-password", HTMLFormElement);
const currentPasswordInput = byId("current-password", HTMLInputElement);
const newPasswordInput = byId("new-password", HTMLInputElement);
const deleteAccountForm = byId("delete-account", HTMLFormElement);
const deletePasswordInput = byId("delete-password", HTMLInputElement);
// Shown while TOTP is on: authd asks for the second factor too, unless the
// session proved it recently.
const changePasswordCodeInput = byId("change-password-code", HTMLInputElement);
const deleteAccountCodeInput = byId("delete-account-code", HTMLInputElement);
const checkTokenForm = byId("check-token", HTMLFormElement);
const secondFactorForm = byId("second-factor", HTMLFormElement);
const secondFactorInput = byId("second-factor-code", HTMLInputElement);
const cancelSecondFactorButton = byId("cancel-second-factor", HTMLButtonElement);
const secondFactorCodeBox = byId("second-factor-code-box", HTMLDivElement);
const completeLoginButton = byId("complete-login", HTMLButtonElement);
const secondFactorPasskeyButton = byId("second-factor-passkey", HTMLButtonElement);
const setPasswordForm = byId("set-password", HTMLFormElement);
const setPasswordInput = byId("set-password-new", HTMLInputElement);
const mfaStatusText = byId("mfa-status", HTMLParagraphElement);
const startTotpButton = byId("start-totp", HTMLButtonElement);
const enrollmentBox = byId("totp-enrollment", HTMLDivElement);
const qrImage = byId("totp-qr", HTMLImageElement);
const secretInput = byId("totp-secret", HTMLInputElement);
const copySecretButton = byId("copy-totp-secret", HTMLButtonElement);
const confirmTotpForm = byId("confirm-totp", HTMLFormElement);
const confirmTotpInput = byId("confirm-totp-code", HTMLInputElement);
const recoveryCodesBox = byId("recovery-codes-box", HTMLDivElement);
const recoveryCodesList = byId("recovery-codes", HTMLOListElement);
const recoveryCodesSavedButton = byId("recovery-codes-saved", HTMLButtonElement);
const disableTotpForm = byId("disable-totp", HTMLFormElement);
const disableTotpInput = byId("disable-totp-code", HTMLInputElement);
const tokenToCheckInput = byId("token-to-check", HTMLInputElement);
const emailStatusText = byId("email-status", HTMLParagraphElement);
const resendEmailButton = byId("resend-email", HTMLButtonElement);
const setEmailForm = byId("set-email", HTMLFormElement);
const setEmailInput = byId("set-email-address", HTMLInputElement);
const setEmailCodeInput = byId("set-email-code", HTMLInputElement);
const verifyEmailSection = byId("verify-email-panel", HTMLElement);
const verifyEmailNext = byId("verify-email-next", HTMLParagraphElement);
const verifyEmailResendButton = byId("verify-email-resend", HTMLButtonElement);
const verifyEmailDismissButton = byId("verify-email-dismiss", HTMLButtonElement);
const forgotPasswordButton = byId("forgot-password", HTMLButtonElement);
const requestResetSection = byId("request-reset-panel", HTMLElement);
const requestResetForm = byId("request-reset", HTMLFormElement);
const requestResetInput = byId("request-reset-name", HTMLInputElement);
const cancelRequestResetButton = byId("cancel-request-reset", HTMLButtonElement);
const resetPasswordSection = byId("reset-password-panel", HTMLElement);
const resetPasswordForm = byId("reset-password", HTMLFormElement);
const resetPasswordFields = byId("reset-password-fields", HTMLDivElement);
const resetPasswordInput = byId("reset-password-new", HTMLInputElement);
const resetPasswordRepeatInput = byId("reset-password-repeat", HTMLInputElement);
// Shown once authd answers MFA_REQUIRED.
const resetPasswordSecondBox = byId("reset-password-second", HTMLDivElement);
const resetPasswordCodeInput = byId("reset-password-code", HTMLInputElement);
const resetPasswordPasskeyButton = byId("reset-password-passkey", HTMLButtonElement);
const resetPasswordFailedBox = byId("reset-password-failed", HTMLDivElement);
const resetPasswordRequestNewButton = byId("reset-password-request-new", HTMLButtonElement);
const resetPasswordDismissButton = byId("reset-password-dismiss", HTMLButtonElement);
const passkeysSection = byId("passkeys-panel", HTMLElement);
const addPasskeyForm = byId("add-passkey", HTMLFormElement);
const passkeyNameInput = byId("passkey-name", HTMLInputElement);
const passkeyList = byId("passkey-list", HTMLUListElement);
const passkeyStepUpInput = byId("passkey-step-up-code", HTMLInputElement);
// The read-only username fields of the forms that ask for the signed-in
// account's password: password managers look for one in every password form.
const accountUsernames = document.querySelectorAll<HTMLInputElement>("input.account-username");

const sessionPanel = new Panel(byId("session-panel", HTMLElement));
const signInPanel = new Panel(byId("sign-in-panel", HTMLElement), {
  username: signInUsername,
  password: signInPassword,
});
const registerPanel = new Panel(
  byId("register-panel", HTMLElement),
  { username: registerUsername, password: registerPassword, email: registerEmail },
  { USERNAME_TAKEN: registerUsername },
);
const sessionsPanel = new Panel(byId("sessions-panel", HTMLElement));
const changePasswordPanel = new Panel(
  byId("change-password-panel", HTMLElement),
  {
    current_password: currentPasswordInput,
    new_password: newPasswordInput,
    totp_code: changePasswordCodeInput,
    recovery_code: changePasswordCodeInput,
  },
  {
    INVALID_CREDENTIALS: currentPasswordInput,
    MFA_CODE_INVALID: changePasswordCodeInput,
    REAUTHENTICATION_REQUIRED: changePasswordCodeInput,
  },
);
const deleteAccountPanel = new Panel(
  byId("delete-account-panel", HTMLElement),
  { password: deletePasswordInput, totp_code: deleteAccountCodeInput, recovery_code: deleteAccountCodeInput },
  {
    INVALID_CREDENTIALS: deletePasswordInput,
    MFA_CODE_INVALID: deleteAccountCodeInput,
    REAUTHENTICATION_REQUIRED: deleteAccountCodeInput,
  },
);
const setPasswordPanel = new Panel(
  byId("set-password-panel", HTMLElement),
  { new_password: setPasswordInput },
  { PASSWORD_ALREADY_SET: setPasswordInput, REAUTHENTICATION_REQUIRED: setPasswordInput },
);
const checkTokenPanel = new Panel(byId("check-token-panel", HTMLElement));
// authd names the field after the kind of code; the page has one field for both.
const secondFactorPanel = new Panel(
  byId("second-factor-panel", HTMLElement),
  { totp_code: secondFactorInput, recovery_code: secondFactorInput },
  { MFA_CODE_INVALID: secondFactorInput },
);
const mfaPanel = new Panel(byId("mfa-panel", HTMLElement));
const confirmTotpPanel = new Panel(
  confirmTotpForm,
  { code: confirmTotpInput },
  { MFA_CODE_INVALID: confirmTotpInput },
  mfaPanel,
);
const disableTotpPanel = new Panel(
  disableTotpForm,
  { totp_code: disableTotpInput, recovery_code: disableTotpInput },
  { MFA_CODE_INVALID: disableTotpInput, REAUTHENTICATION_REQUIRED: disableTotpInput },
  mfaPanel,
);
const addPasskeyPanel = new Panel(passkeysSection, { name: passkeyNameInput });
// The name field at fault is the one of the passkey being renamed: set
// when a rename starts.
const renamedPasskeyField: Record<string, HTMLInputElement> = {};
const renamePasskeyPanel = new Panel(passkeysSection, renamedPasskeyField);
const removePasskeyPanel = new Panel(
  passkeysSection,
  { totp_code: passkeyStepUpInput, recovery_code: passkeyStepUpInput },
  { MFA_CODE_INVALID: passkeyStepUpInput, REAUTHENTICATION_REQUIRED: passkeyStepUpInput },
);
const emailPanel = new Panel(byId("email-panel", HTMLElement));
const setEmailPanel = new Panel(
  setEmailForm,
  { email: setEmailInput, totp_code: setEmailCodeInput, recovery_code: setEmailCodeInput },
  { MFA_CODE_INVALID: setEmailCodeInput, REAUTHENTICATION_REQUIRED: setEmailCodeInput },
  emailPanel,
);
// Not among `panels`: what a link from a mail did stays said until the
// person dismisses it or opens another link, whatever they do meanwhile.
const verifyEmailPanel = new Panel(verifyEmailSection);
const requestResetPanel = new Panel(requestResetSection, { username_or_email: requestResetInput });
// The page's own name for the second password field, which authd never
// sees: only the page compares the two.
const REPEATED_PASSWORD = "new_password_repeat";
// Not among `panels` either, as the verification panel: a link that no
// longer works stays said until given up.
const resetPasswordPanel = new Panel(
  resetPasswordSection,
  {
    new_password: resetPasswordInput,
    [REPEATED_PASSWORD]: resetPasswordRepeatInput,
    totp_code: resetPasswordCodeInput,
    recovery_code: resetPasswordCodeInput,
  },
  { MFA_REQUIRED: resetPasswordCodeInput, MFA_CODE_INVALID: resetPasswordCodeInput },
);
const panels = [
  sessionPanel,
  emailPanel,
  setEmailPanel,
  signInPanel,
  requestResetPanel,
  addPasskeyPanel,
  renamePasskeyPanel,
  removePasskeyPanel,
  secondFactorPanel,
  mfaPanel,
  confirmTotpPanel,
  disableTotpPanel,
  registerPanel,
  sessionsPanel,
  changePasswordPanel,
  setPasswordPanel,
  deleteAccountPanel,
  checkTokenPanel,
];

// A sign-in whose password authd accepted, waiting for the second factor.
let pendingLogin: MfaChallenge | undefined;

/** The account's second factors, as last read while signed in. */
interface MfaState {
  totpEnabled: boolean;
  recoveryCodesLeft: number;
  totpPending: boolean;
}
let mfa: MfaState | undefined;
// A secret shown for the authenticator app, until a code confirms it.
let enrollment: { secret: string; qrSvg: string } | undefined;
// Shown once, right after TOTP is turned on, until the person says they
// saved them.
let recoveryCodes: readonly string[] = [];
// How the session signed in, as authd's Verify of its token says.
let factors: { amr: readonly string[]; assuranceLevel: number } | undefined;
// The account's passkeys, as last listed.
let passkeys: readonly Passkey[] = [];
/** The account's email address, as authd last said it. */
interface EmailState {
  /** Undefined when the account has none. */
  address: string | undefined;
  verified: boolean;
}
let email: EmailState | undefined;
// A verification link that did not work: what the verification panel
// offers next depends on it, and on the account signed in.
let failedLink = false;
// The pending autofill request (`mediation: "conditional"`), while signed out.
let autofill: AbortController | undefined;
// "Forgot your password?" was pressed: its form shows instead of signing in.
let requestingReset = false;
/** A password reset link the page was opened from, until the password is set or the link given up. */
interface ResetLink {
  token: string;
  /** Whether the account has a passkey to prove itself with (known once the link was checked). */
  passkey: boolean;
  /** authd answered MFA_REQUIRED: the account has a second factor. */
  secondFactor: boolean;
  /** authd refused the token: expired, used, or replaced by a newer request. */
  failed: boolean;
}
let resetLink: ResetLink | undefined;

function showSession(): void {
  const session = authd.current;
  if (session) {
    pendingLogin = undefined;
  } else {
    mfa = undefined;
    enrollment = undefined;
    recoveryCodes = [];
    factors = undefined;
    passkeys = [];
    email = undefined;
    showPasskeys();
  }
  sessionText.textContent = session ? `Signed in as ${session.user.username}` : "Not signed in";
  sessionFactorsText.textContent = factors ? describeFactors(factors.amr, factors.assuranceLevel) : "";
  tokenOutput.value = session?.accessToken ?? "";
  for (const input of accountUsernames) {
    input.value = session?.user.username ?? "";
  }
  for (const element of document.querySelectorAll<HTMLElement>(".signed-in")) {
    element.hidden = !session;
  }
  for (const element of document.querySelectorAll<HTMLElement>(".signed-out")) {
    element.hidden = Boolean(session) || pendingLogin !== undefined;
  }
  signInSection.hidden ||= requestingReset;
  for (const element of document.querySelectorAll<HTMLElement>(".second-factor")) {
    element.hidden = Boolean(session) || pendingLogin === undefined;
  }
  // Only the ways the account can prove itself with.
  const methods = pendingLogin?.methods ?? [];
  const codes = methods.includes("totp") || methods.includes("recovery_code");
  secondFactorCodeBox.hidden = !codes;
  completeLoginButton.hidden = !codes;
  secondFactorPasskeyButton.hidden = !methods.includes("passkey");
  showMfa();
  showEmail();
  showReset();
  offerAutofillWhileSignedOut();
}

// The request form while asked for; the reset form while a link is open,
// signed in or not (the reset signs in as the link's account), or what
// can be done after a link that no longer works.
function showReset(): void {
  requestResetSection.hidden = !requestingReset || pendingLogin !== undefined;
  resetPasswordSection.hidden = resetLink === undefined;
  resetPasswordFields.hidden = resetLink?.failed !== false;
  resetPasswordFailedBox.hidden = !resetLink?.failed;
  resetPasswordSecondBox.hidden = !resetLink?.secondFactor;
  resetPasswordPasskeyButton.hidden = !resetLink?.passkey;
}

function offerAutofillWhileSignedOut(): void {
  if (authd.current || pendingLogin) {
    autofill?.abort();
  } else {
    void offerPasskeyAutofill();
  }
}

// How a session signed in, from its token's amr (RFC 8176) and assurance
// level.
function describeFactors(amr: readonly string[], assuranceLevel: number): string {
  const passkey = amr.includes("hwk") || amr.includes("swk");
  const how = passkey
    ? amr.includes("pwd")
      ? "password and a passkey"
      : "a passkey"
    : amr.includes("otp")
      ? "password and authenticator app"
      : amr.includes("rc")
        ? "password and recovery code"
        : amr.includes("pwd")
          ? "password"
          : "a method authd did not record";
  const kind = assuranceLevel >= 2 ? "Multi-factor" : "Single-factor";
  return `${kind} session (assurance level ${assuranceLevel}): signed in with ${how}.`;
}

function showMfa(): void {
  mfaStatusText.textContent = !mfa
    ? ""
    : mfa.totpEnabled
      ? `On: signing in asks for a code from your authenticator app. ${countOf(mfa.recoveryCodesLeft, "recovery code")} left.`
      : mfa.totpPending && !enrollment
        ? "Off: a setup was started and not finished; set it up again."
        : "Off: your password alone signs you in.";
  for (const element of document.querySelectorAll<HTMLElement>(".mfa-off")) {
    element.hidden = !mfa || mfa.totpEnabled || enrollment !== undefined;
  }
  for (const element of document.querySelectorAll<HTMLElement>(".mfa-on")) {
    element.hidden = !mfa?.totpEnabled;
  }
  enrollmentBox.hidden = enrollment === undefined;
  secretInput.value = enrollment?.secret ?? "";
  // The SVG authd drew goes in as an image, never as markup: whatever it
  // held, an <img> runs no script and reaches into nothing on the page.
  if (enrollment) {
    qrImage.src = `data:image/svg+xml;base64,${base64(enrollment.qrSvg)}`;
  } else {
    qrImage.removeAttribute("src");
  }
  recoveryCodesBox.hidden = recoveryCodes.length === 0;
  recoveryCodesList.replaceChildren(
    ...recoveryCodes.map((code) => {
      const item = document.createElement("li");
      item.textContent = code;
      return item;
    }),
  );
}

// Both surfaces' accounts: REST leaves `email` out without one, the proto
// has it empty.
function emailOf(user: { readonly email?: string | undefined; readonly emailVerified?: boolean | undefined }): EmailState {
  return { address: user.email || undefined, verified: user.emailVerified ?? false };
}

// The address and whether it is verified, with "Send the link again" for an
// unverified one; and, after a link that did not work, what the
// verification panel offers as things stand now (signed in or not, the
// address verified meanwhile or not).
function showEmail(): void {
  const address = email?.address;
  const unverified = address !== undefined && !email?.verified;
  emailStatusText.dataset.verified = address === undefined ? "none" : String(!unverified);
  emailStatusText.textContent = !email
    ? ""
    : address === undefined
      ? "No email address yet: set one below."
      : unverified
        ? `${address}: not verified yet. Open the link mailed to it.`
        : `${address}: verified.`;
  for (const element of document.querySelectorAll<HTMLElement>(".email-unverified")) {
    element.hidden = !unverified;
  }
  verifyEmailNext.hidden = !failedLink;
  verifyEmailResendButton.hidden = !failedLink || !unverified;
  verifyEmailNext.textContent = !authd.current
    ? "Sign in to have a new link sent to your address."
    : unverified
      ? `A new link can be sent to ${address}; the links mailed before it stop working.`
      : address !== undefined
        ? `Your address ${address} is verified already.`
        : 'Set an address under "Email address": it is mailed a new link.';
}

function countOf(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

// UTF-8, then base64: btoa takes Latin-1 only.
function base64(text: string): string {
  let binary = "";
  for (const byte of new TextEncoder().encode(text)) {
    binary += String.fromCharCode(byte);
  }
  return btoa(binary);
}

// Signing in or out hides the part of the page that did it; its outcome
// then goes to the session panel, which is always shown.
function shownPanel(panel: Panel): Panel {
  if (panel.shown) {
    return panel;
  }
  return panel.parent?.shown ? panel.parent : sessionPanel;
}

// Runs one call to authd at a time: the buttons are disabled meanwhile, and
// the page is aria-busy until it shows the outcome. Earlier outcomes and
// marks are cleared first, so that what the page says is about this call.
async function run(panel: Panel, action: () => Promise<string>): Promise<void> {
  const buttons = document.querySelectorAll("button");
  buttons.forEach((button) => (button.disabled = true));
  page.ariaBusy = "true";
  panels.forEach((each) => each.clear());
  try {
    // Awaited first: the call decides which panels are shown.
    const message = await action();
    shownPanel(panel).succeed(message);
  } catch (error) {
    shownPanel(panel).fail(
      error instanceof AuthdError
        ? error
        : new AuthdError({ code: Code.Unknown, message: `page error: ${String(error)}` }),
    );
  } finally {
    page.ariaBusy = "false";
    buttons.forEach((button) => (button.disabled = false));
  }
}

function startSession(state: SessionState): string {
  requestingReset = false;
  showSessionList([]);
  showSession();
  return state.user.username;
}

// startSession, then how it signed in, what the account's second factors
// and passkeys are.
async function signedIn(state: SessionState): Promise<string> {
  const username = startSession(state);
  await loadFactors();
  await loadMfaStatus();
  await loadPasskeys();
  return username;
}

// authd's Verify of the session's own token says how it signed in.
async function loadFactors(): Promise<void> {
  const { amr, assuranceLevel } = await authd.withToken((accessToken) => anyone.auth.verify({ accessToken }));
  factors = { amr, assuranceLevel };
  showSession();
}

async function loadMfaStatus(): Promise<void> {
  const status = await asSignedIn.auth.getMfaStatus({});
  mfa = {
    totpEnabled: status.totpEnabled,
    recoveryCodesLeft: status.recoveryCodesLeft,
    totpPending: status.totpPending,
  };
  showMfa();
}

// The helper tells of every change: a renewal, and an end it learned of
// (a refused token, another tab signing out), which clears what the page
// showed of the session.
// Every new session and renewal says the account's address as authd has
// it now, which is at least as new as what the page learned since.
authd.subscribe((state) => {
  if (!state) {
    showSessionList([]);
  } else {
    email = emailOf(state.user);
  }
  showSession();
});

async function resume(): Promise<string> {
  // No refresh cookie (a first visit, or after signing out) means being
  // signed out, which "Not signed in" says; it is no error.
  const state = await authd.resume();
  return state ? `Welcome back, ${await signedIn(state)}.` : "";
}

// The address is optional: an empty field sends none.
async function register(): Promise<string> {
  const address = registerEmail.value.trim();
  const state = await authd.register(registerUsername.value, registerPassword.value, address || undefined);
  registerPassword.value = "";
  registerEmail.value = "";
  const welcome = `Account created. Welcome, ${await signedIn(state)}.`;
  return address ? `${welcome} Open the link mailed to ${state.user.email} to verify it.` : welcome;
}

// An account whose only credential is a passkey: authd's creation options
// go to navigator.credentials.create, as for "Add a passkey". The autofill
// request is given up first: a browser runs one WebAuthn request at a time.
async function passkeyRegister(): Promise<string> {
  autofill?.abort();
  const ceremony = await authd.startPasskeySignup(registerUsername.value);
  const credentialJson = await browserCredential(() =>
    navigator.credentials.create({
      publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(JSON.parse(ceremony.optionsJson)),
    }),
  );
  const state = await authd.registerWithPasskey(ceremony.ceremonyId, credentialJson);
  registerPassword.value = "";
  return `Account created with a passkey, no password. Welcome, ${await signedIn(state)}.`;
}

async function logIn(): Promise<string> {
  const answer = await authd.logIn(signInUsername.value, signInPassword.value);
  signInPassword.value = "";
  if (isMfaRequired(answer)) {
    pendingLogin = answer.mfaRequired;
    secondFactorInput.value = "";
    showSession();
    const { methods } = answer.mfaRequired;
    if (!methods.includes("totp")) {
      secondFactorPasskeyButton.focus();
      return "Password accepted. Now your passkey.";
    }
    secondFactorInput.focus();
    return methods.includes("passkey")
      ? "Password accepted. Now the code from your authenticator app, a recovery code, or your passkey."
      : "Password accepted. Now the code from your authenticator app, or a recovery code.";
  }
  return `Welcome, ${await signedIn(answer)}.`;
}

// Six digits (apps show "123 456") are a TOTP code; anything else is taken
// for a recovery code, and authd says if it is neither.
function secondFactor(typed: string): SecondFactor {
  const code = typed.trim();
  return /^\d{3} ?\d{3}$/.test(code) ? { totpCode: code.replace(" ", "") } : { recoveryCode: code };
}

// The proto's oneof, for the grpc-web calls that take a code.
function secondFactorProof(typed: string) {
  if (!typed.trim()) {
    return undefined;
  }
  return proof(secondFactor(typed));
}

function proof(second: SecondFactor) {
  return "totpCode" in second
    ? { case: "totpCode" as const, value: second.totpCode }
    : "recoveryCode" in second
      ? { case: "recoveryCode" as const, value: second.recoveryCode }
      : { case: "passkeyCredentialJson" as const, value: second.passkeyCredentialJson };
}

// The second step with a passkey: authd's request options came with the
// password's answer.
async function completeLoginWithPasskey(): Promise<string> {
  const optionsJson = pendingLogin?.passkeyOptionsJson;
  if (optionsJson === undefined) {
    return "Sign in first.";
  }
  const passkeyCredentialJson = await browserCredential(() =>
    navigator.credentials.get({ publicKey: requestOptions(optionsJson) }),
  );
  return completeLogin({ passkeyCredentialJson });
}

async function completeLogin(second?: SecondFactor): Promise<string> {
  const pending = pendingLogin;
  if (!pending) {
    return "Sign in first.";
  }
  try {
    const state = await authd.completeLogin(pending.ticket, second ?? secondFactor(secondFactorInput.value));
    secondFactorInput.value = "";
    const left = state.recoveryCodesLeft;
    const welcome = `Welcome, ${await signedIn(state)}.`;
    return left === undefined ? welcome : `${welcome} ${countOf(left, "recovery code")} left.`;
  } catch (error) {
    // The ticket is spent, expired or out of attempts: back to the password.
    if (error instanceof AuthdError && error.reason === "MFA_TICKET_INVALID") {
      pendingLogin = undefined;
      showSession();
    }
    throw error;
  }
}

// Asks the browser for a passkey of this site's (an authenticator's
// ceremony), turning its refusals into what the page says: they never
// reach authd.
async function browserCredential(ask: () => Promise<Credential | null>): Promise<string> {
  let credential: Credential | null;
  try {
    credential = await ask();
  } catch (error) {
    const name = error instanceof DOMException ? error.name : "";
    throw new AuthdError({
      code: Code.FailedPrecondition,
      message: browserWording(name, `The browser refused: ${String(error)}`),
      cause: error,
    });
  }
  if (!(credential instanceof PublicKeyCredential)) {
    throw new AuthdError({ code: Code.FailedPrecondition, message: browserWording("NotAllowedError", "") });
  }
  // The shape authd reads: what browsers' toJSON() writes, as JSON.
  return JSON.stringify(credential.toJSON());
}

function requestOptions(optionsJson: string): PublicKeyCredentialRequestOptions {
  return PublicKeyCredential.parseRequestOptionsFromJSON(JSON.parse(optionsJson));
}

// "Sign in with a passkey": for the username typed, or, without one, for
// whichever passkey of this site the person picks. The autofill request
// is given up first: a browser runs one WebAuthn request at a time.
async function passkeySignIn(): Promise<string> {
  autofill?.abort();
  const ceremony = await authd.startPasskeyLogin(signInUsername.value.trim());
  const credentialJson = await browserCredential(() =>
    navigator.credentials.get({ publicKey: requestOptions(ceremony.optionsJson) }),
  );
  return finishPasskeySignIn(ceremony.ceremonyId, credentialJson);
}

async function finishPasskeySignIn(ceremonyId: string, credentialJson: string): Promise<string> {
  const state = await authd.finishPasskeyLogin(ceremonyId, credentialJson);
  signInPassword.value = "";
  return `Welcome, ${await signedIn(state)}.`;
}

// While signed out, the username field offers this site's passkeys in its
// autofill (`autocomplete="username webauthn"` and a conditional request),
// where the browser supports it; picking one signs in. The request starts
// on load and on signing out; after a pick authd refused, or a passkey
// sign-in with the button, on the username field's next focus, never at
// once: a browser that answered by itself would go round in circles. The
// sign-in form's data-autofill says whether a request is `starting`,
// `waiting`, or ended without a pick (`off`). A request the browser refuses (none to
// offer, a page off the RP id) says nothing: the person asked for nothing.
async function offerPasskeyAutofill(): Promise<void> {
  if (autofill) {
    return;
  }
  const controller = new AbortController();
  autofill = controller;
  signInForm.dataset.autofill = "starting";
  let ceremonyId: string;
  let credentialJson: string;
  try {
    if (!(await conditionalMediation())) {
      signInForm.dataset.autofill = "off";
      return;
    }
    const ceremony = await authd.startPasskeyLogin();
    ceremonyId = ceremony.ceremonyId;
    controller.signal.throwIfAborted();
    signInForm.dataset.autofill = "waiting";
    credentialJson = await browserCredential(() =>
      navigator.credentials.get({
        mediation: "conditional",
        publicKey: requestOptions(ceremony.optionsJson),
        signal: controller.signal,
      }),
    );
  } catch {
    signInForm.dataset.autofill = "off";
    return;
  } finally {
    if (autofill === controller) {
      autofill = undefined;
    }
  }
  delete signInForm.dataset.autofill;
  await run(signInPanel, () => finishPasskeySignIn(ceremonyId, credentialJson));
  offerAutofillOnNextFocus();
}

function offerAutofillOnNextFocus(): void {
  if (!authd.current) {
    signInUsername.addEventListener("focus", offerAutofillWhileSignedOut, { once: true });
  }
}

async function conditionalMediation(): Promise<boolean> {
  return (
    typeof PublicKeyCredential !== "undefined" &&
    typeof PublicKeyCredential.isConditionalMediationAvailable === "function" &&
    (await PublicKeyCredential.isConditionalMediationAvailable())
  );
}

async function loadPasskeys(): Promise<void> {
  passkeys = (await asSignedIn.auth.listPasskeys({})).passkeys;
  showPasskeys();
}

function showPasskeys(): void {
  passkeyList.replaceChildren(
    ...passkeys.map((passkey, index) => {
      const item = document.createElement("li");
      item.dataset.passkeyId = passkey.id;
      const description = document.createElement("div");
      const label = document.createElement("label");
      label.htmlFor = `passkey-${index}-name`;
      label.textContent = `Name of passkey ${index + 1}`;
      label.className = "visually-hidden";
      const name = document.createElement("input");
      name.id = `passkey-${index}-name`;
      name.value = passkey.name;
      name.autocomplete = "off";
      const when = document.createElement("small");
      const used = passkey.lastUsedAt ? `last used ${date(passkey.lastUsedAt).toLocaleString()}` : "not used yet";
      const synced = passkey.backedUp ? ", backed up by its provider" : "";
      when.textContent = `Added ${date(passkey.createdAt).toLocaleString()}, ${used}${synced}`;
      description.append(label, name, when);
      const buttons = document.createElement("div");
      buttons.className = "buttons";
      const rename = document.createElement("button");
      rename.type = "button";
      rename.className = "secondary";
      rename.textContent = "Rename";
      rename.addEventListener("click", () => void run(renamePasskeyPanel, () => renamePasskey(passkey, name)));
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "danger";
      remove.textContent = "Remove";
      remove.addEventListener("click", () => void run(removePasskeyPanel, () => removePasskey(passkey)));
      buttons.append(rename, remove);
      item.append(description, buttons);
      return item;
    }),
  );
}

async function addPasskey(): Promise<string> {
  const started = await asSignedIn.auth.startPasskeyRegistration({});
  const credentialJson = await browserCredential(() =>
    navigator.credentials.create({
      publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(JSON.parse(started.optionsJson)),
    }),
  );
  const { passkey } = await asSignedIn.auth.finishPasskeyRegistration({
    ceremonyId: started.ceremonyId,
    credentialJson,
    name: passkeyNameInput.value,
  });
  passkeyNameInput.value = "";
  await loadPasskeys();
  return `Added the passkey "${passkey?.name}": it signs you in without your password.`;
}

async function renamePasskey(passkey: Passkey, input: HTMLInputElement): Promise<string> {
  renamedPasskeyField.name = input;
  await asSignedIn.auth.renamePasskey({ passkeyId: passkey.id, name: input.value });
  await loadPasskeys();
  const renamed = passkeys.find(({ id }) => id === passkey.id);
  return `Renamed the passkey "${passkey.name}" to "${renamed?.name}".`;
}

// Step-up protected: the account has a second factor (this passkey at
// least), so unless the session passed one recently (a passkey sign-in
// does) authd asks for a proof: the code typed, else one of the account's
// passkeys (StartPasskeyReauthentication's challenge, answered here).
async function removePasskey(passkey: Passkey): Promise<string> {
  const second = secondFactorProof(passkeyStepUpInput.value);
  try {
    await asSignedIn.auth.removePasskey({ passkeyId: passkey.id, ...(second ? { second } : {}) });
  } catch (error) {
    if (second || !(error instanceof AuthdError && error.reason === "REAUTHENTICATION_REQUIRED")) {
      throw error;
    }
    await asSignedIn.auth.removePasskey({ passkeyId: passkey.id, second: await passkeyStepUp() });
  }
  passkeyStepUpInput.value = "";
  await loadPasskeys();
  return `Removed the passkey "${passkey.name}": it signs in no more.`;
}

// For an account made with a passkey, which has none: the page cannot tell
// beforehand, and authd says PASSWORD_ALREADY_SET for one that has.
async function setPassword(): Promise<string> {
  await asSignedIn.auth.setPassword({ newPassword: setPasswordInput.value });
  setPasswordInput.value = "";
  return "Password set: your username and password sign you in too, with your passkey as the second step.";
}

// A passkey's proof for one step-up request: an assertion of the
// challenge authd bound to this session.
async function passkeyStepUp() {
  const { optionsJson } = await asSignedIn.auth.startPasskeyReauthentication({});
  const credentialJson = await browserCredential(() =>
    navigator.credentials.get({ publicKey: requestOptions(optionsJson) }),
  );
  return proof({ passkeyCredentialJson: credentialJson });
}

function cancelSecondFactor(): void {
  pendingLogin = undefined;
  secondFactorInput.value = "";
  panels.forEach((each) => each.clear());
  showSession();
}

async function startTotp(): Promise<string> {
  const started = await asSignedIn.auth.startTotpEnrollment({});
  enrollment = { secret: started.secret, qrSvg: started.qrSvg };
  recoveryCodes = [];
  confirmTotpInput.value = "";
  showMfa();
  confirmTotpInput.focus();
  return "Add the key to your authenticator app, then enter the code it shows.";
}

async function confirmTotp(): Promise<string> {
  const confirmed = await asSignedIn.auth.confirmTotpEnrollment({ code: confirmTotpInput.value.trim() });
  enrollment = undefined;
  confirmTotpInput.value = "";
  recoveryCodes = confirmed.recoveryCodes;
  await loadMfaStatus();
  return "Two-factor authentication is on: every other browser is signed out.";
}

async function disableTotp(): Promise<string> {
  const second = secondFactorProof(disableTotpInput.value);
  await asSignedIn.auth.disableTotp(second ? { second } : {});
  disableTotpInput.value = "";
  recoveryCodes = [];
  await loadMfaStatus();
  return "Two-factor authentication is off: every other browser is signed out.";
}

// Step-up protected as removing a passkey: unless the session passed the
// account's second factor recently, the code typed, else one of the
// account's passkeys. Setting the verified address again changes nothing,
// and authd answers it still verified.
async function setEmail(): Promise<string> {
  const second = secondFactorProof(setEmailCodeInput.value);
  const request = { email: setEmailInput.value.trim() };
  let user;
  try {
    ({ user } = await asSignedIn.auth.setEmail({ ...request, ...(second ? { second } : {}) }));
  } catch (error) {
    const stepUp = error instanceof AuthdError && error.reason === "REAUTHENTICATION_REQUIRED";
    if (second || !stepUp || passkeys.length === 0) {
      throw error;
    }
    ({ user } = await asSignedIn.auth.setEmail({ ...request, second: await passkeyStepUp() }));
  }
  if (!user) {
    throw new Error("authd left out the account it always sends");
  }
  email = emailOf(user);
  setEmailInput.value = "";
  setEmailCodeInput.value = "";
  showEmail();
  return email.verified
    ? `${email.address} is your verified address already.`
    : `Address set: open the link mailed to ${email.address} to verify it.`;
}

async function resendEmail(): Promise<string> {
  await asSignedIn.auth.resendEmailVerification({});
  return `Sent a new link to ${email?.address ?? "your address"}: the links mailed before it no longer work.`;
}

// "Send a new link" after a link that no longer worked: its outcome
// replaces what the panel said about the link.
async function resendFromVerifyPanel(): Promise<string> {
  verifyEmailPanel.clear();
  const sent = await resendEmail();
  failedLink = false;
  showEmail();
  return sent;
}

// The routes of the mails' links, `#/verify-email?token=...` and
// `#/reset-password?token=...`. The token rides in the fragment, which no
// server sees; the page takes it off the address bar once read, so that a
// reload or a copied address does not send it again. Undefined when the
// page was not opened from such a link.
function tokenFromLink(route: "verify-email" | "reset-password"): string | undefined {
  const query = new RegExp(`^#/${route}\\?(.*)$`).exec(location.hash)?.[1];
  if (query === undefined) {
    return undefined;
  }
  history.replaceState(null, "", `${location.pathname}${location.search}`);
  return new URLSearchParams(query).get("token") ?? "";
}

// Opened from a verification link (on load, after the session was resumed,
// or in a tab already showing the page): VerifyEmail with its token, said
// in the verification panel until dismissed.
async function verifyFromLink(): Promise<void> {
  const token = tokenFromLink("verify-email");
  if (token === undefined) {
    return;
  }
  failedLink = false;
  verifyEmailPanel.clear();
  verifyEmailSection.hidden = false;
  await run(verifyEmailPanel, () => verifyEmail(token));
  showEmail();
}

// No bearer: the token is the proof, and the link may be opened signed out
// or in another browser. The address is shown to the account signed in.
async function verifyEmail(token: string): Promise<string> {
  let user;
  try {
    ({ user } = await anyone.auth.verifyEmail({ token }));
  } catch (error) {
    // Expired, used, or replaced by a newer mail: a new link may help.
    failedLink = error instanceof AuthdError && error.reason === "EMAIL_TOKEN_INVALID";
    throw error;
  }
  const session = authd.current;
  if (session && user && user.id === session.user.id) {
    email = emailOf(user);
    return `Your email address ${user.email} is verified.`;
  }
  return session
    ? "The email address is verified, for an account other than the one signed in here."
    : "Your email address is verified. Sign in to use your account.";
}

// Either route of a mail's link, on load (once the session was resumed) or
// in a tab already showing the page.
async function followLink(): Promise<void> {
  await verifyFromLink();
  await resetFromLink();
}

// "Forgot your password?": the form takes the username typed to sign in,
// if any.
function openRequestReset(): void {
  requestingReset = true;
  requestResetInput.value = signInUsername.value.trim();
  panels.forEach((each) => each.clear());
  showSession();
  requestResetInput.focus();
}

function closeRequestReset(): void {
  requestingReset = false;
  panels.forEach((each) => each.clear());
  showSession();
  signInUsername.focus();
}

// authd answers the same whether or not the name has an account, and the
// page says no more: the mailbox tells the person, nobody else.
async function requestReset(): Promise<string> {
  const name = requestResetInput.value.trim();
  await authd.requestPasswordReset(name);
  return `If "${name}" is an account with a verified email address, a link to set a new password was mailed to that address. It works once, for a limited time; asking again replaces it.`;
}

// Opened from a reset mail's link: the form for the new password, once
// the link is known to work.
async function resetFromLink(): Promise<void> {
  const token = tokenFromLink("reset-password");
  if (token === undefined) {
    return;
  }
  resetLink = { token, passkey: false, secondFactor: false, failed: false };
  requestingReset = false;
  resetPasswordInput.value = "";
  resetPasswordRepeatInput.value = "";
  resetPasswordCodeInput.value = "";
  resetPasswordPanel.clear();
  showSession();
  await run(resetPasswordPanel, checkResetLink);
  if (resetLink && !resetLink.failed) {
    resetPasswordInput.focus();
  }
}

// StartPasskeyPasswordReset is the one call that reads a reset token
// without spending it: a link that no longer works is said at once, not
// after the person typed a password twice, and its answer says whether the
// account has a passkey (PASSKEY_NOT_FOUND when it has none).
async function checkResetLink(): Promise<string> {
  resetPasswordPanel.clear();
  const link = resetLink;
  if (!link) {
    return "";
  }
  try {
    await authd.startPasskeyPasswordReset(link.token);
    link.passkey = true;
  } catch (error) {
    if (!(error instanceof AuthdError && error.reason === "PASSKEY_NOT_FOUND")) {
      throw resetRefused(error);
    }
  }
  showSession();
  return "Choose a new password, and type it twice.";
}

// What a refusal of the reset link means for the form: a link that no
// longer works is given up (a new one can be requested); MFA_REQUIRED
// shows the code field, which the refusal then marks.
function resetRefused(error: unknown): unknown {
  if (resetLink && error instanceof AuthdError) {
    if (error.reason === "PASSWORD_RESET_TOKEN_INVALID") {
      resetLink.failed = true;
    } else if (error.reason === "MFA_REQUIRED") {
      resetLink.secondFactor = true;
    }
    showSession();
  }
  return error;
}

// The page's own check, before anything goes to authd.
function checkRepeatedPassword(): void {
  if (resetPasswordInput.value !== resetPasswordRepeatInput.value) {
    const description = "The two passwords differ: type the same one twice.";
    throw new AuthdError({
      code: Code.InvalidArgument,
      message: description,
      fieldViolations: [{ field: REPEATED_PASSWORD, reason: "", description }],
    });
  }
}

// ResetPassword with the code typed (once authd asked for one), or with
// `second` (a passkey's assertion): signed in as after a login, every
// other session of the account ended.
async function resetPassword(second?: SecondFactor): Promise<string> {
  resetPasswordPanel.clear();
  const link = resetLink;
  if (!link) {
    return "";
  }
  checkRepeatedPassword();
  const code = resetPasswordCodeInput.value.trim();
  let state;
  try {
    state = await authd.resetPassword(link.token, resetPasswordInput.value, second ?? (code ? secondFactor(code) : undefined));
  } catch (error) {
    throw resetRefused(error);
  }
  resetLink = undefined;
  resetPasswordInput.value = "";
  resetPasswordRepeatInput.value = "";
  resetPasswordCodeInput.value = "";
  const done = `Password set. Welcome, ${await signedIn(state)}: every other browser is signed out.`;
  const left = state.recoveryCodesLeft;
  return left === undefined ? done : `${done} ${countOf(left, "recovery code")} left.`;
}

// "Use a passkey": a challenge bound to the reset token, answered by the
// browser as for the second step of signing in. The autofill request is
// given up first: a browser runs one WebAuthn request at a time.
async function resetPasswordWithPasskey(): Promise<string> {
  resetPasswordPanel.clear();
  const link = resetLink;
  if (!link) {
    return "";
  }
  checkRepeatedPassword();
  autofill?.abort();
  let optionsJson: string;
  try {
    optionsJson = await authd.startPasskeyPasswordReset(link.token);
  } catch (error) {
    throw resetRefused(error);
  }
  const passkeyCredentialJson = await browserCredential(() =>
    navigator.credentials.get({ publicKey: requestOptions(optionsJson) }),
  );
  return resetPassword({ passkeyCredentialJson });
}

// After a link that no longer works: "Request a new link", or "Dismiss".
function giveUpResetLink(requestAnother: boolean): void {
  resetLink = undefined;
  resetPasswordPanel.clear();
  if (requestAnother) {
    openRequestReset();
  } else {
    showSession();
  }
}

async function copySecret(): Promise<void> {
  secretInput.select();
  mfaPanel.clear();
  try {
    await navigator.clipboard.writeText(secretInput.value);
    mfaPanel.succeed("Copied the key.");
  } catch {
    // No clipboard permission: the key is selected for the person to copy.
    mfaPanel.succeed("The key is selected: copy it.");
  }
}

async function describeToken(accessToken: string): Promise<string> {
  const { user, expiresAt } = await anyone.auth.verify({ accessToken });
  return `The token belongs to ${user?.username}, valid until ${date(expiresAt).toLocaleString()}.`;
}

// Who am I? is Verify of the session's own token: made through the helper,
// so that a refusal ends the session here too.
async function whoAmI(): Promise<string> {
  return authd.current ? authd.withToken(describeToken) : "Not signed in.";
}

async function logOut(): Promise<string> {
  if (!authd.current) {
    return "Not signed in.";
  }
  await authd.logOut();
  showSessionList([]);
  return "Signed out: this session's tokens are refused from now on.";
}

async function mySessions(): Promise<SessionInfo[]> {
  const { sessions } = await asSignedIn.auth.listSessions({});
  return sessions.map(sessionInfo);
}

function sessionInfo(session: Session): SessionInfo {
  return {
    id: session.id,
    createdAt: date(session.createdAt),
    lastUsedAt: date(session.lastUsedAt),
    expiresAt: date(session.expiresAt),
    current: session.current,
    clientAddress: session.clientAddress,
    userAgent: session.userAgent,
  };
}

// Message fields are optional in proto3; authd always sets these.
function date(timestamp: Timestamp | undefined): Date {
  if (timestamp === undefined) {
    throw new Error("authd left out a time it always sends");
  }
  return timestampDate(timestamp);
}

async function listSessions(): Promise<string> {
  if (!authd.current) {
    return "Not signed in.";
  }
  const sessions = await mySessions();
  showSessionList(sessions);
  return sessions.length === 1 ? "1 live session." : `${sessions.length} live sessions.`;
}

async function endOtherSession(other: SessionInfo): Promise<string> {
  if (!authd.current) {
    return "Not signed in.";
  }
  await asSignedIn.auth.revokeSession({ sessionId: other.id });
  showSessionList(await mySessions());
  return `Ended the session started ${other.createdAt.toLocaleString()}.`;
}

function showSessionList(sessions: SessionInfo[]): void {
  sessionList.replaceChildren(
    ...sessions.map((listed) => {
      const item = document.createElement("li");
      const description = document.createElement("div");
      const started = document.createElement("span");
      started.textContent = `Started ${listed.createdAt.toLocaleString()} from ${listed.clientAddress}`;
      const agent = document.createElement("small");
      agent.textContent = listed.userAgent || "unknown client";
      description.append(started, agent);
      item.append(description);
      if (listed.current) {
        // Ended with "Sign out", which also clears this browser's cookies.
        const marker = document.createElement("strong");
        marker.textContent = "This browser";
        item.append(marker);
      } else {
        const end = document.createElement("button");
        end.type = "button";
        end.textContent = "End";
        end.addEventListener("click", () => void run(sessionsPanel, () => endOtherSession(listed)));
        item.append(end);
      }
      return item;
    }),
  );
}

async function changePassword(): Promise<string> {
  if (!authd.current) {
    return "Not signed in.";
  }
  const code = changePasswordCodeInput.value.trim();
  const state = await authd.changePassword(
    currentPasswordInput.value,
    newPasswordInput.value,
    code ? secondFactor(code) : undefined,
  );
  currentPasswordInput.value = "";
  newPasswordInput.value = "";
  changePasswordCodeInput.value = "";
  await signedIn(state);
  return "Password changed: every other browser is signed out.";
}

async function deleteAccount(): Promise<string> {
  const session = authd.current;
  if (!session) {
    return "Not signed in.";
  }
  const { username } = session.user;
  const code = deleteAccountCodeInput.value.trim();
  await authd.deleteAccount(deletePasswordInput.value, code ? secondFactor(code) : undefined);
  deletePasswordInput.value = "";
  deleteAccountCodeInput.value = "";
  showSessionList([]);
  return `Deleted the account ${username}.`;
}

function onSubmit(form: HTMLFormElement, panel: Panel, action: () => Promise<string>): void {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void run(panel, action);
  });
}

onSubmit(signInForm, signInPanel, logIn);
onSubmit(registerForm, registerPanel, register);
onSubmit(changePasswordForm, changePasswordPanel, changePassword);
onSubmit(deleteAccountForm, deleteAccountPanel, deleteAccount);
onSubmit(secondFactorForm, secondFactorPanel, () => completeLogin());
onSubmit(setPasswordForm, setPasswordPanel, setPassword);
onSubmit(setEmailForm, setEmailPanel, setEmail);
resendEmailButton.addEventListener("click", () => void run(emailPanel, resendEmail));
verifyEmailResendButton.addEventListener("click", () => void run(verifyEmailPanel, resendFromVerifyPanel));
verifyEmailDismissButton.addEventListener("click", () => {
  failedLink = false;
  verifyEmailPanel.clear();
  verifyEmailSection.hidden = true;
  showEmail();
});
forgotPasswordButton.addEventListener("click", openRequestReset);
cancelRequestResetButton.addEventListener("click", closeRequestReset);
onSubmit(requestResetForm, requestResetPanel, requestReset);
onSubmit(resetPasswordForm, resetPasswordPanel, () => resetPassword());
resetPasswordPasskeyButton.addEventListener("click", () =>
  void run(resetPasswordPanel, resetPasswordWithPasskey).then(offerAutofillOnNextFocus),
);
resetPasswordRequestNewButton.addEventListener("click", () => giveUpResetLink(true));
resetPasswordDismissButton.addEventListener("click", () => giveUpResetLink(false));
// A link opened in a tab that shows the page already changes only the
// fragment: no load, a hashchange.
window.addEventListener("hashchange", () => void followLink());
secondFactorPasskeyButton.addEventListener("click", () => void run(secondFactorPanel, completeLoginWithPasskey));
onSubmit(confirmTotpForm, confirmTotpPanel, confirmTotp);
onSubmit(disableTotpForm, disableTotpPanel, disableTotp);
onSubmit(addPasskeyForm, addPasskeyPanel, addPasskey);
// Refused or cancelled, the autofill it gave up is offered again.
passkeySignInButton.addEventListener("click", () => void run(signInPanel, passkeySignIn).then(offerAutofillOnNextFocus));
passkeyRegisterButton.addEventListener("click", () => void run(registerPanel, passkeyRegister).then(offerAutofillOnNextFocus));
startTotpButton.addEventListener("click", () => void run(mfaPanel, startTotp));
cancelSecondFactorButton.addEventListener("click", cancelSecondFactor);
copySecretButton.addEventListener("click", () => void copySecret());
recoveryCodesSavedButton.addEventListener("click", () => {
  recoveryCodes = [];
  mfaPanel.clear();
  showMfa();
});
onSubmit(checkTokenForm, checkTokenPanel, () => describeToken(tokenToCheckInput.value.trim()));
whoAmIButton.addEventListener("click", () => void run(sessionPanel, whoAmI));
logOutButton.addEventListener("click", () => void run(sessionPanel, logOut));
listSessionsButton.addEventListener("click", () => void run(sessionsPanel, listSessions));

// Signed out after it, the username field's autofill offers passkeys. A
// mail's link is followed once the page knows who is signed in.
void run(sessionPanel, resume).then(followLink).then(offerAutofillWhileSignedOut);
