import type { Bindings, RateLimiter } from "../../workers/src/env.js";

declare global {
  namespace Cloudflare {
    interface Env extends Bindings {
      /** vitest.config.ts: a miniflare rate limiter (5 per 60 s) that tests pass as CLOUD_RATE_LIMITER */
      TEST_CLOUD_RATE_LIMITER: RateLimiter;
    }
  }
}
