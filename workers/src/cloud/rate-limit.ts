/**
 * Per-client limit on cloud-bound work (issue 17): anyone could otherwise make the cloud run its
 * tail as often as they like (`exit=cloud`, `threshold=0`, 64 samples per OIP request).
 *
 * It uses Cloudflare's Workers Rate Limiting binding `CLOUD_RATE_LIMITER` (`[[ratelimits]]` in
 * wrangler.toml; docs/deploy.md). Without the binding (dev, `npm start`, the tests unless one
 * provides it) nothing is limited.
 *
 * - **What is counted: each cloud-bound sample**, not each request. The cloud's work is per sample,
 *   so counting requests would let one full OIP batch cost what one image costs. The binding
 *   counts one per `limit()` call and has no weight argument, so a request makes one call per
 *   sample that needs the cloud (at most MAX_BATCH, shared/contracts.json), all at once; the calls are answered
 *   from counters on the machine that runs the Worker. A request is admitted only when every one
 *   of its samples is, so the budget is spent by at most a batch beyond the limit.
 * - **Only cloud-bound work is counted**: samples that exit at the edge, `exit=edge` and an edge
 *   without a usable secret or CLOUD_URL (it calls nothing) never touch the limiter.
 * - **The key is the client's address**, `CF-Connecting-IP` (set by Cloudflare, which replaces any
 *   value the client sends); an IPv6 address counts by its /64, the block one subscriber
 *   usually holds, so rotating addresses within it does not buy a fresh budget. Fogline has no
 *   client credentials: an unverified `Authorization` or API-key header would let a client pick a
 *   new key per request, so it is not used. Without the header (local runs only) every request
 *   shares the key `unknown`.
 * - **When the budget is spent**: `exit=auto` answers from the edge, `degraded: true`,
 *   `degradedReason: "rate_limited"`; `exit=cloud` is 429 `rate_limited` with `Retry-After` (the
 *   binding's period, CLOUD_RATE_LIMIT_PERIOD, 60 s by default: an upper bound, the binding does
 *   not say when its window ends).
 * - **A failing binding admits** (fail open, with a warning): the limit protects the cloud's
 *   capacity, and the cloud still checks every call's signature.
 */
import type { Context } from "hono";
import type { AppEnv, RateLimiter } from "../env.js";

export interface CloudRateLimit {
  limiter: RateLimiter;
  /** the client's key: its address (IPv6: the /64) */
  key: string;
}

/** The limit that applies to this request, or undefined when the Worker has no binding. */
export function cloudRateLimit(c: Context<AppEnv>): CloudRateLimit | undefined {
  const limiter = c.env?.CLOUD_RATE_LIMITER;
  if (!limiter || typeof limiter.limit !== "function") return undefined;
  return { limiter, key: clientKey(c.req.raw.headers) };
}

/** `ip:<IPv4>`, `ip6:<first four hextets>::/64`, or `unknown` without CF-Connecting-IP. */
export function clientKey(headers: Headers): string {
  const ip = headers.get("cf-connecting-ip")?.trim().toLowerCase();
  if (!ip) return "unknown";
  if (!ip.includes(":")) return `ip:${ip}`;
  const prefix = ipv6Prefix64(ip);
  return prefix ? `ip6:${prefix}::/64` : `ip6:${ip}`;
}

/** The first four hextets of an IPv6 address, each without leading zeros; undefined if malformed. */
export function ipv6Prefix64(ip: string): string | undefined {
  const addr = ip.split("%")[0]!; // zone id
  const halves = addr.split("::");
  if (halves.length > 2) return undefined;
  const part = (s: string | undefined) => (s ? s.split(":") : []);
  const head = part(halves[0]);
  const tail = part(halves[1]);
  // an embedded IPv4 tail (::ffff:1.2.3.4) takes two hextets
  const last = tail.length ? tail[tail.length - 1]! : head[head.length - 1];
  const v4 = last?.includes(".") ? 1 : 0;
  const count = head.length + tail.length + v4;
  if (halves.length === 1 ? count !== 8 : count > 7) return undefined;
  const groups = halves.length === 1 ? head : [...head, ...Array<string>(8 - count).fill("0"), ...tail];
  const first = groups.slice(0, 4);
  if (first.some((g) => !/^[0-9a-f]{1,4}$/.test(g))) return undefined;
  return first.map((g) => g.replace(/^0+(?=.)/, "")).join(":");
}

export type LimitOutcome = { admitted: true } | { admitted: false } | { admitted: true; error: string };

/** Spends `samples` of the client's budget; admitted only if every sample fits. */
export async function admit(limit: CloudRateLimit, samples: number): Promise<LimitOutcome> {
  try {
    const answers = await Promise.all(Array.from({ length: samples }, () => limit.limiter.limit({ key: limit.key })));
    return answers.every((a) => a.success) ? { admitted: true } : { admitted: false };
  } catch (e) {
    return { admitted: true, error: String(e) };
  }
}
