import * as z from "zod";

/**
 * manifest.json, schemaVersion 1: the executable form of docs/contracts.md. training/export.py
 * writes it; change both together. Objects are `loose` because extra keys are allowed
 * (forward compatible) while missing required keys are an error.
 */
const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, "expected a lowercase sha256 hex digest");
const positiveInt = z.number().int().positive();
const nonNegative = z.number().nonnegative();

export const ModelName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, "model names are lowercase [a-z0-9._-], at most 64 characters");

export const Manifest = z.looseObject({
  schemaVersion: z.literal(1),
  name: ModelName,
  version: z.string().min(1),
  fingerprint: sha256Hex,
  dataset: z.string(),
  labels: z.array(z.string()).min(2),
  input: z.looseObject({
    height: positiveInt,
    width: positiveInt,
    channels: z.literal(3),
    layout: z.literal("NCHW"),
    mean: z.array(z.number()).length(3),
    std: z.array(z.number().positive()).length(3),
    resize: z.literal("area"),
  }),
  architecture: z.looseObject({
    base: z.string(),
    cut: z.number().int().nonnegative(),
    weightBits: positiveInt,
    activationBits: positiveInt,
    exitHead: z.string(),
    exitFeatures: positiveInt,
  }),
  split: z.looseObject({
    name: z.string(),
    shape: z.array(positiveInt).min(1).max(6),
  }),
  exit: z.looseObject({
    threshold: nonNegative,
    entropy: z.literal("natural"),
    rule: z.string(),
    calibration: z.record(z.string(), z.unknown()).optional(),
  }),
  macs: z.looseObject({
    edgeQuantized: nonNegative,
    edgeFullPrecision: nonNegative,
    exitHead: nonNegative,
    /** includes the final FC (`cloudFc`) */
    cloud: nonNegative,
    cloudFc: nonNegative,
    fullPrecisionBaseline: nonNegative,
  }),
  /** parameter counts per part: the energy model charges their memory reads */
  params: z.looseObject({
    edgeQuantized: nonNegative,
    edgeFullPrecision: nonNegative,
    cloud: nonNegative,
    fullPrecisionBaseline: nonNegative,
  }),
  // A validation metric is null when undefined, e.g. cloudAccuracy when every sample exits at the edge.
  validation: z
    .looseObject({
      images: z.number().int().nonnegative(),
      finalAccuracy: z.number().nullable(),
      exitAccuracy: z.number().nullable(),
      hybridAccuracy: z.number().nullable(),
      edgeFraction: z.number().nullable(),
      edgeAccuracy: z.number().nullable(),
      cloudAccuracy: z.number().nullable(),
    })
    .nullable(),
  /** optional: the out-of-distribution flag's calibration (training/ood.py, docs/ood.md) */
  ood: z
    .looseObject({
      score: z.literal("energy"),
      rule: z.string(),
      /** free-energy thresholds per answering head, for answers whose head the exit rule chose (exit=auto) */
      thresholds: z.object({ edge: z.number().finite(), cloud: z.number().finite() }),
      /** the same for answers whose head was forced (exit=edge / exit=cloud, degraded answers) */
      forcedThresholds: z.object({ edge: z.number().finite(), cloud: z.number().finite() }),
      calibration: z.record(z.string(), z.unknown()),
      rates: z.record(z.string(), z.unknown()),
    })
    .optional(),
  training: z.record(z.string(), z.unknown()),
  files: z.looseObject({
    edge: z.looseObject({ path: z.string(), sha256: sha256Hex }),
    cloud: z.looseObject({ path: z.string(), sha256: sha256Hex }),
    /** optional: the packed W1A1 engine file (training/pack.py), derived from edge.onnx */
    engine: z.looseObject({ path: z.string(), sha256: sha256Hex, format: z.string() }).optional(),
  }),
});
export type Manifest = z.infer<typeof Manifest>;

/** What `GET /v1/models` shows of a manifest. */
export const ManifestSummary = z.object({
  name: z.string(),
  version: z.string(),
  fingerprint: z.string(),
  dataset: z.string(),
  labels: z.array(z.string()),
  input: z.object({ height: z.number(), width: z.number(), channels: z.number() }),
  split: z.object({ shape: z.array(z.number()) }),
  exit: z.object({ threshold: z.number(), rule: z.string() }),
  ood: z
    .object({
      rule: z.string(),
      thresholds: z.object({ edge: z.number(), cloud: z.number() }),
      forcedThresholds: z.object({ edge: z.number(), cloud: z.number() }),
    })
    .nullable(),
  architecture: z.record(z.string(), z.unknown()),
  macs: z.record(z.string(), z.unknown()),
  validation: z.record(z.string(), z.unknown()).nullable(),
});
export type ManifestSummary = z.infer<typeof ManifestSummary>;

export function parseManifest(json: unknown, where = "manifest.json"): Manifest {
  const r = Manifest.safeParse(json);
  if (!r.success) throw new Error(`${where}: ${z.prettifyError(r.error)}`);
  const m = r.data;
  if (m.labels.length < 2) throw new Error(`${where}: needs at least two labels`);
  return m;
}

export function summarize(m: Manifest): ManifestSummary {
  return {
    name: m.name,
    version: m.version,
    fingerprint: m.fingerprint,
    dataset: m.dataset,
    labels: m.labels,
    input: { height: m.input.height, width: m.input.width, channels: m.input.channels },
    split: { shape: m.split.shape },
    exit: { threshold: m.exit.threshold, rule: m.exit.rule },
    ood: m.ood ? { rule: m.ood.rule, thresholds: m.ood.thresholds, forcedThresholds: m.ood.forcedThresholds } : null,
    architecture: m.architecture,
    macs: m.macs,
    validation: m.validation,
  };
}
