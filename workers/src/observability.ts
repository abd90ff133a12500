/**
 * Metrics and logs of this isolate. Workers run many isolates (one or more per location), each
 * with its own registry: `GET /metrics` shows the isolate that answered it, so aggregate over
 * scrapes (or use Workers Analytics) for fleet-wide numbers; under `wrangler dev` there is one.
 * Edge durations come from a clock that only advances on I/O inside workerd (docs/runtime.md#workerds-clock): the
 * cloud call latency is real, edge CPU phases read close to 0.
 */
import type { Context } from "hono";
import { createLogger, type LogLevel, type Logger } from "@fogline/shared/log";
import { httpMetrics, Registry } from "@fogline/shared/metrics";
import { edgeConfig, type AppEnv } from "./env.js";

export const registry = new Registry();

export const metrics = {
  http: httpMetrics(registry),
  /** answers by where they exited (one per sample of a batch) */
  exits: registry.counter("fogline_exits_total", "Answers by model and exit point (edge or cloud), one per sample.", ["model", "at"]),
  oodFlagged: registry.counter(
    "fogline_ood_flagged_total",
    "Answers flagged out of distribution (docs/ood.md), by model and the head that answered, one per sample.",
    ["model", "at"],
  ),
  degraded: registry.counter("fogline_degraded_total", "Requests answered by the edge because the cloud could not (exit=auto), by reason.", [
    "model",
    "reason",
  ]),
  cloudCalls: registry.counter("fogline_cloud_calls_total", "Edge->cloud tail calls by outcome (ok or the failure reason).", ["model", "outcome"]),
  cloudLatency: registry.histogram("fogline_cloud_call_duration_seconds", "Edge->cloud tail call latency (retries included), any outcome.", [
    "model",
  ]),
  cloudProbes: registry.counter("fogline_cloud_probes_total", "Signed readiness probes of the cloud (one sample, at most one per model every 30 s), by outcome.", [
    "model",
    "outcome",
  ]),
  rateLimited: registry.counter("fogline_rate_limited_total", "Cloud-bound requests refused by the per-client limit (CLOUD_RATE_LIMITER), by exit mode.", [
    "model",
    "mode",
  ]),
  cloudRetries: registry.counter("fogline_cloud_retries_total", "Edge->cloud calls retried after a connection error.", ["model"]),
  inference: registry.histogram("fogline_inference_duration_seconds", "Graph run time by model and stage (edge: onnxruntime-web; coarse in workerd).", [
    "model",
    "stage",
  ]),
};

const loggers = new Map<LogLevel, Logger>();

export function edgeLogger(level: LogLevel): Logger {
  let l = loggers.get(level);
  if (!l) loggers.set(level, (l = createLogger("edge", level)));
  return l;
}

/** The logger for a request, at the Worker's LOG_LEVEL (info when the bindings do not parse). */
export function requestLogger(c: Context<AppEnv>): Logger {
  let level: LogLevel = "info";
  try {
    level = edgeConfig(c.env).logLevel;
  } catch {
    // a misconfigured Worker still logs its errors
  }
  return edgeLogger(level);
}
