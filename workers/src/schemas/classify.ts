import * as z from "zod";
import { WirePrecision } from "@fogline/shared/schemas/tail";
import { ModelName } from "@fogline/shared/schemas/manifest";

export const ExitMode = z.enum(["auto", "edge", "cloud"]);
export type ExitMode = z.infer<typeof ExitMode>;

/** Which engine runs the edge graph: onnxruntime-web (the reference) or the packed binary engine
 * (models that ship `edge.packed.bin`); `auto` is the deployment's EDGE_ENGINE setting. */
export const EngineChoice = z.enum(["auto", "ort", "packed"]);
export type EngineChoice = z.infer<typeof EngineChoice>;
export const EngineName = z.enum(["ort", "packed"]);
export type EngineName = z.infer<typeof EngineName>;

/** Query of `POST /v1/classify`. Unknown keys are ignored; bad values are a 400 `invalid_query`. */
export const ClassifyQuery = z.object({
  model: ModelName.default("cifar10").meta({ description: "a model under models/; unknown -> 404 `model_not_found`" }),
  threshold: z.coerce
    .number()
    .finite()
    .nonnegative()
    .optional()
    .meta({ description: "entropy threshold for this request (default: the manifest's calibrated value)" }),
  exit: ExitMode.default("auto").meta({
    description: "`auto`: exit at the edge when entropy < threshold; `edge` / `cloud`: force the path",
  }),
  engine: EngineChoice.default("auto").meta({
    description:
      "edge engine: `ort` (onnxruntime-web), `packed` (bit-packed binary engine; 400 for a model without one), `auto`: the Worker's EDGE_ENGINE",
  }),
});
export type ClassifyQuery = z.infer<typeof ClassifyQuery>;

export const TopEntry = z.object({
  label: z.string(),
  classIndex: z.number().int().nonnegative(),
  score: z.number(),
});
export type TopEntry = z.infer<typeof TopEntry>;

const EnergyPart = {
  edge: z.number().meta({ description: "the edge part, paid by every request" }),
  cloud: z.number().meta({ description: "the tail; 0 when the edge answered (the tail never ran)" }),
  total: z.number().meta({ description: "edge + cloud" }),
  fullPrecision: z.number().meta({ description: "the same image through the full-precision ResNet-32 without exits" }),
  saving: z.number().meta({ description: "fullPrecision / total" }),
};

/** Modelled energy of this request (workers/src/infer/energy.ts; constants in shared/energy.json). */
export const RequestEnergy = z.object({
  paper: z
    .object({ unit: z.literal("fp32-mac"), ...EnergyPart })
    .meta({ description: "paper model: units of one full-precision MAC, a b-bit MAC costs b/32" }),
  op45nm: z
    .object({ unit: z.literal("pJ"), ...EnergyPart })
    .meta({ description: "Horowitz 45 nm operation energies plus SRAM weight reads, picojoules" }),
});

/** The out-of-distribution flag of one answer (workers/src/infer/ood.ts, docs/ood.md). */
export const OodVerdict = z.object({
  score: z.number().meta({ description: "free energy of the answering head's logits, -logsumexp(logits); higher = less like any class" }),
  threshold: z.number().meta({
    description: "the calibrated threshold it was compared with: manifest `ood.thresholds[head]` when the exit rule chose the head (exit=auto), `ood.forcedThresholds[head]` when it was forced (exit=edge/cloud, degraded)",
  }),
  flagged: z.boolean().meta({
    description: "score > threshold: probably none of the model's classes (the label is still the best of them)",
  }),
});

/** 200 body of `POST /v1/classify`. */
/**
 * Why the cloud could not answer, as clients see it: a fixed code, never an error message (the
 * detail is in the edge's warning log line, under the same request id).
 */
export const DegradedReason = z.enum(["cloud_not_configured", "cloud_timeout", "cloud_unreachable", "cloud_refused", "cloud_error", "rate_limited"]).meta({
  description:
    "`cloud_not_configured`: the edge has no usable CLOUD_URL or secret; `cloud_timeout`: no answer within CLOUD_TIMEOUT_MS; `cloud_unreachable`: no connection; `cloud_refused`: the cloud refused the signature (401); `cloud_error`: any other failure of the cloud or of its answer; `rate_limited`: this client's budget of cloud-bound samples (CLOUD_RATE_LIMITER) is spent for now, so the cloud was not called",
});
export type DegradedReason = z.infer<typeof DegradedReason>;

export const ClassifyResponse = z.object({
  model: z.object({ name: z.string(), version: z.string(), fingerprint: z.string() }),
  label: z.string(),
  classIndex: z.number().int().nonnegative(),
  score: z.number().meta({ description: "softmax probability of `label` under the head that answered" }),
  top: z.array(TopEntry).meta({ description: "top 5, best first (fewer when the model has fewer classes)" }),
  exit: z.object({
    at: z.enum(["edge", "cloud"]).meta({ description: "the head that answered" }),
    entropy: z.number().meta({ description: "natural-log softmax entropy of the exit logits" }),
    threshold: z.number().meta({ description: "the threshold this request used" }),
    mode: ExitMode.meta({ description: "the `exit` query the client asked for" }),
  }),
  engine: EngineName.optional().meta({ description: "the engine that ran the edge graph (`ort` or `packed`)" }),
  ood: OodVerdict.optional().meta({
    description: "out-of-distribution flag of the head that answered (docs/ood.md); absent for a model without an `ood` calibration",
  }),
  degraded: z.boolean().meta({ description: "the cloud was needed but could not answer: this is the edge's own prediction" }),
  degradedReason: DegradedReason.optional().meta({ description: "why the cloud could not answer, when `degraded`" }),
  wire: z
    .object({ precision: WirePrecision, bytes: z.number().int() })
    .optional()
    .meta({ description: "split activation bytes sent to the cloud and their precision, when the cloud was called" }),
  energy: RequestEnergy.meta({ description: "modelled computational energy of this request (workers/src/infer/energy.ts; constants in shared/energy.json)" }),
  timings: z.object({
    decodeMs: z.number(),
    edgeMs: z.number(),
    cloudMs: z.number().optional(),
    totalMs: z.number(),
  }).meta({ description: "milliseconds; in deployed workerd edge CPU phases may read 0 (the clock advances on I/O only), `cloudMs` is real" }),
});
export type ClassifyResponse = z.infer<typeof ClassifyResponse>;
