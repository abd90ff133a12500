/**
 * The cloud's configuration from its environment, validated once at start-up: a bad value stops
 * the process with a message instead of surfacing on a request.
 */
import * as z from "zod";
import { DEFAULT_MAX_SKEW_S, MIN_SECRET_LENGTH } from "../../shared/src/hmac.js";
import { LogLevel } from "../../shared/src/log.js";

const int = (fallback: number) => z.coerce.number().int().positive().default(fallback);
const blank = (v: string | undefined) => (v === undefined || v.trim() === "" ? undefined : v.trim());

export const DEFAULT_REPLAY_CACHE_SIZE = 100_000;
export const DEFAULT_MAX_BATCH = 64;

const CloudConfig = z.object({
  secret: z.string().min(MIN_SECRET_LENGTH, `FOGLINE_HMAC_SECRET must be set to at least ${MIN_SECRET_LENGTH} characters (npm start generates one into .dev.vars)`),
  port: z.coerce.number().int().min(0).max(65535).default(8788),
  host: z.string().default("127.0.0.1"),
  modelsDir: z.string().default("models"),
  ortThreads: int(1),
  maxSkewS: int(DEFAULT_MAX_SKEW_S),
  maxBatch: int(DEFAULT_MAX_BATCH),
  replayCacheSize: int(DEFAULT_REPLAY_CACHE_SIZE),
  logLevel: LogLevel.default("info"),
  metricsToken: z.string().optional(),
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
  });
  if (!r.success) throw new Error(`invalid cloud configuration: ${z.prettifyError(r.error)}`);
  return r.data;
}
