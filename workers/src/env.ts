import * as z from "zod";
import { EngineChoice, WirePrecision } from "../../shared/src/schemas/classify.js";
import { DEFAULT_MAX_BODY_BYTES } from "../../shared/src/upload.js";
import { DEFAULT_MAX_PIXELS } from "../../shared/src/image.js";
import type { RequestVars } from "../../shared/src/http.js";
import { LogLevel } from "../../shared/src/log.js";

/** Worker bindings, declared once (wrangler.toml [vars]; the secret via `wrangler secret put`). */
export interface Bindings {
  /** Base URL of the cloud half, e.g. https://fogline-cloud.example.com */
  CLOUD_URL?: string;
  /** Shared HMAC key of edge->cloud calls (secret) */
  FOGLINE_HMAC_SECRET?: string;
  /** fp32 | fp16 | int8: precision of the split activation on the wire */
  WIRE_PRECISION?: string;
  CLOUD_TIMEOUT_MS?: string;
  MAX_BODY_BYTES?: string;
  MAX_PIXELS?: string;
  /** debug | info | warn | error | silent (default info): JSON log lines of this Worker */
  LOG_LEVEL?: string;
  /** when set (a secret), GET /metrics needs `Authorization: Bearer <token>` */
  METRICS_TOKEN?: string;
  /** auto | ort | packed (default auto): the edge engine (workers/src/infer/session.ts selectEngine) */
  EDGE_ENGINE?: string;
  /** "true" under `npm start` only: close every connection after its response (workers/src/dev.ts) */
  DEV_CLOSE_CONNECTIONS?: string;
}

export type AppEnv = { Bindings: Bindings; Variables: RequestVars };

const intFromString = (fallback: number) => z.coerce.number().int().positive().default(fallback);

const EdgeConfig = z.object({
  cloudUrl: z.url().optional(),
  hmacSecret: z.string().min(1).optional(),
  wirePrecision: WirePrecision.default("int8"),
  cloudTimeoutMs: intFromString(2000),
  maxBodyBytes: intFromString(DEFAULT_MAX_BODY_BYTES),
  maxPixels: intFromString(DEFAULT_MAX_PIXELS),
  logLevel: LogLevel.default("info"),
  metricsToken: z.string().min(1).optional(),
  edgeEngine: EngineChoice.default("auto"),
});
export type EdgeConfig = z.infer<typeof EdgeConfig>;

const blankToUndefined = (v: string | undefined) => (v === undefined || v.trim() === "" ? undefined : v.trim());

const parsed = new WeakMap<Bindings, EdgeConfig>();

/** Parses the bindings; a misconfigured deployment fails loudly on its first request. */
export function edgeConfig(env: Bindings | undefined): EdgeConfig {
  // workerd hands every request of an isolate the same env object: parse it once
  const cached = env && parsed.get(env);
  if (cached) return cached;
  const r = EdgeConfig.safeParse({
    cloudUrl: blankToUndefined(env?.CLOUD_URL),
    hmacSecret: blankToUndefined(env?.FOGLINE_HMAC_SECRET),
    wirePrecision: blankToUndefined(env?.WIRE_PRECISION),
    cloudTimeoutMs: blankToUndefined(env?.CLOUD_TIMEOUT_MS),
    maxBodyBytes: blankToUndefined(env?.MAX_BODY_BYTES),
    maxPixels: blankToUndefined(env?.MAX_PIXELS),
    logLevel: blankToUndefined(env?.LOG_LEVEL),
    metricsToken: blankToUndefined(env?.METRICS_TOKEN),
    edgeEngine: blankToUndefined(env?.EDGE_ENGINE),
  });
  if (!r.success) throw new Error(`invalid Worker configuration: ${z.prettifyError(r.error)}`);
  if (env) parsed.set(env, r.data);
  return r.data;
}
