/**
 * The edge's HTTP API as an OpenAPI 3.1 document, generated from the zod schemas the routes
 * validate with and answer in (zod 4's `z.toJSONSchema`; OpenAPI 3.1 schemas are JSON Schema
 * 2020-12, so nothing is translated by hand). The Worker serves it at `/openapi.json`;
 * `npm run docs:api` renders it into docs/api.md. test/node/openapi.test.ts checks that every
 * route the Worker serves is here and the other way round, and that docs/api.md is current.
 */
import * as z from "zod";
import { ERROR_CODES, type ErrorCode, ErrorResponse } from "@fogline/shared/errors";
import { ClassifyQuery, ClassifyResponse } from "./classify.js";
import { HealthResponse, ModelsResponse } from "@fogline/shared/schemas/models";
import {
  OipErrorResponse,
  OipInferRequest,
  OipInferResponse,
  OipLive,
  OipModelMetadata,
  OipModelReady,
  OipReady,
  OipServerMetadata,
  TritonModelConfig,
  TritonRepositoryIndex,
  TritonStatistics,
} from "./oip.js";

type JsonSchema = Record<string, unknown>;

/** Named schemas: responses are documented as the server writes them, requests as clients send them. */
const outputs = {
  ClassifyResponse,
  ErrorResponse,
  HealthResponse,
  ModelsResponse,
  OipErrorResponse,
  OipInferResponse,
  OipLive,
  OipModelMetadata,
  OipModelReady,
  OipReady,
  OipServerMetadata,
  TritonModelConfig,
  TritonRepositoryIndex,
  TritonStatistics,
};
const inputs = { OipInferRequest };

function components(schemas: Record<string, z.ZodType>, io: "input" | "output"): Record<string, JsonSchema> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(schemas)) registry.add(schema, { id });
  const out = z.toJSONSchema(registry, { io, uri: (id) => `#/components/schemas/${id}` }).schemas as Record<string, JsonSchema>;
  for (const s of Object.values(out)) {
    delete s.$schema;
    delete s.$id;
  }
  return out;
}

const ref = (id: keyof typeof outputs | keyof typeof inputs) => ({ $ref: `#/components/schemas/${id}` });
const json = (id: keyof typeof outputs | keyof typeof inputs) => ({ "application/json": { schema: ref(id) } });

/** Query parameters straight from a zod object (descriptions from its `.meta`). */
function queryParameters(schema: z.ZodObject): JsonSchema[] {
  const js = z.toJSONSchema(schema, { io: "input" }) as { properties: Record<string, JsonSchema>; required?: string[] };
  return Object.entries(js.properties).map(([name, s]) => {
    const { description, ...rest } = s;
    return { name, in: "query", required: js.required?.includes(name) ?? false, ...(description !== undefined && { description }), schema: rest };
  });
}

const modelParam = { name: "model", in: "path", required: true, description: "model name (`GET /v1/models`)", schema: { type: "string" } };
const versionParam = { name: "version", in: "path", required: true, description: "the model's `version`; only the bundled one is served", schema: { type: "string" } };

/** Error responses of an operation, grouped by status, each listing the codes it may carry. */
function errorsAs(schema: "ErrorResponse" | "OipErrorResponse", codes: ErrorCode[]): Record<string, JsonSchema> {
  const byStatus = new Map<number, string[]>();
  for (const code of codes) byStatus.set(ERROR_CODES[code], [...(byStatus.get(ERROR_CODES[code]) ?? []), `\`${code}\``]);
  const out: Record<string, JsonSchema> = {};
  for (const [status, list] of [...byStatus].sort((a, b) => a[0] - b[0])) {
    out[String(status)] = { description: `error: ${list.join(", ")}`, content: json(schema) };
  }
  return out;
}
const errors = (...codes: ErrorCode[]) => errorsAs("ErrorResponse", codes);
/** `/v2` errors: the Open Inference Protocol's `{error: "<message>", code}`. */
const oipErrors = (...codes: ErrorCode[]) => errorsAs("OipErrorResponse", codes);

/** Failures of reading a request body (shared/src/body.ts). */
const BODY_ERRORS: ErrorCode[] = ["payload_too_large", "body_incomplete"];
/** Failures of decoding an image (workers/src/image/image.ts). */
const IMAGE_ERRORS: ErrorCode[] = ["empty_body", "not_an_image", "image_decode_failed", "image_empty", "image_too_large"];
/** Failures of the edge->cloud hop that reach the client (workers/src/infer/pipeline.ts). */
const CLOUD_ERRORS: ErrorCode[] = ["model_mismatch", "batch_too_large", "rate_limited", "cloud_unavailable"];

