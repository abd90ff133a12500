import { z } from "zod";
import { ModelName } from "./manifest.js";

export const ExitMode = z.enum(["auto", "edge", "cloud"]);
export type ExitMode = z.infer<typeof ExitMode>;

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
});
export type ClassifyQuery = z.infer<typeof ClassifyQuery>;

export const TopEntry = z.object({
  label: z.string(),
  classIndex: z.number().int().nonnegative(),
  score: z.number(),
});
export type TopEntry = z.infer<typeof TopEntry>;

export const WirePrecision = z.enum(["fp32", "fp16", "int8"]);
export type WirePrecision = z.infer<typeof WirePrecision>;

const EnergyPart = {
  edge: z.number(),
  /** 0 when the edge answered: the tail never ran */
  cloud: z.number(),
  total: z.number(),
  /** the same image through the full-precision ResNet-32 without exits */
  fullPrecision: z.number(),
  /** fullPrecision / total */
  saving: z.number(),
};

/** Modelled energy of this request (shared/src/energy.ts; constants in shared/energy.json). */
export const RequestEnergy = z.object({
  /** paper model: units of one full-precision MAC, a b-bit MAC costs b/32 */
  paper: z.object({ unit: z.literal("fp32-mac"), ...EnergyPart }),
  /** Horowitz 45 nm operation energies plus SRAM weight reads, picojoules */
  op45nm: z.object({ unit: z.literal("pJ"), ...EnergyPart }),
});

/** 200 body of `POST /v1/classify`. */
export const ClassifyResponse = z.object({
  model: z.object({ name: z.string(), version: z.string(), fingerprint: z.string() }),
  label: z.string(),
  classIndex: z.number().int().nonnegative(),
  /** softmax probability of `label` under the head that answered */
  score: z.number(),
  /** top 5 (fewer when the model has fewer classes) */
  top: z.array(TopEntry),
  exit: z.object({
    at: z.enum(["edge", "cloud"]),
    /** natural-log softmax entropy of the exit logits */
    entropy: z.number(),
    threshold: z.number(),
    /** the `exit` query the client asked for */
    mode: ExitMode,
  }),
  degraded: z.boolean(),
  /** why the cloud could not answer, when `degraded` */
  degradedReason: z.string().optional(),
  /** split activation bytes sent to the cloud and their precision, when the cloud was called */
  wire: z.object({ precision: WirePrecision, bytes: z.number().int() }).optional(),
  energy: RequestEnergy,
  /**
   * Milliseconds. Inside workerd the clock only advances on I/O (Spectre mitigation), so edge
   * CPU phases read 0 there; `cloudMs` (a network hop) is real.
   */
  timings: z.object({
    decodeMs: z.number(),
    edgeMs: z.number(),
    cloudMs: z.number().optional(),
    totalMs: z.number(),
  }),
});
export type ClassifyResponse = z.infer<typeof ClassifyResponse>;
