// What the browser tests share: a real authd serving the built page (the
// binary named by AUTHD_BIN) on a free port of 127.0.0.1 with a fresh
// database, and Debian's headless Chromium.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const authdBin = process.env.AUTHD_BIN;
if (!authdBin) {
  throw new Error("set AUTHD_BIN to the authd binary to test, e.g. AUTHD_BIN=../target/debug/authd");
}
export const webRoot = fileURLToPath(new URL("../dist", import.meta.url));
if (!existsSync(join(webRoot, "index.html"))) {
  throw new Error(`${webRoot}/index.html is missing: run \`npm run build\` first`);
}

// Starts authd on a free port with a fresh database, cheap hashing and
// `extraArgs`, and resolves once its log names the address it listens on.
export async function startAuthd(dataDir, extraArgs = []) {
  const child = spawn(
    authdBin,
    [
      "--listen", "127.0.0.1:0",
      "--web-root", webRoot,
      "--database-url", `sqlite://${dataDir}/authd.db?mode=rwc`,
      "--argon2-memory-kib", "256",
      "--argon2-iterations", "1",
      // Stop at once on SIGTERM: there is no load balancer to drain.
      "--shutdown-drain", "0s",
      ...extraArgs,
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  const log = [];
  const address = await new Promise((resolve, reject) => {
    const fail = (why) => {
      clearTimeout(timer);
      reject(new Error(`authd ${why}:\n${log.join("\n")}`));
    };
    const timer = setTimeout(() => fail("did not start within 10 s"), 10_000);
    child.once("error", (error) => fail(`could not be started: ${error.message}`));
    child.once("exit", (code, signal) => fail(`exited (${code ?? signal}) before serving`));
    // Stays attached after the address is found, so authd never blocks on a
    // full stderr pipe.
    createInterface({ input: child.stderr }).on("line", (line) => {
      log.push(line);
      const listen = /authd serving .* listen=(\S+)/.exec(line)?.[1];
      if (listen) {
        clearTimeout(timer);
        resolve(listen);
      }
    });
  });
  return { child, log, origin: `http://${address}` };
}

export async function stopAuthd({ child, log }) {
  if (child.exitCode !== null || child.signalCode !== null) {
    console.error(`authd had stopped by itself:\n${log.join("\n")}`);
    return;
  }
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  const stopped = await Promise.race([
    exited.then(() => true),
    new Promise((resolve) => setTimeout(resolve, 5_000, false)),
  ]);
  if (!stopped) {
    child.kill("SIGKILL");
    await exited;
  }
}

/** Debian's Chromium (or $CHROMIUM), headless. */
export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    timeout: 30_000,
  });
}
