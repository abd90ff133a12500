import { memoryUsage } from "node:process";
import { httpMetrics, type Counter, type Histogram, type HttpMetrics, type Registry } from "@fogline/shared/metrics";
import type { ReplayGuard } from "./replay.js";

/** What the cloud half exports on GET /metrics, besides the per-request HTTP metrics. */
export interface CloudMetrics {
  http: HttpMetrics;
  /** tail graph run time (onnxruntime-node), by model */
  inference: Histogram;
  /** refused edge->cloud calls: missing | malformed | stale | invalid | replayed */
  authFailures: Counter;
  /** activations answered, by model and wire precision */
  tailRows: Counter;
}

export function cloudMetrics(registry: Registry, replay: ReplayGuard): CloudMetrics {
  registry.gauge("fogline_replay_cache_entries", "Signatures remembered for replay protection (this instance).", [], (g) =>
    g.set(undefined, replay.size),
  );
  registry.gauge("process_resident_memory_bytes", "Resident set size of the cloud process.", [], (g) => g.set(undefined, memoryUsage.rss()));
  registry.gauge("nodejs_heap_used_bytes", "V8 heap in use.", [], (g) => g.set(undefined, memoryUsage().heapUsed));
  return {
    http: httpMetrics(registry),
    inference: registry.histogram("fogline_inference_duration_seconds", "Graph run time by model and stage (tail: onnxruntime-node).", [
      "model",
      "stage",
    ]),
    authFailures: registry.counter("fogline_auth_failures_total", "Edge->cloud calls refused with 401, by reason.", ["reason"]),
    tailRows: registry.counter("fogline_tail_rows_total", "Activations run through the tail, by model and wire precision.", ["model", "precision"]),
  };
}
