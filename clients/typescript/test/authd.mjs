// A real authd for the tests: the binary named by AUTHD_BIN, on a free port
// of 127.0.0.1 with a fresh SQLite database and cheap hashing, stopped when
// the test ends. No fixed ports, no sleeps before it serves: its log names
// the address it listens on.
import { spawn, execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { promisify } from "node:util";

const authdBin = process.env.AUTHD_BIN;
if (!authdBin) {
  throw new Error("set AUTHD_BIN to the authd binary to test, e.g. AUTHD_BIN=../../target/debug/authd");
}

export const FEED_TOKEN = "test-feed-token";
export const PASSWORD = "correct horse battery";

/** One authd process; `start()` it, `stop()` it. */
export class TestAuthd {
  constructor(dataDir, options) {
    this.dataDir = dataDir;
    this.options = options;
    this.log = [];
  }

  /**
   * Starts authd with a fresh database (or `beside`'s database, to share
   * users and keys) and `args` on top of the test defaults.
   */
  static async start({ args = [], beside } = {}) {
    const dataDir = beside?.dataDir ?? (await mkdtemp(join(tmpdir(), "authd-ts-")));
    const authd = new TestAuthd(dataDir, { args, ownsDir: !beside });
    await authd.spawn();
    return authd;
  }

  get databaseUrl() {
    return `sqlite://${this.dataDir}/authd.db?mode=rwc`;
  }

  get url() {
    return `http://${this.address}`;
  }

  /** Starts this authd again on `address` (host:port), e.g. its own after a `kill()`: a new run. */
  async spawnOn(address) {
    this.log.push(`-- restarted on ${address}`);
    await this.spawn(address);
  }

  async spawn(listen = "127.0.0.1:0") {
    const child = spawn(
      authdBin,
      [
        "--listen", listen,
        "--database-url", this.databaseUrl,
        "--argon2-memory-kib", "256",
        "--argon2-iterations", "1",
        "--revocation-feed-token", FEED_TOKEN,
        "--shutdown-drain", "0s",
        ...this.options.args,
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    this.child = child;
    this.address = await new Promise((resolve, reject) => {
      const fail = (why) => {
        clearTimeout(timer);
        reject(new Error(`authd ${why}:\n${this.log.join("\n")}`));
      };
      const timer = setTimeout(() => fail("did not start within 10 s"), 10_000);
      child.once("error", (error) => fail(`could not be started: ${error.message}`));
      child.once("exit", (code, signal) => fail(`exited (${code ?? signal}) before serving`));
      // Stays attached, so authd never blocks on a full stderr pipe.
      createInterface({ input: child.stderr }).on("line", (line) => {
        this.log.push(line);
        const listen = /authd serving .* listen=(\S+)/.exec(line)?.[1];
        if (listen) {
          clearTimeout(timer);
          child.removeAllListeners("exit");
          resolve(listen);
        }
      });
    });
  }

  /** Stops authd (SIGKILL: `kill()`, as if the machine went away) and removes its database unless shared. */
  async stop({ keepData = false } = {}) {
    await this.kill("SIGTERM");
    if (this.options.ownsDir && !keepData) {
      await rm(this.dataDir, { recursive: true, force: true });
    }
  }

  async kill(signal = "SIGKILL") {
    const child = this.child;
    if (child.exitCode !== null || child.signalCode !== null) {
      return;
    }
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill(signal);
    const stopped = await Promise.race([exited.then(() => true), new Promise((r) => setTimeout(r, 5_000, false))]);
    if (!stopped) {
      child.kill("SIGKILL");
      await exited;
    }
  }

  /** Runs an admin command (`keys rotate`, `users disable alice`) on this authd's database. */
  async admin(...args) {
    const { stdout } = await promisify(execFile)(authdBin, ["--database-url", this.databaseUrl, ...args]);
    return stdout;
  }
}

/** Polls `probe` until it returns something other than undefined, for at most `timeoutMs`. */
export async function eventually(probe, { timeoutMs = 2_000, everyMs = 20, what = "the condition" } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) {
        return value;
      }
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`${what} did not hold within ${timeoutMs} ms${last ? `: ${last}` : ""}`);
    }
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** A name no other test uses. */
let counter = 0;
export function uniqueName(prefix = "user") {
  counter += 1;
  return `${prefix}${process.pid % 10_000}x${counter}`;
}

// A browser's cookie store, as far as authd's cookies need: Path and
// Max-Age=0 are honoured; Secure is not (the test speaks plain HTTP on
// loopback, as Chromium allows for 127.0.0.1).
export function cookieJar() {
  const cookies = new Map();
  const jarFetch = async (url, init = {}) => {
    const { pathname } = new URL(url);
    const headers = new Headers(init.headers);
    const sent = [...cookies.values()].filter((cookie) => pathname.startsWith(cookie.path));
    if (sent.length > 0) {
      headers.set("cookie", sent.map(({ name, value }) => `${name}=${value}`).join("; "));
    }
    const response = await fetch(url, { ...init, headers });
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(";").map((part) => part.trim());
      const [name, value] = pair.split("=");
      const attribute = (key) =>
        attributes.find((each) => each.toLowerCase().startsWith(`${key}=`))?.split("=")[1];
      if (attribute("max-age") === "0") {
        cookies.delete(name);
      } else {
        cookies.set(name, { name, value, path: attribute("path") ?? "/" });
      }
    }
    return response;
  };
  return { fetch: jarFetch, cookies };
}

/**
 * A TCP proxy to `address` on a free port of 127.0.0.1, whose connections
 * the test can cut (as a network would), and which refuses new ones while
 * blocked.
 */
export async function cuttableProxy(address) {
  const { createServer, connect } = await import("node:net");
  const [host, port] = [address.slice(0, address.lastIndexOf(":")), Number(address.slice(address.lastIndexOf(":") + 1))];
  const sockets = new Set();
  let blocked = false;
  const server = createServer((client) => {
    if (blocked) {
      client.destroy();
      return;
    }
    const upstream = connect(port, host);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      socket.on("error", () => {});
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    /** Cuts every connection, and refuses new ones until `unblock()`. */
    cut() {
      blocked = true;
      sockets.forEach((socket) => socket.destroy());
    },
    unblock() {
      blocked = false;
    },
    close() {
      sockets.forEach((socket) => socket.destroy());
      return new Promise((resolve) => server.close(resolve));
    },
  };
}
