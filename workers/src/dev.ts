/**
 * Local development only (`npm start` sets DEV_CLOSE_CONNECTIONS): every response asks for its
 * connection to be closed. wrangler dev 4.86.0 (the last release for Node 20) puts a ProxyWorker
 * in front of the Worker and pools keep-alive connections to it; both ends drop an idle
 * connection after 5 s, and a request written into one that is being dropped fails, which the
 * ProxyWorker turns into a 503 "Your worker restarted mid-request" for a POST (the race fixed in
 * workers-sdk PR #15252, wrangler >= 4.13x). Under load that failed ~1% of the requests of
 * `npm run loadtest`; with one request per connection it failed none. Deployed Workers never
 * set it: Cloudflare owns the client connections there.
 */
import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "./env.js";

export function devCloseConnections(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    await next();
    if (c.env?.DEV_CLOSE_CONNECTIONS !== "true") return;
    try {
      c.res.headers.set("connection", "close");
    } catch {
      // immutable headers (a passed-through response): copy it
      c.res = new Response(c.res.body, c.res);
      c.res.headers.set("connection", "close");
    }
  };
}
