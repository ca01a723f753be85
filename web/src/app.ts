// The demo page: register, log in, ask authd whom a token belongs to, and log
// out, over grpc-web to the authd that served the page.
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { AuthService, type User } from "./gen/auth/v1/auth_pb";
import { ErrorInfoSchema } from "./gen/google/rpc/error_details_pb";

const authd = createClient(
  AuthService,
  createGrpcWebTransport({
    // authd serves the page and the API on one port, so no CORS is involved.
    baseUrl: window.location.origin,
    useBinaryFormat: true,
  }),
);

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

interface Session {
  accessToken: string;
  user: User;
}

// Kept in memory only: reloading the page logs out of the page (the token
// itself stays valid until it expires or is logged out).
let session: Session | undefined;

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
const checkTokenForm = byId("check-token", HTMLFormElement);
const tokenToCheckInput = byId("token-to-check", HTMLInputElement);
const statusArea = byId("status", HTMLParagraphElement);

function showSession(): void {
  sessionText.textContent = session
    ? `Logged in as ${session.user.username}`
    : "Not logged in";
  tokenOutput.value = session?.accessToken ?? "";
}

function showSuccess(message: string): void {
  statusArea.dataset.outcome = "success";
  statusArea.textContent = message;
}

function showError(error: ConnectError): void {
  const code = document.createElement("code");
  code.dataset.testid = "error-code";
  code.textContent = GRPC_CODE_NAMES[error.code];
  const parts: (Node | string)[] = [code];
  // authd puts an ErrorInfo on every error; a failure before reaching it
  // (e.g. the network) has none.
  const [info] = error.findDetails(ErrorInfoSchema);
  if (info) {
    const reason = document.createElement("code");
    reason.dataset.testid = "error-reason";
    reason.textContent = info.reason;
    parts.push(" ", reason);
  }
  parts.push(`: ${error.rawMessage}`);
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
    showError(ConnectError.from(error));
  } finally {
    statusArea.ariaBusy = "false";
    buttons.forEach((button) => (button.disabled = false));
  }
}

function credentials(): { username: string; password: string } {
  return { username: usernameInput.value, password: passwordInput.value };
}

async function register(): Promise<string> {
  const username = startSession(await authd.register(credentials()));
  return `Registered and logged in as ${username}.`;
}

async function logIn(): Promise<string> {
  const username = startSession(await authd.login(credentials()));
  return `Logged in as ${username}.`;
}

// Register and Login answer alike: a token and whom it belongs to.
function startSession(response: { accessToken: string; user?: User }): string {
  session = { accessToken: response.accessToken, user: required(response.user) };
  passwordInput.value = "";
  showSession();
  return session.user.username;
}

async function describeToken(accessToken: string): Promise<string> {
  const { user, expiresAt } = await authd.verify({ accessToken });
  const expiry = timestampDate(required(expiresAt)).toLocaleString();
  return `The token belongs to ${required(user).username}, valid until ${expiry}.`;
}

// Message fields are optional in proto3; authd always sets these.
function required<T>(field: T | undefined): T {
  if (field === undefined) {
    throw new Error("authd left out a field it always sends");
  }
  return field;
}

async function whoAmI(): Promise<string> {
  return session ? describeToken(session.accessToken) : "Not logged in.";
}

async function logOut(): Promise<string> {
  if (!session) {
    return "Not logged in.";
  }
  await authd.logout(
    {},
    { headers: { authorization: `Bearer ${session.accessToken}` } },
  );
  session = undefined;
  showSession();
  return "Logged out: authd refuses that token from now on.";
}

credentialsForm.addEventListener("submit", (event) => {
  event.preventDefault();
  void run(event.submitter === registerButton ? register : logIn);
});
whoAmIButton.addEventListener("click", () => void run(whoAmI));
logOutButton.addEventListener("click", () => void run(logOut));
checkTokenForm.addEventListener("submit", (event) => {
  event.preventDefault();
  void run(() => describeToken(tokenToCheckInput.value.trim()));
});
