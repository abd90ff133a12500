/**
 * The cloud's configuration from its environment, validated once at start-up: a bad value stops
 * the process with a message instead of surfacing on a request.
 */
import * as z from "zod";
import { MAX_BATCH } from "@fogline/shared/contracts";
import { DEFAULT_MAX_SKEW_S } from "@fogline/shared/hmac";
import { LogLevel } from "@fogline/shared/log";
import { checkSecret } from "@fogline/shared/secret";

const int = (fallback: number) => z.coerce.number().int().positive().default(fallback);
const blank = (v: string | undefined) => (v === undefined || v.trim() === "" ? undefined : v.trim());

export const DEFAULT_REPLAY_CACHE_SIZE = 100_000;
/** shared/contracts.json's maxBatch: the most an edge sends in one call; FOGLINE_MAX_BATCH may only lower it */
export const DEFAULT_MAX_BATCH = MAX_BATCH;
/** Node's HTTP server (cloud/src/server.ts; docs/reliability.md "The cloud's HTTP server") */
export const DEFAULT_HEADERS_TIMEOUT_MS = 5_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
export const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 65_000;
export const DEFAULT_MAX_CONNECTIONS = 256;

const CloudConfig = z
  .object({
    secret: z.string().superRefine((v, ctx) => {
      const check = checkSecret(v);
      if (!check.ok) ctx.addIssue({ code: "custom", message: check.message! });
    }),
    port: z.coerce.number().int().min(0).max(65535).default(8788),
    host: z.string().default("127.0.0.1"),
    modelsDir: z.string().default("models"),
    ortThreads: int(1),
    maxSkewS: int(DEFAULT_MAX_SKEW_S),
    maxBatch: z.coerce
      .number()
      .int()
      .positive()
      .max(MAX_BATCH, `FOGLINE_MAX_BATCH may only lower the contract's maxBatch (${MAX_BATCH}, shared/contracts.json): no edge sends more`)
      .default(DEFAULT_MAX_BATCH),
    replayCacheSize: int(DEFAULT_REPLAY_CACHE_SIZE),
    logLevel: LogLevel.default("info"),
    metricsToken: z.string().optional(),
    headersTimeoutMs: int(DEFAULT_HEADERS_TIMEOUT_MS),
    requestTimeoutMs: int(DEFAULT_REQUEST_TIMEOUT_MS),
    keepAliveTimeoutMs: int(DEFAULT_KEEP_ALIVE_TIMEOUT_MS),
    maxConnections: int(DEFAULT_MAX_CONNECTIONS),
  })
  .refine((c) => c.headersTimeoutMs <= c.requestTimeoutMs, {
    message: "FOGLINE_HEADERS_TIMEOUT_MS must not exceed FOGLINE_REQUEST_TIMEOUT_MS",
    path: ["headersTimeoutMs"],
  });
export type CloudConfig = z.infer<typeof CloudConfig>;

export function cloudConfigFromEnv(env: Record<string, string | undefined>): CloudConfig {
  const r = CloudConfig.safeParse({
    secret: env.FOGLINE_HMAC_SECRET ?? "",
    port: blank(env.FOGLINE_CLOUD_PORT) ?? blank(env.PORT),
    host: blank(env.FOGLINE_CLOUD_HOST),
    modelsDir: blank(env.FOGLINE_MODELS_DIR),
    ortThreads: blank(env.FOGLINE_ORT_THREADS),
    maxSkewS: blank(env.FOGLINE_MAX_SKEW_S),
    maxBatch: blank(env.FOGLINE_MAX_BATCH),
    replayCacheSize: blank(env.FOGLINE_REPLAY_CACHE_SIZE),
    logLevel: blank(env.FOGLINE_LOG_LEVEL),
    metricsToken: blank(env.FOGLINE_METRICS_TOKEN),
    headersTimeoutMs: blank(env.FOGLINE_HEADERS_TIMEOUT_MS),
    requestTimeoutMs: blank(env.FOGLINE_REQUEST_TIMEOUT_MS),
    keepAliveTimeoutMs: blank(env.FOGLINE_KEEP_ALIVE_TIMEOUT_MS),
    maxConnections: blank(env.FOGLINE_MAX_CONNECTIONS),
  });
  if (!r.success) throw new Error(`invalid cloud configuration: ${z.prettifyError(r.error)}`);
  return r.data;
}
