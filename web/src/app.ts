// The demo page: register, log in, ask authd whom a token belongs to, list
// and end sessions, change the password, delete the account, and log out,
// against the authd that served the page (through ./authd).
import * as authd from "./authd";
import { AuthdError, type SessionInfo, type Tokens } from "./authd";

// The access token lives in this variable only. The session survives a
// reload through the HttpOnly refresh cookie, which scripts cannot read:
// on load the page asks authd to renew it.
let session: Tokens | undefined;

function byId<T extends HTMLElement>(id: string, type: { new (): T }): T {
  const element = document.getElementById(id);
  if (!(element instanceof type)) {
    throw new Error(`#${id} is missing or not a ${type.name}`);
  }
  return element;
}

const credentialsForm = byId("credentials", HTMLFormElement);
const usernameInput = byId("username", HTMLInputElement);
const passwordInput = byId("password", HTMLInputElement);
const registerButton = byId("register", HTMLButtonElement);
const whoAmIButton = byId("who-am-i", HTMLButtonElement);
const logOutButton = byId("log-out", HTMLButtonElement);
const sessionText = byId("session", HTMLParagraphElement);
const tokenOutput = byId("token", HTMLOutputElement);
const listSessionsButton = byId("list-sessions", HTMLButtonElement);
const sessionList = byId("session-list", HTMLUListElement);
const changePasswordForm = byId("change-password", HTMLFormElement);
const currentPasswordInput = byId("current-password", HTMLInputElement);
const newPasswordInput = byId("new-password", HTMLInputElement);
const deleteAccountForm = byId("delete-account", HTMLFormElement);
const deletePasswordInput = byId("delete-password", HTMLInputElement);
const checkTokenForm = byId("check-token", HTMLFormElement);
const tokenToCheckInput = byId("token-to-check", HTMLInputElement);
const statusArea = byId("status", HTMLParagraphElement);

function showSession(): void {
  sessionText.textContent = session
    ? `Logged in as ${session.user.username}`
    : "Not logged in";
  tokenOutput.value = session?.accessToken ?? "";
  for (const section of document.querySelectorAll<HTMLElement>(".logged-in")) {
    section.hidden = !session;
  }
}

function showSuccess(message: string): void {
  statusArea.dataset.outcome = "success";
  statusArea.textContent = message;
}

function showError(error: AuthdError): void {
  const code = document.createElement("code");
  code.dataset.testid = "error-code";
  code.textContent = error.status;
  const parts: (Node | string)[] = [code];
  if (error.reason) {
    const reason = document.createElement("code");
    reason.dataset.testid = "error-reason";
    reason.textContent = error.reason;
    parts.push(" ", reason);
  }
  parts.push(`: ${error.message}`);
  statusArea.dataset.outcome = "error";
  statusArea.replaceChildren(...parts);
}

// Runs one call to authd at a time: the buttons are disabled meanwhile, and
// the status area is aria-busy until it shows the outcome.
async function run(action: () => Promise<string>): Promise<void> {
  const buttons = document.querySelectorAll("button");
  buttons.forEach((button) => (button.disabled = true));
  statusArea.ariaBusy = "true";
  try {
    showSuccess(await action());
  } catch (error) {
    showError(
      error instanceof AuthdError
        ? error
        : new AuthdError("PAGE ERROR", undefined, String(error), false),
    );
  } finally {
    statusArea.ariaBusy = "false";
    buttons.forEach((button) => (button.disabled = false));
  }
}

function startSession(tokens: Tokens): string {
  session = tokens;
  showSessionList([]);
  showSession();
  return tokens.user.username;
}

function endSession(): void {
  session = undefined;
  showSessionList([]);
  showSession();
}

