// A real SMTP server for the tests that need authd's mail, as the Rust
// tests have one (tests/api/smtp_server.rs): Python's aiosmtpd (`pip install
// aiosmtpd`; `.ci/run` installs it) on a free port of 127.0.0.1, with a
// small handler that reads each message it accepts with Python's own
// `email` package and writes it to a directory as JSON (the envelope, the
// decoded headers and text and HTML bodies, and the raw message), one file
// per mail, renamed into place whole. The web page's Chromium test
// (web/e2e/support.mjs) uses it too.
import { spawn } from "node:child_process";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

// Picks its port itself (a socket bound to port 0, closed, then the
// server's), prints it once the server answers, and runs until its stdin
// closes: a test that dies leaves no server behind.
const HANDLER = String.raw`
import email, email.policy, json, os, socket, sys, time, uuid
from aiosmtpd.controller import Controller

directory = sys.argv[1]

class Save:
    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content
        message = email.message_from_bytes(raw, policy=email.policy.default)
        def body(subtype):
            part = message.get_body((subtype,))
            return part.get_content() if part is not None else None
        record = {
            "envelopeFrom": envelope.mail_from,
            "envelopeTo": envelope.rcpt_tos,
            "from": str(message["From"]),
            "to": str(message["To"]),
            "subject": str(message["Subject"]),
            "messageId": str(message["Message-ID"]),
            "text": body("plain"),
            "html": body("html"),
            "raw": raw.decode("utf-8", "replace"),
        }
        name = "%020d-%s" % (time.time_ns(), uuid.uuid4().hex)
        partial = os.path.join(directory, name + ".partial")
        with open(partial, "w") as file:
            json.dump(record, file)
        os.rename(partial, os.path.join(directory, name + ".json"))
        return "250 Message accepted"

probe = socket.socket()
probe.bind(("127.0.0.1", 0))
port = probe.getsockname()[1]
probe.close()
controller = Controller(Save(), hostname="127.0.0.1", port=port)
controller.start()
print(port, flush=True)
sys.stdin.read()
controller.stop()
`;

/**
 * Starts aiosmtpd; resolves once it answers on its port. `url` is authd's
 * `--smtp-url` for it (plain SMTP, fine on the loopback).
 */
export async function startMailServer() {
  const directory = await mkdtemp(join(tmpdir(), "authd-mail-"));
  const child = spawn("python3", ["-c", HANDLER, directory], { stdio: ["pipe", "pipe", "pipe"] });
  const log = [];
  createInterface({ input: child.stderr }).on("line", (line) => log.push(line));
  const port = await new Promise((resolve, reject) => {
    const fail = (why) => {
      clearTimeout(timer);
      reject(new Error(`aiosmtpd ${why} (pip install aiosmtpd):\n${log.join("\n")}`));
    };
    const timer = setTimeout(() => fail("did not start within 20 s"), 20_000);
    child.once("error", (error) => fail(`could not be started: ${error.message}`));
    child.once("exit", (code, signal) => fail(`exited (${code ?? signal}) before serving`));
    createInterface({ input: child.stdout }).once("line", (line) => {
      clearTimeout(timer);
      child.removeAllListeners("exit");
      resolve(Number(line));
    });
  });
  return new MailServer(child, directory, port, log);
}

/** A running aiosmtpd and the mails it stored; see {@link startMailServer}. */
class MailServer {
  constructor(child, directory, port, log) {
    this.child = child;
    this.directory = directory;
    this.port = port;
    this.log = log;
  }

  get url() {
    return `smtp://127.0.0.1:${this.port}`;
  }

  /** Every mail stored so far, oldest first. */
  async received() {
    const names = (await readdir(this.directory)).filter((name) => name.endsWith(".json")).sort();
    return Promise.all(names.map(async (name) => JSON.parse(await readFile(join(this.directory, name), "utf8"))));
  }

  /** The mails to `address` (an envelope recipient), oldest first. */
  async to(address) {
    return (await this.received()).filter((mail) => mail.envelopeTo.includes(address));
  }

  /**
   * Waits (at most `timeoutMs`) until `count` mails to `address` (with
   * `subject`, when given: an address gets verification, reset and notice
   * mails) have come (authd's outbox sends within its poll interval, a
   * second by default), and resolves to the last of them.
   */
  async waitFor(address, { count = 1, subject, timeoutMs = 20_000 } = {}) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const mails = (await this.to(address)).filter((mail) => subject === undefined || mail.subject === subject);
      if (mails.length >= count) {
        return mails[count - 1];
      }
      if (Date.now() > deadline) {
        const what = subject === undefined ? "mail(s)" : `mail(s) "${subject}"`;
        throw new Error(`${count} ${what} to ${address} expected within ${timeoutMs} ms, ${mails.length} came`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Stops the server and removes the mails. */
  async stop() {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((resolve) => this.child.once("exit", resolve));
      this.child.stdin.end();
      const stopped = await Promise.race([exited.then(() => true), new Promise((r) => setTimeout(r, 5_000, false))]);
      if (!stopped) {
        this.child.kill("SIGKILL");
        await exited;
      }
    }
    await rm(this.directory, { recursive: true, force: true });
  }
}

/**
 * The verification link of a mail's text body: `{--public-url}/#/verify-email?token=...`
 * (undefined when there is none).
 */
export function verificationLink(mail) {
  return /\bhttps?:\/\/\S+#\/verify-email\?token=[A-Za-z0-9_-]+/.exec(mail.text ?? "")?.[0];
}

/**
 * The password reset link of a mail's text body:
 * `{--public-url}/#/reset-password?token=...` (undefined when there is none).
 */
export function resetLink(mail) {
  return /\bhttps?:\/\/\S+#\/reset-password\?token=[A-Za-z0-9_-]+/.exec(mail.text ?? "")?.[0];
}

/** The token of a verification or reset link: what VerifyEmail or ResetPassword takes. */
export function tokenOf(link) {
  return new URLSearchParams(new URL(link).hash.replace(/^#\/[a-z-]+\?/, "")).get("token");
}
