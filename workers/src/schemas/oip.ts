/**
 * The Open Inference Protocol (KServe "v2", also spoken by Triton and MLServer), REST/JSON
 * binding, as far as Fogline serves it on the edge. Field names are the protocol's (snake_case);
 * see kserve/open-inference-protocol `specification/protocol/inference_rest.md`.
 */
import * as z from "zod";
import { ERROR_CODES, type ErrorCode } from "@fogline/shared/errors";
import { EngineChoice, ExitMode } from "./classify.js";
import { ConfigProblem } from "@fogline/shared/schemas/models";

/** `$parameter_value = $boolean | $number | $string`: parameters hold scalars only. */
export const OipParameters = z.record(z.string(), z.union([z.boolean(), z.number(), z.string()]));
export type OipParameters = z.infer<typeof OipParameters>;

export const OipDatatype = z.enum(["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64", "BYTES"]);
export type OipDatatype = z.infer<typeof OipDatatype>;

/** `GET /v2`: server metadata. */
export const OipServerMetadata = z.object({ name: z.string(), version: z.string(), extensions: z.array(z.string()) });
export type OipServerMetadata = z.infer<typeof OipServerMetadata>;

/** `GET /v2/health/live` */
export const OipLive = z.object({ live: z.boolean() });
export type OipLive = z.infer<typeof OipLive>;
/** `GET /v2/health/ready` */
export const OipReady = z.object({
  ready: z.boolean(),
  problems: z.array(ConfigProblem).optional().meta({ description: "when not ready because of the configuration: what to fix" }),
});
export type OipReady = z.infer<typeof OipReady>;
/** `GET /v2/models/{model}/ready` */
export const OipModelReady = z.object({ name: z.string(), ready: z.boolean() });
export type OipModelReady = z.infer<typeof OipModelReady>;

export const OipTensorMetadata = z.object({
  name: z.string(),
  datatype: OipDatatype,
  shape: z.array(z.number().int()).meta({ description: "-1 marks a variable dimension (the batch)" }),
});

/** `GET /v2/models/{model}`: model metadata. */
export const OipModelMetadata = z.object({
  name: z.string(),
  versions: z.array(z.string()),
  platform: z.string(),
  inputs: z.array(OipTensorMetadata),
  outputs: z.array(OipTensorMetadata),
});
export type OipModelMetadata = z.infer<typeof OipModelMetadata>;

/** Fogline's request parameters; other scalar parameters are accepted and ignored. */
export const OipInferParameters = z.looseObject({
  threshold: z.number().finite().nonnegative().optional().meta({ description: "entropy threshold for this request (default: the manifest's calibrated value)" }),
  exit: ExitMode.optional().meta({ description: "`auto`: each sample exits at the edge when entropy < threshold; `edge` / `cloud`: force the path" }),
  engine: EngineChoice.optional().meta({ description: "edge engine, as the `engine` query of /v1/classify: `ort`, `packed` or `auto` (EDGE_ENGINE)" }),
  binary_data_output: z
    .boolean()
    .optional()
    .meta({ description: "binary tensor data extension: every output in the binary part of the answer (unless its own `binary_data` parameter says otherwise)" }),
});

export const OipRequestInput = z.object({
  name: z.string(),
  shape: z.array(z.number().int().nonnegative()).meta({ description: "`[N, 3, H, W]` for FP32, `[N]` for BYTES; N <= 64" }),
  datatype: OipDatatype,
  parameters: OipParameters.optional().meta({
    description:
      "`binary_data_size`: the tensor is in the binary part of the body (binary tensor data extension, with the `Inference-Header-Content-Length` header), in this many bytes: FP32 little-endian, exactly 4 x prod(shape); BYTES elements each a 4-byte little-endian length and the PNG/JPEG file",
  }),
  data: z
    .array(z.unknown())
    .optional()
    .meta({
      description:
        "row-major tensor contents, flat or nested (absent when `binary_data_size` is given); FP32 elements are normalised pixels, finite and within +-1e4; BYTES elements are base64 strings of PNG/JPEG files. The body may hold no more JSON than a batch of 64 such tensors (docs/reliability.md)",
    }),
});

export const OipRequestOutput = z.object({
  name: z.string(),
  parameters: OipParameters.optional().meta({
    description:
      '`classification: k` on `probabilities` returns the top k as "score:index:label" strings (Triton\'s classification extension); `binary_data: true` returns this output in the binary part of the answer',
  }),
});

/** `POST /v2/models/{model}/infer` body. */
export const OipInferRequest = z.object({
  id: z.string().optional(),
  parameters: OipInferParameters.optional(),
  inputs: z.array(OipRequestInput).length(1, "send exactly one input: an FP32 image tensor or a BYTES tensor of encoded images"),
  outputs: z.array(OipRequestOutput).optional().meta({ description: "the outputs to return (default: all)" }),
});
export type OipInferRequest = z.infer<typeof OipInferRequest>;

