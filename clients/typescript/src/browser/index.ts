// @authd/client/browser: authd from a web page. Calls go over grpc-web
// (Connect); what sets or clears the HttpOnly cookies goes over REST, which
// the session helper does.
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import type { Interceptor } from "@connectrpc/connect";
import { createAuthdClient, type AuthdClient } from "../client.js";

export * from "../index.js";
export {
  BrowserSession,
  createSession,
  type CompletedSession,
  type SessionListener,
  type SessionOptions,
  type SessionState,
} from "./session.js";

/** How {@link createBrowserClient} reaches authd. */
export interface BrowserClientOptions {
  /** authd's origin (default: the page's own); another origin must be in authd's `--cors-allowed-origins`. */
  readonly baseUrl?: string;
  /** e.g. a session's `interceptor`, which sends its access token with every call. */
  readonly interceptors?: Interceptor[];
}

/** authd's services over grpc-web (binary), from a page. */
export function createBrowserClient(options: BrowserClientOptions = {}): AuthdClient {
  return createAuthdClient(
    createGrpcWebTransport({
      baseUrl: options.baseUrl ?? globalThis.location.origin,
      useBinaryFormat: true,
      interceptors: options.interceptors ?? [],
    }),
  );
}
