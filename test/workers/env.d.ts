import type { Bindings } from "../../workers/src/env.js";

declare global {
  namespace Cloudflare {
    interface Env extends Bindings {}
  }
}