export const OipResponseOutput = z.object({
  name: z.string(),
  shape: z.array(z.number().int().nonnegative()),
  datatype: OipDatatype,
  parameters: OipParameters.optional().meta({ description: "`binary_data_size`: the output is in the binary part of the answer (no `data`), in this many bytes" }),
  data: z.array(z.union([z.number(), z.string()])).optional(),
});

/** 200 body of `POST /v2/models/{model}/infer`. */
export const OipInferResponse = z.object({
  model_name: z.string(),
  model_version: z.string().optional(),
  id: z.string().optional(),
  parameters: OipParameters.optional().meta({
    description:
      'per request: `threshold`, `exit_mode`, `engine` (the edge engine that ran), `degraded` (+ `degraded_reason`), `edge_exits`; per sample, comma-separated in batch order (parameter values are scalars): `exit_point` ("edge"/"cloud") and `entropy`, and for a model with an out-of-distribution calibration `ood_flagged` ("true"/"false") and `ood_score` (docs/ood.md). The `exit_point` and `entropy` outputs carry the same as tensors.',
  }),
  outputs: z.array(OipResponseOutput),
});
export type OipInferResponse = z.infer<typeof OipInferResponse>;

const codes = Object.keys(ERROR_CODES) as [ErrorCode, ...ErrorCode[]];

/**
 * Every 4xx/5xx body of the `/v2` routes: the protocol's `{"error": "<message>"}` (clients such as
 * tritonclient read `error` as a string), with Fogline's stable `code` beside it, which they ignore.
 */
export const OipErrorResponse = z.object({
  error: z.string(),
  code: z.enum(codes).meta({ description: "Fogline's error code (the `code` of the `/v1` envelope)" }),
});
export type OipErrorResponse = z.infer<typeof OipErrorResponse>;

/** `GET /v2/models/{model}/config`: the model as a Triton model configuration (JSON of model_config.proto). */
export const TritonTensorConfig = z.object({
  name: z.string(),
  data_type: z.string().meta({ description: "TYPE_FP32, TYPE_FP64, TYPE_STRING (BYTES)" }),
  format: z.string(),
  dims: z.array(z.number().int()).meta({ description: "without the batch dimension (max_batch_size > 0)" }),
  reshape: z.object({ shape: z.array(z.number().int()) }).optional().meta({ description: "`{shape: []}`: a `[N]` tensor, one element per sample" }),
});
export const TritonModelConfig = z.object({
  name: z.string(),
  platform: z.string(),
  backend: z.string(),
  version_policy: z.object({ specific: z.object({ versions: z.array(z.string()) }) }),
  max_batch_size: z.number().int(),
  input: z.array(TritonTensorConfig),
  output: z.array(TritonTensorConfig),
  parameters: z.record(z.string(), z.object({ string_value: z.string() })),
});
export type TritonModelConfig = z.infer<typeof TritonModelConfig>;

const TritonDuration = z.object({ count: z.number().int(), ns: z.number().int() });
/** One model's entry of `GET /v2/models/{model}/stats` (Triton's statistics extension). */
export const TritonModelStats = z.object({
  name: z.string(),
  version: z.string(),
  last_inference: z.number().int().meta({ description: "ms since the epoch of the last infer request (0: none)" }),
  inference_count: z.number().int().meta({ description: "samples inferred" }),
  execution_count: z.number().int().meta({ description: "infer requests answered" }),
  inference_stats: z.object({
    success: TritonDuration,
    fail: TritonDuration,
    queue: TritonDuration,
    compute_input: TritonDuration,
    compute_infer: TritonDuration,
    compute_output: TritonDuration,
    cache_hit: TritonDuration,
    cache_miss: TritonDuration,
  }),
  batch_stats: z.array(z.unknown()),
  memory_usage: z.array(z.unknown()),
});
export const TritonStatistics = z.object({
  model_stats: z.array(TritonModelStats).meta({ description: "counters of the Worker isolate that answered, since it started (isolates do not share them)" }),
});
export type TritonStatistics = z.infer<typeof TritonStatistics>;

/** `POST /v2/repository/index`: the served models. */
export const TritonRepositoryIndex = z.array(z.object({ name: z.string(), version: z.string(), state: z.literal("READY") }));
export type TritonRepositoryIndex = z.infer<typeof TritonRepositoryIndex>;

/** Tensor names of Fogline's OIP model (inputs follow the edge graph's input name). */
export const OIP_NAMES = {
  image: "image",
  imageBytes: "image_bytes",
  probabilities: "probabilities",
  exitPoint: "exit_point",
  entropy: "entropy",
} as const;
