import type { LogLevel, Logger } from "@fogline/shared/log";
import type { RequestVars } from "@fogline/shared/http";
import type { ReplayGuard } from "./replay.js";
import type { CloudMetrics } from "./metrics.js";
import type { CloudModel } from "./models.js";

export interface CloudOptions {
  models: Map<string, CloudModel>;
  /** FOGLINE_HMAC_SECRET: the key edge->cloud calls are signed with */
  secret: string;
  /** replay window for signature timestamps, seconds (FOGLINE_MAX_SKEW_S) */
  maxSkewS: number;
  /** largest batch accepted in one tail call (FOGLINE_MAX_BATCH) */
  maxBatch: number;
  /** signatures remembered for replay protection (FOGLINE_REPLAY_CACHE_SIZE) */
  replayCacheSize: number;
  /** FOGLINE_LOG_LEVEL */
  logLevel: LogLevel;
  /** FOGLINE_METRICS_TOKEN: when set, GET /metrics needs it as a bearer token */
  metricsToken?: string;
  /** clock in ms (tests move it) */
  now: () => number;
}

/** What a request handler sees: the options plus the per-app state built from them. */
export interface CloudState extends CloudOptions {
  replay: ReplayGuard;
  metrics: CloudMetrics;
  logger: Logger;
}

export type CloudEnv = { Variables: RequestVars & { cloud: CloudState } };
