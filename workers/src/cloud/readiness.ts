/**
 * Readiness beyond the edge's own settings (issue 17): is the cloud accepting this edge's calls?
 * Two answers of the cloud mean a broken deployment rather than an outage, and make the edge not
 * ready (`/healthz`, `/v2/health/ready`: 503 with the problem):
 *
 * - a **401**: the cloud refuses the signature, i.e. the halves hold different secrets (or their
 *   clocks are more than the cloud's window, 60 s, apart): `cloud_signature_refused`;
 * - a **409**: the cloud serves another export of a model (fingerprint): `cloud_model_mismatch`.
 *
 * No cloud call per health check: the isolate remembers, per model, the last such answer of any
 * call it made (traffic included, recorded by the pipeline), and a readiness check that finds none
 * younger than PROBE_INTERVAL_MS makes one signed probe per model (a one-sample zero activation;
 * a few ms of the cloud's time), at most one in flight per model. Because the probe does not
 * depend on traffic, a fixed deployment turns ready again within PROBE_INTERVAL_MS even when
 * nothing is sent to the cloud meanwhile. Answers that say nothing about the secret or the export
 * (timeouts, connection errors, 5xx) change nothing here: an outage degrades answers
 * (`degradedReason`) and shows in the metrics, it does not flip readiness.
 *
 * The memory is keyed by the parsed configuration object (one per `env` object, which workerd
 * keeps for the isolate's life), so a new secret or CLOUD_URL starts from nothing.
 */
import type { ConfigProblem } from "@fogline/shared/schemas/models";
import type { EdgeConfig } from "../env.js";
import type { EdgeModel } from "../models/registry.js";
import { edgeLogger } from "../observability.js";
import { CloudError, probeCloud, type CloudFailure } from "./client.js";

/** How long a remembered answer stands before readiness asks the cloud again. */
export const PROBE_INTERVAL_MS = 30_000;

type Verdict = "ok" | "unauthorized" | "model_mismatch";

interface ModelState {
  /** the last answer that says something about the secret or the export */
  verdict?: Verdict;
  detail?: string;
  /** when that answer came, or a probe last ran (ms) */
  checkedAt: number;
  /** a probe of this model in flight since (ms) */
  probingSince?: number;
}

const states = new WeakMap<EdgeConfig, Map<string, ModelState>>();

function stateOf(cfg: EdgeConfig, model: string): ModelState {
  let byModel = states.get(cfg);
  if (!byModel) states.set(cfg, (byModel = new Map()));
  let s = byModel.get(model);
  if (!s) byModel.set(model, (s = { checkedAt: -Infinity }));
  return s;
}

/** Records what a cloud call (traffic or probe) said; the pipeline calls it after every call. */
export function noteCloudAnswer(cfg: EdgeConfig, model: string, outcome: "ok" | CloudFailure, detail?: string): void {
  if (outcome !== "ok" && outcome !== "unauthorized" && outcome !== "model_mismatch") return;
  const s = stateOf(cfg, model);
  if (outcome !== "ok" && s.verdict !== outcome) {
    // once per change, with the detail (the cloud's own message) for the operator
    edgeLogger(cfg.logLevel).log("error", "not ready: the cloud refuses this edge's calls", { model, failure: outcome, detail });
  }
  s.verdict = outcome;
  s.detail = detail;
  s.checkedAt = Date.now();
}

/** Probes every model whose last answer is older than PROBE_INTERVAL_MS; then the problems. */
export async function cloudProblems(cfg: EdgeConfig, models: readonly EdgeModel[], requestId: string): Promise<ConfigProblem[]> {
  // a Worker that cannot call the cloud already reports why (cfg.problems)
  if (cfg.problems.length || !cfg.cloudUrl || !cfg.hmacSecret) return [];
  const now = Date.now();
  await Promise.all(
    models.map(async (m) => {
      const s = stateOf(cfg, m.manifest.name);
      if (now - s.checkedAt < PROBE_INTERVAL_MS) return;
      // one probe at a time per model; meanwhile, the last answer stands
      if (s.probingSince !== undefined && now - s.probingSince < cfg.cloudTimeoutMs + 1000) return;
      s.probingSince = now;
      try {
        await probeCloud({
          cloudUrl: cfg.cloudUrl,
          secret: cfg.hmacSecret,
          manifest: m.manifest,
          precision: cfg.wirePrecision,
          timeoutMs: cfg.cloudTimeoutMs,
          requestId,
        });
        noteCloudAnswer(cfg, m.manifest.name, "ok");
      } catch (e) {
        if (!(e instanceof CloudError)) throw e;
        noteCloudAnswer(cfg, m.manifest.name, e.reason, e.message);
        // an answer that says nothing new still counts as a check: no probe storm in an outage
        s.checkedAt = Date.now();
      } finally {
        s.probingSince = undefined;
      }
    }),
  );

  const refused: string[] = [];
  const mismatched: string[] = [];
  for (const m of models) {
    const v = stateOf(cfg, m.manifest.name).verdict;
    if (v === "unauthorized") refused.push(m.manifest.name);
    if (v === "model_mismatch") mismatched.push(m.manifest.name);
  }
  const problems: ConfigProblem[] = [];
  if (refused.length) {
    problems.push({
      code: "cloud_signature_refused",
      message: `the cloud refuses this edge's signed calls (401) for ${list(refused)}: FOGLINE_HMAC_SECRET differs between the edge and the cloud, or their clocks are over 60 s apart (docs/deploy.md)`,
    });
  }
  if (mismatched.length) {
    problems.push({
      code: "cloud_model_mismatch",
      message: `the cloud serves another export (fingerprint) of ${list(mismatched)} (409): deploy both halves from the same models/ (docs/deploy.md)`,
    });
  }
  return problems;
}

const list = (names: string[]) => names.map((n) => `"${n}"`).join(", ");
