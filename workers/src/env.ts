import * as z from "zod";
import { EngineChoice } from "./schemas/classify.js";
import { WirePrecision } from "@fogline/shared/schemas/tail";
import { DEFAULT_MAX_BODY_BYTES } from "./image/upload.js";
import { DEFAULT_MAX_DECODE_BYTES, DEFAULT_MAX_PIXELS } from "./image/image.js";
import type { RequestVars } from "@fogline/shared/http";
import { LogLevel } from "@fogline/shared/log";
import { checkSecret } from "@fogline/shared/secret";
import type { ConfigProblem, ConfigProblemCode } from "@fogline/shared/schemas/models";

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
  /** bytes one image decode may hold (default 48 MiB; workers/src/image/image.ts) */
  MAX_DECODE_BYTES?: string;
  /** debug | info | warn | error | silent (default info): JSON log lines of this Worker */
  LOG_LEVEL?: string;
  /** when set (a secret), GET /metrics needs `Authorization: Bearer <token>` */
  METRICS_TOKEN?: string;
  /** auto | ort | packed (default auto): the edge engine (workers/src/infer/session.ts selectEngine) */
  EDGE_ENGINE?: string;
  /** "true" under `npm start` only: close every connection after its response (workers/src/dev.ts) */
  DEV_CLOSE_CONNECTIONS?: string;
  /**
   * Workers Rate Limiting binding (`[[ratelimits]]`, docs/deploy.md): each client's budget of
   * cloud-bound samples. Absent (dev, tests): no limit. workers/src/cloud/rate-limit.ts
   */
  CLOUD_RATE_LIMITER?: RateLimiter;
  /** 10 | 60 (default 60): the binding's `period`, which a 429's Retry-After repeats */
  CLOUD_RATE_LIMIT_PERIOD?: string;
}

/** The Rate Limiting binding's one method (workers-types' `RateLimit`), structurally. */
export interface RateLimiter {
  limit(options: { key: string }): Promise<{ success: boolean }>;
}

export type AppEnv = { Bindings: Bindings; Variables: RequestVars };

const intFromString = (fallback: number) => z.coerce.number().int().positive().default(fallback);

const EdgeConfig = z.object({
  // checked below, into `problems`: a bad secret or cloud URL leaves the edge answering on its own
  cloudUrl: z.string().optional(),
  hmacSecret: z.string().optional(),
  wirePrecision: WirePrecision.default("int8"),
  cloudTimeoutMs: intFromString(2000),
  maxBodyBytes: intFromString(DEFAULT_MAX_BODY_BYTES),
  maxPixels: intFromString(DEFAULT_MAX_PIXELS),
  maxDecodeBytes: intFromString(DEFAULT_MAX_DECODE_BYTES),
  logLevel: LogLevel.default("info"),
  metricsToken: z.string().min(1).optional(),
  edgeEngine: EngineChoice.default("auto"),
  cloudRateLimitPeriodS: z.enum(["10", "60"]).default("60").transform(Number),
});

/** Problems of the edge's own settings (the others are the cloud's answers: workers/src/cloud/readiness.ts). */
type SettingProblemCode = Extract<ConfigProblemCode, "hmac_secret_missing" | "hmac_secret_weak" | "cloud_url_missing" | "cloud_url_invalid">;

/** What keeps the edge from calling the cloud; readiness (/healthz, /v2/health/ready) reports it. */
export const CONFIG_PROBLEMS: Record<SettingProblemCode, string> = {
  hmac_secret_missing: "FOGLINE_HMAC_SECRET is not set: `wrangler secret put FOGLINE_HMAC_SECRET` (docs/deploy.md)",
  hmac_secret_weak: "FOGLINE_HMAC_SECRET is a placeholder or weaker than 32 random bytes: set 64 hex characters (`openssl rand -hex 32`)",
  cloud_url_missing: "CLOUD_URL is not set: deploy with `npm run deploy` (docs/deploy.md)",
  cloud_url_invalid: "CLOUD_URL is not an http(s) URL",
};

export type EdgeConfig = Omit<z.infer<typeof EdgeConfig>, "cloudUrl" | "hmacSecret"> & {
  /** undefined unless set and a valid http(s) URL */
  cloudUrl?: string;
  /** undefined unless set and strong enough (shared/src/secret.ts) */
  hmacSecret?: string;
  /** why the cloud cannot be called; empty when it can */
  problems: ConfigProblem[];
};

function cloudUrlOk(raw: string): boolean {
  try {
    const u = new URL(raw);
    return (u.protocol === "https:" || u.protocol === "http:") && u.hostname !== "";
  } catch {
    return false;
  }
}

const blankToUndefined = (v: string | undefined) => (v === undefined || v.trim() === "" ? undefined : v.trim());

const parsed = new WeakMap<Bindings, EdgeConfig>();

/**
 * Parses the bindings. A malformed tunable fails every request loudly; a missing or weak secret
 * or a missing or unparseable CLOUD_URL is a `problem` instead: the edge then never calls the cloud
 * (nor signs with such a secret), degrades cloud-bound answers (`cloud_not_configured`), logs the
 * detail once per isolate, and its readiness endpoints answer 503 with the problems.
 */
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
    maxDecodeBytes: blankToUndefined(env?.MAX_DECODE_BYTES),
    logLevel: blankToUndefined(env?.LOG_LEVEL),
    metricsToken: blankToUndefined(env?.METRICS_TOKEN),
    edgeEngine: blankToUndefined(env?.EDGE_ENGINE),
    cloudRateLimitPeriodS: blankToUndefined(env?.CLOUD_RATE_LIMIT_PERIOD),
  });
  if (!r.success) throw new Error(`invalid Worker configuration: ${z.prettifyError(r.error)}`);
  const { cloudUrl, hmacSecret, ...rest } = r.data;
  const problems: ConfigProblem[] = [];
  const problem = (code: SettingProblemCode, detail?: string) => {
    problems.push({ code, message: CONFIG_PROBLEMS[code] });
    // once per isolate (the result is cached per env object), with the detail for the operator
    if (rest.logLevel === "silent") return;
    const line = { level: "error", role: "edge", msg: "misconfigured: the cloud will not be called", code, detail: detail ?? CONFIG_PROBLEMS[code] };
    console.error(JSON.stringify(line));
  };
  const secret = checkSecret(hmacSecret);
  if (!secret.ok) problem(secret.fault === "missing" ? "hmac_secret_missing" : "hmac_secret_weak", secret.message);
  if (cloudUrl === undefined) problem("cloud_url_missing");
  else if (!cloudUrlOk(cloudUrl)) problem("cloud_url_invalid");
  const cfg: EdgeConfig = {
    ...rest,
    ...(secret.ok && { hmacSecret }),
    ...(cloudUrl !== undefined && cloudUrlOk(cloudUrl) && { cloudUrl }),
    problems,
  };
  if (env) parsed.set(env, cfg);
  return cfg;
}