interface Op {
  summary: string;
  description?: string;
  tags: string[];
  parameters?: JsonSchema[];
  requestBody?: JsonSchema;
  responses: Record<string, JsonSchema>;
}

const ok = (id: keyof typeof outputs, description = "OK") => ({ "200": { description, content: json(id) } });

/** The binary tensor data extension's body: the JSON header, then the tensors' bytes. */
const binaryBody = (what: string) => ({
  "application/octet-stream": {
    schema: {
      type: "string",
      contentMediaType: "application/octet-stream",
      description: `${what}: the JSON (its size in bytes in the \`Inference-Header-Content-Length\` header), then the binary tensors in order, each \`parameters.binary_data_size\` bytes`,
    },
  },
});

function oipModelPaths(prefix: string, params: JsonSchema[]): Record<string, Record<string, Op>> {
  const tags = ["Open Inference Protocol (v2)"];
  return {
    [prefix]: { get: { summary: "Model metadata: input and output tensors", tags, parameters: params, responses: { ...ok("OipModelMetadata"), ...oipErrors("model_not_found") } } },
    [`${prefix}/ready`]: { get: { summary: "Model readiness (loads its edge session)", tags, parameters: params, responses: { ...ok("OipModelReady"), ...oipErrors("model_not_found") } } },
    [`${prefix}/config`]: {
      get: { summary: "The model as a Triton model configuration (max_batch_size 64)", tags, parameters: params, responses: { ...ok("TritonModelConfig"), ...oipErrors("model_not_found") } },
    },
    [`${prefix}/stats`]: {
      get: { summary: "Triton inference statistics of the model (this Worker isolate's counters)", tags, parameters: params, responses: { ...ok("TritonStatistics"), ...oipErrors("model_not_found") } },
    },
    [`${prefix}/infer`]: {
      post: {
        summary: "Inference on a batch: FP32 [N,3,H,W] tensor or BYTES [N] PNG/JPEG files, in JSON or binary",
        description:
          "Each sample exits at the edge when its exit entropy is under the threshold (request parameter `threshold`, default the calibrated one; `exit` forces the path); the others go to the cloud together. Outputs: `probabilities` [N,C] (or top k as \"score:index:label\" with the `classification` output parameter), `exit_point` [N], `entropy` [N]; response parameters repeat exit point and entropy per sample, comma-separated. Triton's binary tensor data extension (tritonclient's default): with an `Inference-Header-Content-Length` header the body is a JSON header then the inputs' bytes (`binary_data_size`); outputs asked in binary (`binary_data_output`, or an output's `binary_data`) come back the same way, as `application/octet-stream` with that header.",
        tags,
        parameters: [
          ...params,
          { name: "Inference-Header-Content-Length", in: "header", required: false, description: "binary tensor data extension: the JSON header's size in bytes", schema: { type: "integer", minimum: 1 } },
        ],
        requestBody: { required: true, content: { ...json("OipInferRequest"), ...binaryBody("OipInferRequest") } },
        responses: {
          "200": { description: "OK (binary when an output is asked in binary)", content: { ...json("OipInferResponse"), ...binaryBody("OipInferResponse") } },
          ...oipErrors("invalid_input", ...BODY_ERRORS, ...IMAGE_ERRORS, "model_not_found", ...CLOUD_ERRORS, "output_not_finite"),
        },
      },
    },
  };
}