// Makes a call with the session's access token. If authd refuses the token
// itself (revoked, expired, ...), the session is over for this page too; a
// wrong password (INVALID_CREDENTIALS) is not.
async function withToken<T>(
  current: Tokens,
  call: (accessToken: string) => Promise<T>,
): Promise<T> {
  try {
    return await call(current.accessToken);
  } catch (error) {
    if (
      error instanceof AuthdError &&
      error.unauthenticated &&
      error.reason !== "INVALID_CREDENTIALS"
    ) {
      endSession();
    }
    throw error;
  }
}

async function resume(): Promise<string> {
  const username = startSession(await authd.refresh());
  return `Welcome back, ${username}: the session was renewed from its cookie.`;
}

async function register(): Promise<string> {
  const tokens = await authd.register(usernameInput.value, passwordInput.value);
  passwordInput.value = "";
  return `Registered and logged in as ${startSession(tokens)}.`;
}

async function logIn(): Promise<string> {
  const tokens = await authd.logIn(usernameInput.value, passwordInput.value);
  passwordInput.value = "";
  return `Logged in as ${startSession(tokens)}.`;
}

async function describeToken(accessToken: string): Promise<string> {
  const { user, expiresAt } = await authd.verify(accessToken);
  return `The token belongs to ${user.username}, valid until ${expiresAt.toLocaleString()}.`;
}

async function whoAmI(): Promise<string> {
  return session ? withToken(session, describeToken) : "Not logged in.";
}

async function logOut(): Promise<string> {
  if (!session) {
    return "Not logged in.";
  }
  await withToken(session, authd.logOut);
  endSession();
  return "Logged out: authd refuses this session's tokens from now on.";
}

async function listSessions(): Promise<string> {
  if (!session) {
    return "Not logged in.";
  }
  const sessions = await withToken(session, authd.listSessions);
  showSessionList(sessions);
  return sessions.length === 1 ? "1 live session." : `${sessions.length} live sessions.`;
}

async function endOtherSession(other: SessionInfo): Promise<string> {
  const current = session;
  if (!current) {
    return "Not logged in.";
  }
  await withToken(current, (token) => authd.revokeSession(token, other.id));
  showSessionList(await withToken(current, authd.listSessions));
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
        // Ended with "Log out", which also clears this browser's cookies.
        const marker = document.createElement("strong");
        marker.textContent = "This browser";
        item.append(marker);
      } else {
        const end = document.createElement("button");
        end.type = "button";
        end.textContent = "End";
        end.addEventListener("click", () => void run(() => endOtherSession(listed)));
        item.append(end);
      }
      return item;
    }),
  );
}

async function changePassword(): Promise<string> {
  if (!session) {
    return "Not logged in.";
  }
  const tokens = await withToken(session, (token) =>
    authd.changePassword(token, currentPasswordInput.value, newPasswordInput.value),
  );
  currentPasswordInput.value = "";
  newPasswordInput.value = "";
  startSession(tokens);
  return "Password changed: every earlier session has ended, and this browser has a new one.";
}

async function deleteAccount(): Promise<string> {
  if (!session) {
    return "Not logged in.";
  }
  const { username } = session.user;
  await withToken(session, (token) => authd.deleteAccount(token, deletePasswordInput.value));
  deletePasswordInput.value = "";
  endSession();
  return `Deleted the account ${username}.`;
}

credentialsForm.addEventListener("submit", (event) => {
  event.preventDefault();
  void run(event.submitter === registerButton ? register : logIn);
});
whoAmIButton.addEventListener("click", () => void run(whoAmI));
logOutButton.addEventListener("click", () => void run(logOut));
listSessionsButton.addEventListener("click", () => void run(listSessions));
changePasswordForm.addEventListener("submit", (event) => {
  event.preventDefault();
  void run(changePassword);
});
deleteAccountForm.addEventListener("submit", (event) => {
  event.preventDefault();
  void run(deleteAccount);
});
checkTokenForm.addEventListener("submit", (event) => {
  event.preventDefault();
  void run(() => describeToken(tokenToCheckInput.value.trim()));
});

void run(resume);