export function openApiDocument(opts: { version: string; serverUrl?: string }): JsonSchema {
  const classifyBody = {
    required: true,
    description: "the image, PNG or JPEG, any size (resized to the model's input)",
    content: {
      "image/png": { schema: { type: "string", contentMediaType: "image/png" } },
      "image/jpeg": { schema: { type: "string", contentMediaType: "image/jpeg" } },
      "multipart/form-data": {
        schema: { type: "object", properties: { image: { type: "string", contentMediaType: "application/octet-stream" } }, required: ["image"] },
      },
    },
  };
  const paths: Record<string, Record<string, Op>> = {
    "/v1/classify": {
      post: {
        summary: "Classify one image; answered at the edge or in the cloud",
        description:
          "The edge answers when the exit head's softmax entropy is under the threshold; otherwise the split activation goes to the cloud tail. If the cloud cannot answer, `exit=auto` still gets 200 with the edge's prediction and `degraded: true`.",
        tags: ["Fogline"],
        parameters: queryParameters(ClassifyQuery),
        requestBody: classifyBody,
        responses: {
          ...ok("ClassifyResponse"),
          ...errors(
            "invalid_query",
            "unsupported_media_type",
            "missing_image_field",
            "invalid_multipart",
            "content_type_mismatch",
            ...BODY_ERRORS,
            ...IMAGE_ERRORS,
            "model_not_found",
            ...CLOUD_ERRORS,
            "output_not_finite",
          ),
        },
      },
    },
    "/v1/models": { get: { summary: "The served models' manifest summaries", tags: ["Fogline"], responses: ok("ModelsResponse") } },
    "/healthz": {
      get: {
        summary: "Health; loads every model's edge session and checks the edge can call the cloud",
        description:
          "503 `misconfigured` when the secret is missing, a placeholder or weak, or `CLOUD_URL` is missing or not an http(s) URL (`problems` says which); the cloud itself is not probed.",
        tags: ["Fogline"],
        responses: { ...ok("HealthResponse"), "503": { description: "misconfigured", content: json("HealthResponse") } },
      },
    },
    "/": {
      get: {
        summary: "Demo page (HTML; its script and style are served by the Worker too)",
        tags: ["Demo"],
        responses: { "200": { description: "HTML page", content: { "text/html": { schema: { type: "string" } } } } },
      },
    },
    "/metrics": {
      get: {
        summary: "Prometheus metrics (text exposition format)",
        description: "With `METRICS_TOKEN` set, requires `Authorization: Bearer <token>`.",
        tags: ["Fogline"],
        responses: {
          "200": { description: "metrics", content: { "text/plain": { schema: { type: "string" } } } },
          ...errors("unauthorized"),
        },
      },
    },
    "/openapi.json": {
      get: {
        summary: "This document",
        tags: ["Fogline"],
        responses: { "200": { description: "OpenAPI 3.1", content: { "application/json": { schema: { type: "object" } } } } },
      },
    },
    "/v2": { get: { summary: "Server metadata", tags: ["Open Inference Protocol (v2)"], responses: ok("OipServerMetadata") } },
    "/v2/health/live": { get: { summary: "Liveness", tags: ["Open Inference Protocol (v2)"], responses: ok("OipLive") } },
    "/v2/health/ready": {
      get: {
        summary: "Readiness: every model's edge session loads and the secret and CLOUD_URL are usable (the cloud itself is not probed: when it is down, auto requests degrade)",
        tags: ["Open Inference Protocol (v2)"],
        responses: { ...ok("OipReady"), "503": { description: "not ready", content: json("OipReady") } },
      },
    },
    "/v2/models/stats": { get: { summary: "Triton inference statistics of every model", tags: ["Open Inference Protocol (v2)"], responses: ok("TritonStatistics") } },
    "/v2/repository/index": {
      post: { summary: "The model repository index: every served model, READY", tags: ["Open Inference Protocol (v2)"], responses: ok("TritonRepositoryIndex") },
    },
    ...oipModelPaths("/v2/models/{model}", [modelParam]),
    ...oipModelPaths("/v2/models/{model}/versions/{version}", [modelParam, versionParam]),
  };
  return {
    openapi: "3.1.0",
    info: {
      title: "Fogline edge API",
      version: opts.version,
      description:
        "Image classification split across edge and cloud: early exit at the edge (Cloudflare Worker), full-precision tail in the cloud. Every error is `{error: {code, message}}`, except under `/v2` (Open Inference Protocol, with Triton's binary tensor data extension): `{error: \"<message>\", code}`. A wrong method on a `/v2` route is 405 with `Allow`; `/v2` answers CORS preflights.",
    },
    ...(opts.serverUrl !== undefined && { servers: [{ url: opts.serverUrl }] }),
    paths,
    components: { schemas: { ...components(outputs, "output"), ...components(inputs, "input") } },
  };
}

/** `[method, path]` of every documented operation, paths in hono's `:param` form. */
export function documentedRoutes(doc: JsonSchema): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
    for (const method of Object.keys(ops)) out.push([method.toUpperCase(), path.replace(/\{(\w+)\}/g, ":$1")]);
  }
  return out;
}
